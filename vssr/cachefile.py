"""Verified cache entries: a file plus a sidecar that vouches for it, checked before every use.

An entry `<name>` is written atomically (`files.atomic_write`), then its sidecar
`<name>.meta.json` (key, size, sha256), also atomically: a sidecar never describes bytes that are
not all on disk. A reader uses an entry only when the sidecar exists, holds the key asked for, and
the bytes read have the sidecar's size and sha256. Anything else (0 bytes, a cut file, flipped
bytes, another valid file copied over it, a writer killed between entry and sidecar) is rebuilt
with a warning naming the file, never used. The bytes checked are the bytes used (read once into
memory), so nothing can change between the check and the use.

`load_or_build` is the whole protocol: clean the leftovers of killed writers, read and verify,
else build once across processes under `files.file_lock` (whose waiters say whom they wait for
and give up after $VSSR_LOCK_TIMEOUT), write entry then sidecar, drop the lock file. A folder that
cannot be written (read-only, full, a regular file in the way) builds in memory, warning once per
folder with the variable that moves the cache.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from . import files
from .errors import BackendError

__all__ = ["META_SUFFIX", "intact", "load_or_build", "meta_path", "read_verified", "remove", "stored_key", "verified", "write"]

logger = logging.getLogger(__name__)

META_SUFFIX = ".meta.json"
_MAX_SIDECAR = 1 << 20

type Key = Mapping[str, object]

_warned_folders: set[str] = set()
_warned_lock = threading.Lock()


def meta_path(entry: Path) -> Path:
    """The sidecar of a cache entry: `<entry>.meta.json`."""
    return entry.with_name(entry.name + META_SUFFIX)


def _normal(key: Key) -> object:
    return json.loads(json.dumps(key, sort_keys=True, default=str))


def write(entry: Path, data: bytes, key: Key) -> None:
    """Write the entry, then its sidecar (each atomically; the sidecar last)."""
    files.atomic_write(entry, data)
    record = {
        "key": _normal(key),
        "size": len(data),
        "sha256": files.sha256_bytes(data),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    files.atomic_write(meta_path(entry), json.dumps(record, indent=2, sort_keys=True).encode())


def _check(entry: Path, key: Key) -> tuple[bytes | None, str | None]:
    """(verified bytes, None) or (None, what is wrong); (None, None) when there is no entry at all."""
    try:
        with open(meta_path(entry), "rb") as f:
            record = json.loads(f.read(_MAX_SIDECAR))
        size, digest, stored_key = int(record["size"]), str(record["sha256"]), record["key"]
    except (FileNotFoundError, NotADirectoryError):  # NotADirectory: a file where the folder should be, no entry
        return None, "has no sidecar (its writer was interrupted)" if entry.exists() else None
    except (OSError, ValueError, KeyError, TypeError) as err:
        return None, f"has an unreadable sidecar ({type(err).__name__})"
    if stored_key != _normal(key):
        return None, "was written for another key"
    try:
        with open(entry, "rb") as f:
            actual = os.fstat(f.fileno()).st_size
            # compared before reading: neither a swapped-in file nor a forged size is read whole
            data = f.read(size) if actual == size else b""
    except FileNotFoundError:
        return None, None
    except OSError as err:
        return None, f"cannot be read ({err})"
    if actual != size or len(data) != size:
        return None, f"holds {actual} bytes where its sidecar says {size}"
    if files.sha256_bytes(data) != digest:
        return None, "does not match its sidecar's sha256 (corrupted or replaced)"
    return data, None


def read_verified(entry: Path, key: Key) -> bytes | None:
    """The entry's bytes when its sidecar vouches for them under `key`, else None (a warning
    naming the file says why, unless there is simply no entry yet)."""
    data, problem = _check(entry, key)
    if problem is not None:
        logger.warning("cache entry %s %s; building it again", entry, problem)
    return data


def verified(entry: Path, key: Key) -> bool:
    """Whether `entry` is present and matches its sidecar under `key` (no warning)."""
    return _check(entry, key)[0] is not None


def stored_key(entry: Path) -> object:
    """The key recorded in `entry`'s sidecar (None when it has none or it cannot be read)."""
    try:
        with open(meta_path(entry), "rb") as f:
            return json.loads(f.read(_MAX_SIDECAR))["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def intact(entry: Path) -> bool:
    """Whether `entry` matches its sidecar, whatever key that holds (for listing and pruning)."""
    try:
        key = json.loads(meta_path(entry).read_text())["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return isinstance(key, dict) and verified(entry, key)


def _warn_unwritable(folder: Path, err: OSError, env: str) -> None:
    with _warned_lock:
        if os.fspath(folder) in _warned_folders:
            return
        _warned_folders.add(os.fspath(folder))
    logger.warning(
        "cannot write the cache folder %s (%s): building in memory, for this process only; set %s to a "
        "writable folder to keep what is built", folder, err.strerror or err, env,
    )


def load_or_build[T](entry: Path, key: Key, build: Callable[[], bytes], load: Callable[[bytes], T], *,
                     env: str) -> T:
    """`load(bytes of entry)` when the entry is verified under `key`, else build it (once across
    processes), save it with its sidecar and load that.

    `load` raising on verified bytes (a runtime that changed under the same key) also rebuilds.
    Errors of `build` and of loading fresh bytes propagate; no entry or lock file is left behind.

    Args:
        entry: the cache file.
        key: everything the entry depends on (JSON-able); stored in the sidecar and compared.
        build: makes the entry's bytes.
        load: bytes -> the object used.
        env: the environment variable that moves this cache (named in warnings and errors).

    Raises:
        BackendError: the folder fails in a way other than being unwritable (named, with `env`);
            files.LockTimeoutError when another process holds the entry's lock too long.
    """
    folder = entry.parent
    files.remove_leftovers(folder)
    if (result := _load_verified(entry, key, load)) is not None:
        return result
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(files.file_lock(entry))
        except OSError as err:
            if err.errno in files.CANNOT_WRITE:
                _warn_unwritable(folder, err, env)
                return load(build())
            if err.errno != errno.ENOLCK:
                raise BackendError(f"cannot use the cache folder {folder} ({err}); set {env} to another folder") \
                    from err
            logger.warning("no file locks in %s: two processes may build %s at once", folder, entry.name)
        else:  # the lock file goes when we are done, built or failed (waiters re-lock by name)
            held.callback(Path(f"{entry}.lock").unlink, missing_ok=True)
        if (result := _load_verified(entry, key, load, quiet=True)) is not None:  # built meanwhile elsewhere
            return result
        data = build()
        try:
            write(entry, data, key)
        except OSError as err:
            if err.errno not in files.CANNOT_WRITE:
                raise BackendError(f"cannot save {entry} ({err}); set {env} to another folder") from err
            _warn_unwritable(folder, err, env)
    return load(data)


def _touch(entry: Path) -> None:
    with contextlib.suppress(OSError):  # a read-only or another user's cache still loads
        os.utime(entry)  # last use, for `python -m vssr caches prune --unused-days`


def _load_verified[T](entry: Path, key: Key, load: Callable[[bytes], T], *, quiet: bool = False) -> T | None:
    data = _check(entry, key)[0] if quiet else read_verified(entry, key)  # quiet: already warned
    if data is None:
        return None
    try:
        result = load(data)
    except Exception as err:
        logger.warning("cache entry %s cannot be loaded (%s); building it again", entry, err)
        return None
    _touch(entry)
    return result


def remove(entry: Path, victims: list[Path], *, chosen: bool, dry_run: bool) -> list[Path]:
    """Delete `victims` (the entry and what lives and dies with it) under `entry`'s lock: if `chosen`
    (stale, unwanted), or if the entry still fails its sidecar then (a writer may have been between
    the entry and its sidecar while it was looked at). Returns the deleted (with `dry_run`: the
    deletable) paths."""
    if dry_run:
        return [p for p in victims if p.exists()]
    removed = []
    with files.file_lock(entry):
        if chosen or not intact(entry):
            for victim in victims:
                if victim.exists():
                    victim.unlink()
                    removed.append(victim)
        # while held: a process waiting on it, or arriving now, locks a new file (files.file_lock)
        Path(f"{entry}.lock").unlink(missing_ok=True)
    return removed
