"""Atomic writes, cross-process locks, digests and cache directories.

Every cache (converted models, engines, calibration results) goes through `atomic_write` under
`file_lock`, so a reader never sees a half-written file and two processes never build the same
artifact twice.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import math
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import BackendError

__all__ = [
    "CANNOT_WRITE",
    "LOCK_TIMEOUT_ENV",
    "LockTimeoutError",
    "atomic_write",
    "engines_dir",
    "file_lock",
    "lock_holder",
    "lock_is_idle",
    "lock_timeout",
    "models_dir",
    "project_root",
    "readable_stem",
    "remove_idle_lock",
    "remove_leftovers",
    "sha256_bytes",
    "sha256_file",
]

logger = logging.getLogger(__name__)

type PathLike = str | os.PathLike[str]

TMP_SUFFIX = ".tmp"


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
    `path` with `os.replace`: readers see the old file or the whole new one, never a part. The
    writer holds a lock on its temporary file until the rename, so `remove_leftovers` can tell a
    file being written from one a killed writer left behind (the kernel drops a dead process's locks).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _holds_name_fd(fd, Path(tmp)):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # a cleaner took it for a leftover between mkstemp and flock: take another name
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
            os.replace(tmp, path)  # still locked: the name is never a leftover while it exists
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


LOCK_TIMEOUT_ENV = "VSSR_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 3600.0
"""Seconds a process waits for another one's lock before giving up (a TensorRT build of a large
model takes minutes; an hour means the holder is stuck). `VSSR_LOCK_TIMEOUT=0`: no limit."""


class LockTimeoutError(BackendError):
    """Another process held a cache lock for longer than VSSR_LOCK_TIMEOUT."""


def lock_timeout() -> float | None:
    """$VSSR_LOCK_TIMEOUT in seconds (default 3600); None (wait for good) for 0 or inf."""
    text = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise BackendError(f"{LOCK_TIMEOUT_ENV}={text!r} must be a number of seconds >= 0 (0: wait without limit)")
    return None if value == 0 or math.isinf(value) else value


def lock_holder(lock_path: PathLike) -> str:
    """Who holds (or last held) a lock file, as its holder wrote it: `process 123 on host`."""
    try:
        text = Path(lock_path).read_text(errors="replace").strip()
    except OSError:
        text = ""
    return text[:200] or "another process"


@contextlib.contextmanager
def file_lock(
    path: PathLike, on_wait: Callable[[], object] | None = None, *, timeout: float | None = None
) -> Iterator[None]:
    """Hold an exclusive cross-process lock on `<path>.lock` (fcntl; released if the process dies).

    The holder writes its pid and host into the file; a process that has to wait logs whom it
    waits for and gives up after `timeout` seconds (None: `lock_timeout()`, from
    $VSSR_LOCK_TIMEOUT) with a LockTimeoutError naming the holder and the variable.

    The holder may delete the lock file (prune_engines does): whoever was waiting on it then finds
    the name gone or naming a new file, and locks again by name, so two holders never coexist.
    """
    lock_path = Path(f"{os.fspath(path)}.lock")
    limit = lock_timeout() if timeout is None else timeout
    deadline: float | None = None
    while True:
        # (again on each try: the holder may have removed the folder, as a finished render does)
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        f = open(lock_path, "a+b")  # noqa: SIM115 - closed below or after the yield
        try:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # held by another process: say by whom, then wait
                logger.info("waiting for %s, which holds %s", lock_holder(lock_path), lock_path)
                if on_wait is not None:
                    on_wait()
                if deadline is None:
                    deadline = math.inf if limit is None else time.monotonic() + limit
                _wait_for_lock(f, lock_path, deadline, limit)
            locked_this_name = _holds_name(f, lock_path)
            if locked_this_name:  # say who holds it, for whoever waits next
                f.truncate(0)
                f.write(f"process {os.getpid()} on {socket.gethostname()}\n".encode())
                f.flush()
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


def _wait_for_lock(f: BinaryIO, lock_path: Path, deadline: float, limit: float | None) -> None:
    """Poll for the lock until `deadline` (a blocking flock could not be given up)."""
    pause, said = 0.01, time.monotonic()
    while True:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        now = time.monotonic()
        if now >= deadline:
            raise LockTimeoutError(
                f"gave up after {limit:g} s waiting for {lock_holder(lock_path)}, which holds {lock_path}; "
                f"if that process is stuck, end it (its lock goes with it), or set {LOCK_TIMEOUT_ENV}=<seconds> "
                "to wait longer (0: no limit)"
            )
        if now - said >= 60:
            said = now
            logger.warning("still waiting for %s, which holds %s", lock_holder(lock_path), lock_path)
        time.sleep(min(pause, max(deadline - now, 0.0)))
        pause = min(pause * 2, 0.5)


def _holds_name(f: BinaryIO, lock_path: Path) -> bool:
    """Whether the locked file `f` is still the one `lock_path` names (a holder may delete it)."""
    return _holds_name_fd(f.fileno(), lock_path)


def _holds_name_fd(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
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


def remove_leftovers(folder: PathLike, *, dry_run: bool = False) -> list[Path]:
    """Delete what killed or failed writers left in `folder` (not in its subfolders); returns them
    (with `dry_run`: only says what it would delete).

    Temporary files of `atomic_write` whose writer is gone (its lock on the file went with it) and
    lock files nobody holds. Files being written and locks being held are left alone.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        candidates = sorted(folder.glob(f".*{TMP_SUFFIX}")) + sorted(folder.glob("*.lock"))
    except OSError:
        return removed
    for path in candidates:
        if dry_run:
            gone = lock_is_idle(path)
        else:
            gone = remove_idle_lock(path) if path.suffix == ".lock" else _remove_unheld(path)
        if gone:
            removed.append(path)
    if removed and not dry_run:
        logger.info("removed %d leftover(s) of interrupted writes in %s: %s", len(removed), folder,
                    ", ".join(p.name for p in removed[:5]) + (" ..." if len(removed) > 5 else ""))
    return removed


def _remove_unheld(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: a live writer holds it
            return False
        if not _holds_name_fd(fd, path):
            return False
        try:
            path.unlink()
        except OSError:
            return False
        return True
    finally:
        os.close(fd)


CANNOT_WRITE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                          errno.EEXIST})
"""errnos of a cache location that cannot be written (read-only, full, a regular file in the way)."""


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


def readable_stem(name: str, limit: int = 64) -> str:
    """`name` as the readable part of a cache file name: safe characters, at most `limit` of them.

    The caller appends a digest that keys the entry, so shortening loses nothing; unshortened, a
    240-character weights file name makes a cache name past the file system's 255 bytes.
    """
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:limit] or "model"
