"""Atomic writes, cross-process locks, digests and cache directories.

Every cache (converted models, engines, calibration results) goes through `atomic_write` under
`file_lock`, so a reader never sees a half-written file and two processes never build the same
artifact twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "atomic_write",
    "cached",
    "engines_dir",
    "file_lock",
    "lock_is_idle",
    "models_dir",
    "project_root",
    "remove_idle_lock",
    "sha256_bytes",
    "sha256_file",
]

type PathLike = str | os.PathLike[str]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: PathLike, data: bytes | Callable[[BinaryIO], None]) -> Path:
    """Write `data` (bytes, or a function writing to a binary file) to `path` atomically.

    The bytes go to a temporary file in the same directory, are fsynced, then renamed over
    `path` with `os.replace`: readers see the old file or the whole new one, never a part.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, bytes | bytearray | memoryview):
                f.write(data)
            else:
                data(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; caches are shared like any file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def file_lock(path: PathLike, on_wait: Callable[[], object] | None = None) -> Iterator[None]:
    """Hold an exclusive cross-process lock on `<path>.lock` (fcntl; released if the process dies).

    The holder may delete the lock file (prune_engines does): whoever was waiting on it then finds
    the name gone or naming a new file, and locks again by name, so two holders never coexist.
    """
    lock_path = Path(f"{os.fspath(path)}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        f = open(lock_path, "a+b")  # noqa: SIM115 - closed below or after the yield
        try:
            if on_wait is None:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            else:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # held by another process: say so, then wait
                    on_wait()
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            locked_this_name = _holds_name(f, lock_path)
        except BaseException:  # an interrupt while waiting: never leave a held lock behind
            f.close()
            raise
        if locked_this_name:
            break
        f.close()  # we locked a deleted file
    try:
        yield
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        f.close()
        remove_idle_lock(lock_path)  # leave no lock file behind (a waiter then locks a new one)


def _holds_name(f: BinaryIO, lock_path: Path) -> bool:
    """Whether the locked file `f` is still the one `lock_path` names (a holder may delete it)."""
    try:
        return os.stat(lock_path).st_ino == os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False


def lock_is_idle(lock_path: Path) -> bool:
    """Whether nobody holds the lock file now (tried without waiting, released at once)."""
    try:
        with open(lock_path, "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    except OSError:  # BlockingIOError: held
        return False
    return True


def remove_idle_lock(lock_path: Path) -> bool:
    """Delete a lock file nobody holds (as its holder, so `file_lock` waiters move on); False if held."""
    try:
        f = open(lock_path, "a+b")  # noqa: SIM115 - closed in finally
    except OSError:
        return False
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if not _holds_name(f, lock_path):
            return False
        lock_path.unlink()
        return True
    finally:
        f.close()


def cached(path: PathLike, produce: Callable[[], bytes], valid: Callable[[Path], bool] | None = None) -> Path:
    """Return `path`, producing it once under a lock if it is missing or fails `valid`."""
    path = Path(path)
    ok = valid or (lambda p: p.is_file())
    if path.exists() and ok(path):
        return path
    with file_lock(path):
        if path.exists() and ok(path):  # another process made it while we waited
            return path
        atomic_write(path, produce())
    return path


def project_root() -> Path | None:
    """The source checkout this package runs from, or None for an installed package."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "vssr").is_dir() else None


def _user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vssr"


def models_dir() -> Path:
    """Converted models: $VSSR_MODEL_DIR, else models/ of a source checkout, else ~/.cache/vssr/models."""
    if env := os.environ.get("VSSR_MODEL_DIR"):
        return Path(env)
    root = project_root()
    return root / "models" if root else _user_cache() / "models"


def engines_dir() -> Path:
    """Built engines: $VSSR_ENGINE_DIR, else engines/ of a source checkout, else ~/.cache/vssr/engines."""
    if env := os.environ.get("VSSR_ENGINE_DIR"):
        return Path(env)
    root = project_root()
    return root / "engines" if root else _user_cache() / "engines"
