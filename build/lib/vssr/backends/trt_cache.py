"""The TensorRT engine cache: direct-mapped, never stale, never torn.

One file per key. The key (`EngineSpec.key`) holds everything that changes an engine: the ONNX
digest (after precision conversion), the shape profile, precisions and I/O types, every builder
option, the TensorRT flavour and version, the GPU name and compute capability. The file name is
readable plus the first 16 hex digits of sha256(key):

    <model>.<shape>.<precision>.<hash16>.engine     + <same>.engine.json (how it was built)

Engines are written with `files.atomic_write` under `files.file_lock`, so two processes that need
the same engine build it once (the second waits, then loads the first one's file). An engine that
fails to load (truncated, another TensorRT, another GPU) is rebuilt, never trusted by its size.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import files
from ..errors import BackendError
from ..types import ShapeProfile

if TYPE_CHECKING:
    from ..network import Network
    from .trt import _TensorRT

__all__ = [
    "EngineRecord",
    "EngineSpec",
    "KernelCache",
    "build_engine",
    "engine_folder",
    "kernel_cache_path",
    "list_engines",
    "load_or_build",
    "prune_engines",
    "shape_label",
    "timing_cache_path",
]

logger = logging.getLogger(__name__)

SUFFIX = ".engine"
SIDECAR = ".json"
KERNELS = ".rtxcache"
"""TensorRT-RTX's runtime (JIT kernel) cache of an engine: `<engine>.rtxcache` beside it."""


def shape_label(profile: ShapeProfile) -> str:
    """`1920x1080` for a static profile, `64x64-960x540-1920x1080` (min-opt-max) otherwise."""
    def wh(size: tuple[int, int]) -> str:
        return f"{size[0]}x{size[1]}"

    return wh(profile.opt) if profile.is_static else f"{wh(profile.min)}-{wh(profile.opt)}-{wh(profile.max)}"


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)[:64] or "model"


@dataclass(frozen=True)
class EngineSpec:
    """What identifies one engine: a readable part for the file name and the full key."""

    model: str
    profile: ShapeProfile
    precision: str
    """e.g. `fp16-in16-out32`."""
    key: dict[str, Any] = field(hash=False)

    @property
    def digest(self) -> str:
        payload = json.dumps(self.key, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    @property
    def filename(self) -> str:
        return f"{_safe(self.model)}.{shape_label(self.profile)}.{_safe(self.precision)}.{self.digest[:16]}{SUFFIX}"


def engine_folder(folder: str | os.PathLike[str] | None) -> Path:
    """The given folder, else $VSSR_ENGINE_DIR, else engines/ of the checkout or the user cache."""
    return Path(folder) if folder is not None else files.engines_dir()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR)


def _write(path: Path, spec: EngineSpec, data: bytes, seconds: float) -> None:
    files.atomic_write(path, data)
    record = {
        "model": spec.model,
        "shape": shape_label(spec.profile),
        "precision": spec.precision,
        "digest": spec.digest,
        "key": spec.key,
        "bytes": len(data),
        "sha256": files.sha256_bytes(data),
        "build_seconds": round(seconds, 3),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    files.atomic_write(_sidecar(path), json.dumps(record, indent=2, sort_keys=True, default=str).encode())


_CANNOT_WRITE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT})
"""Errors of a folder vssr may not or cannot write: an engine is then built for this process only."""


def load_or_build[T](
    folder: Path,
    spec: EngineSpec,
    build: Callable[[], bytes],
    load: Callable[[bytes], T],
    *,
    must_keep: bool = False,
) -> tuple[T, Path]:
    """Return `load(engine bytes)` for `spec`, building (once, across processes) when needed.

    `load` must raise when the bytes are not a usable engine: then the engine is rebuilt. A
    `build` error propagates and leaves no file behind. Where the folder cannot be written
    (read-only, full, another user's lock) the engine is built for this process only, with a
    warning, unless `must_keep` (building ahead of time: the file is the point), which then
    raises BackendError before building.
    """
    path = folder / spec.filename

    def try_load() -> T | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            result = load(data)
        except Exception as err:  # noqa: BLE001 - any failure to deserialize means: rebuild
            logger.warning("engine %s cannot be loaded (%s); rebuilding it", path, err)
            return None
        with contextlib.suppress(OSError):  # a read-only folder or another user's engine still loads
            os.utime(path)  # last use, for prune_engines
        return result

    if (result := try_load()) is not None:
        return result, path
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(files.file_lock(path, on_wait=lambda: logger.info(
                "waiting for another process building %s (it is written once, then shared)", path.name)))
        except OSError as err:
            if err.errno == errno.ENOLCK:  # a file system without locks (NFS without lockd)
                logger.warning("no file locks in %s (%s): two processes may build %s at once; writes stay atomic",
                               folder, err, path.name)
            elif must_keep or err.errno not in _CANNOT_WRITE:
                raise BackendError(f"cannot write the engine {path}: {err}") from err
            else:
                logger.warning("cannot write engines in %s (%s): building %s in memory, for this process only",
                               folder, err, path.name)
                return load(build()), path
        if (result := try_load()) is not None:  # another process built it while we waited
            return result, path
        logger.info("building TensorRT engine %s (minutes for a large model; done once, then cached)", path.name)
        start = time.monotonic()
        data = build()
        try:
            _write(path, spec, data, time.monotonic() - start)
        except OSError as err:  # a full disk, a folder made read-only meanwhile: still usable now
            if must_keep or err.errno not in _CANNOT_WRITE:
                raise BackendError(f"cannot save the engine {path}: {err}") from err
            logger.warning("cannot save the engine %s (%s); it is used for this process only", path, err)
    return load(data), path


def timing_cache_path(folder: Path, runtime: str, device: str) -> Path:
    """One timing cache per TensorRT version and GPU, shared by every engine built there."""
    return folder / "timing" / f"{_safe(runtime)}.{_safe(device)}.timing"


@dataclass(frozen=True)
class EngineRecord:
    """An engine file and what its sidecar says about it."""

    path: Path
    bytes: int
    last_used: float
    info: dict[str, Any]
    """The sidecar (empty when missing or unreadable)."""


def list_engines(folder: str | os.PathLike[str] | None = None) -> list[EngineRecord]:
    """Every engine in `folder` (default: the engine folder), newest use first."""
    root = engine_folder(folder)
    records = []
    for path in root.glob(f"*{SUFFIX}"):
        try:
            info = json.loads(_sidecar(path).read_text())
        except (OSError, ValueError):
            info = {}
        stat = path.stat()
        records.append(EngineRecord(path, stat.st_size, stat.st_mtime, info))
    return sorted(records, key=lambda r: r.last_used, reverse=True)


def prune_engines(
    folder: str | os.PathLike[str] | None = None,
    *,
    unused_days: float | None = None,
    keep: Callable[[EngineRecord], bool] | None = None,
    dry_run: bool = False,
) -> list[Path]:
    """Delete engines not used for `unused_days` or rejected by `keep`, and leftovers.

    Leftovers are sidecars and kernel caches without an engine and temporary files of interrupted writes older than
    a day. Each engine is deleted under its lock, so a process building or loading it is not cut
    short. Returns the deleted (or, with `dry_run`, the would-be deleted) paths.
    """
    root = engine_folder(folder)
    now = time.time()
    doomed: list[Path] = []
    for record in list_engines(root):
        old = unused_days is not None and now - record.last_used > unused_days * 86400
        if old or (keep is not None and not keep(record)):
            doomed.append(record.path)
    removed: list[Path] = []
    for path in doomed:
        if dry_run:
            removed.append(path)
            continue
        with files.file_lock(path):
            for victim in (path, _sidecar(path), kernel_cache_path(path)):
                if victim.exists():
                    victim.unlink()
                    removed.append(victim)
            # while held: a process waiting on it, or arriving now, locks a new file (files.file_lock)
            Path(f"{path}.lock").unlink(missing_ok=True)
    for extra in (SIDECAR, KERNELS):
        for orphan in root.glob(f"*{SUFFIX}{extra}"):
            if not orphan.with_name(orphan.name[: -len(extra)]).exists():
                removed.append(orphan)
                if not dry_run:
                    orphan.unlink(missing_ok=True)
    for lock in root.glob("*.lock"):  # of engines and kernel caches that are gone (not of builds running)
        target = lock.with_name(lock.name[: -len(".lock")])
        if not target.exists() and (files.lock_is_idle(lock) if dry_run else files.remove_idle_lock(lock)):
            removed.append(lock)
    for tmp in root.glob(".*.tmp"):
        if now - tmp.stat().st_mtime > 86400:
            removed.append(tmp)
            if not dry_run:
                tmp.unlink(missing_ok=True)
    return removed


def kernel_cache_path(engine: Path) -> Path:
    return engine.with_name(engine.name + KERNELS)


class KernelCache:
    """TensorRT-RTX's runtime cache for one engine, kept on disk beside it.

    TensorRT-RTX compiles its kernels for the GPU at run time (JIT), which costs seconds to
    minutes at every start; its `IRuntimeCache` keeps them for the next process. One cache object
    is shared by all the contexts of an engine (kernels one stream compiled serve the others, the
    way NVIDIA's TensorRT-Edge-LLM shares it). It is read when the first context is created and
    written back (atomically, under the file's lock, only when it grew new kernels) when the last
    runner using it is closed or garbage-collected: VapourSynth never closes filters explicitly,
    but it frees the script's nodes (and so the runners) when vspipe or an editor is done with
    it, which runs the `weakref.finalize` here. A cache TensorRT-RTX rejects (another GPU,
    driver or version: it validates the blob) is replaced, never an error.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cache: Any = None
        self._users = 0
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def attach(self, runtime_config: Any) -> None:
        """Give `runtime_config` (an `IRuntimeConfig`) the shared cache, creating it on first use."""
        with self._lock:
            if self.cache is None:
                self.cache = runtime_config.create_runtime_cache()
                try:
                    loaded = self.path.read_bytes()
                except FileNotFoundError:
                    loaded = b""
                if loaded and not self.cache.deserialize(loaded):
                    logger.info("runtime cache %s does not fit this GPU/driver/TensorRT-RTX; starting empty", self.path)
                    loaded = b""
                self._finalizer = weakref.finalize(self, _write_kernel_cache, self.path, self.cache, loaded)
            if not runtime_config.set_runtime_cache(self.cache):
                logger.warning("TensorRT-RTX refused the runtime cache; kernels will be compiled at every start")
            self._users += 1

    def release(self) -> None:
        """One user (runner) is done; the last one writes the cache to disk."""
        with self._lock:
            self._users -= 1
            if self._users <= 0 and self._finalizer is not None:
                self._finalizer()  # runs once: a later garbage collection does nothing


def _write_kernel_cache(path: Path, cache: Any, loaded: bytes) -> None:
    """Serialize `cache` to `path` if it holds more than what was loaded (never raises: a finalizer)."""
    try:
        data = bytes(cache.serialize())
        if data and data != loaded:
            with files.file_lock(path):
                files.atomic_write(path, data)
            logger.info("runtime cache %s saved (%d bytes)", path.name, len(data))
    except Exception as err:  # noqa: BLE001 - the cache only saves start-up time
        logger.warning("cannot save the runtime cache %s: %s", path, err)


def build_engine(network: Network, backend: _TensorRT, profile: ShapeProfile) -> Path:
    """Build (or find) the engine `backend.load(network, profile)` would use, ahead of time.

    Works without a GPU for TensorRT-RTX (its builder runs on the CPU); the engine is keyed on
    "no GPU" then, and a GPU machine builds its own. Returns the engine path.
    """
    from .trt import ensure_engine

    return ensure_engine(backend, network, profile)
