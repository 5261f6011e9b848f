"""The TensorRT engine cache: direct-mapped, never stale, never torn, verified before every use.

One file per key. The key (`EngineSpec.key`) holds everything that changes an engine: the ONNX
digest (after precision conversion), the shape profile, precisions and I/O types, every builder
option, the TensorRT flavour and version, the GPU name and compute capability. The file name is
readable plus the first 16 hex digits of sha256(key):

    <model>.<shape>.<precision>.<hash16>.engine
      + .engine.meta.json      the sidecar vouching for it (key, size, sha256): `vssr/cachefile.py`
      + .engine.json           how it was built (model, shape, precision, build seconds), for listing
      + .engine.runtimecache   TensorRT-RTX's JIT-compiled kernels, with its own `.meta.json`

Engines and runtime caches are `cachefile` entries: written atomically, then their sidecar; read
only when the sidecar holds the key asked for and the bytes have its size and sha256, otherwise
rebuilt with a warning naming the file. An engine that passes and still fails to deserialize
(another TensorRT or GPU under the same key) is rebuilt too. Two processes that need the same
engine build it once (the second waits, then loads the first one's file); leftovers of killed
writers are removed on the next load; an unwritable folder builds in memory with one warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import cachefile, files
from ...errors import BackendError
from .plan import ENGINE_SUFFIX, EngineSpec, safe_name, shape_label

if TYPE_CHECKING:
    import tensorrt

__all__ = [
    "EngineRecord",
    "RuntimeCache",
    "engine_folder",
    "list_engines",
    "load_or_build",
    "prune_engines",
    "runtime_cache_path",
    "timing_cache_path",
]

logger = logging.getLogger(__name__)

SUFFIX = ENGINE_SUFFIX
SIDECAR = ".json"
"""How an engine was built (`<engine>.json`): read by `list_engines`, never trusted for its bytes."""
META = cachefile.META_SUFFIX
RUNTIME_CACHE = ".runtimecache"
"""TensorRT-RTX's runtime cache (its JIT-compiled kernels) of an engine: `<engine>.runtimecache` beside it."""
LEGACY_RUNTIME_CACHE = ".rtxcache"
"""What the runtime cache was called before BUILD_RULES 3 (whose engines are all rebuilt): pruned as leftovers."""
ENV = "VSSR_ENGINE_DIR"


def engine_folder(folder: str | os.PathLike[str] | None) -> Path:
    """The given folder, else $VSSR_ENGINE_DIR, else engines/ of the checkout or the user cache."""
    return Path(folder) if folder is not None else files.engines_dir()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR)


def _write_build_record(path: Path, spec: EngineSpec, seconds: float) -> None:
    record = {
        "bytes": path.stat().st_size,
        "model": spec.model,
        "shape": shape_label(spec.profile),
        "precision": spec.precision,
        "digest": spec.digest,
        "key": spec.key,
        "build_seconds": round(seconds, 3),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    files.atomic_write(_sidecar(path), json.dumps(record, indent=2, sort_keys=True, default=str).encode())


def _writable_or_raise(folder: Path, path: Path) -> None:
    """For a build whose file is the point: fail before building where the folder cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=files.TMP_SUFFIX, dir=folder)
        os.close(fd)
        os.unlink(probe)  # a probe left by a killed process is an unheld leftover: removed next time
    except OSError as err:
        raise BackendError(f"cannot write the engine {path} ({err.strerror or err}); set {ENV} or "
                           "engine_folder= to a writable folder") from err


def load_or_build[T](
    folder: Path,
    spec: EngineSpec,
    build: Callable[[], bytes],
    load: Callable[[bytes], T],
    *,
    must_keep: bool = False,
) -> tuple[T, Path]:
    """Return `load(engine bytes)` for `spec` and the engine's path, building (once, across
    processes) when there is no engine its sidecar vouches for (`cachefile.load_or_build`).

    `load` must raise (and never return None) when the bytes are not a usable engine: then the
    engine is rebuilt. A `build` error propagates and leaves no file behind. Where the folder
    cannot be written (read-only, full, a regular file in the way) the engine is built for this
    process only, with one warning per folder, unless `must_keep` (building ahead of time: the
    file is the point), which then raises BackendError, before building when it can tell.
    """
    path = folder / spec.filename
    if must_keep:
        _writable_or_raise(folder, path)

    seconds: list[float] = []

    def timed_build() -> bytes:
        logger.info("building TensorRT engine %s (minutes for a large model; done once, then cached)", path.name)
        start = time.monotonic()
        data = build()
        seconds.append(time.monotonic() - start)
        return data

    result = cachefile.load_or_build(path, spec.key, timed_build, load, env=ENV)
    saved = cachefile.verified(path, spec.key) if seconds or must_keep else True
    if must_keep and not saved:
        raise BackendError(f"cannot save the engine {path}; set {ENV} or engine_folder= to a writable folder")
    if seconds and saved:
        with contextlib.suppress(OSError):  # only for listing
            _write_build_record(path, spec, seconds[0])
    return result, path


def timing_cache_path(folder: Path, runtime: str, device: str) -> Path:
    """One timing cache per TensorRT version and GPU, shared by every engine built there."""
    return folder / "timing" / f"{safe_name(runtime)}.{safe_name(device)}.timing"


@dataclass(frozen=True)
class EngineRecord:
    """An engine file and what its sidecars say about it."""

    path: Path
    bytes: int
    last_used: float
    info: dict[str, Any]
    """How it was built (`<engine>.json`; empty when missing or unreadable)."""
    intact: bool
    """It matches its `.meta.json` sidecar (size, sha256); if not, it is rebuilt on next use and
    `prune_engines` removes it (engines written before the sidecars existed are such)."""


def list_engines(folder: str | os.PathLike[str] | None = None) -> list[EngineRecord]:
    """Every engine in `folder` (default: the engine folder), newest use first."""
    root = engine_folder(folder)
    records = []
    for path in root.glob(f"*{SUFFIX}"):
        try:
            info = json.loads(_sidecar(path).read_text())
        except (OSError, ValueError):
            info = {}
        with contextlib.suppress(FileNotFoundError):  # pruned meanwhile
            stat = path.stat()
            records.append(EngineRecord(path, stat.st_size, stat.st_mtime, info, cachefile.intact(path)))
    return sorted(records, key=lambda r: r.last_used, reverse=True)


def _companions(engine: Path) -> list[Path]:
    """The files that live and die with an engine: its sidecars and its runtime cache with its sidecar."""
    kernels = runtime_cache_path(engine)
    return [cachefile.meta_path(engine), _sidecar(engine), kernels, cachefile.meta_path(kernels)]


def _owner(path: Path) -> Path | None:
    """The file whose companion `path` is (None: it has none, an old-name runtime cache)."""
    name = path.name
    if name.endswith(LEGACY_RUNTIME_CACHE):
        return None
    for extra in (META, SIDECAR, RUNTIME_CACHE):  # META before SIDECAR: `.meta.json` ends in `.json`
        if name.endswith(extra):
            return path.with_name(name[: -len(extra)])
    return path


def prune_engines(
    folder: str | os.PathLike[str] | None = None,
    *,
    unused_days: float | None = None,
    keep: Callable[[EngineRecord], bool] | None = None,
    dry_run: bool = False,
) -> list[Path]:
    """Delete engines not used for `unused_days`, rejected by `keep` or damaged, and leftovers.

    A deleted engine takes its sidecars and runtime cache with it. Leftovers are: temporary files
    and locks of killed writers (`files.remove_leftovers`), sidecars and runtime caches without
    their file, runtime caches of the old name and runtime caches that do not match their sidecar.
    Each engine and runtime cache is deleted under its lock (a damaged one only if it still is
    then), so a process building or loading it is not cut short. Returns the deleted (or, with
    `dry_run`, the would-be deleted) paths.
    """
    root = engine_folder(folder)
    if not root.is_dir():
        return []
    now = time.time()
    removed = files.remove_leftovers(root, dry_run=dry_run)
    for record in list_engines(root):
        unused = unused_days is not None and now - record.last_used > unused_days * 86400
        chosen = unused or (keep is not None and not keep(record))
        if chosen or not record.intact:
            removed += cachefile.remove(record.path, [record.path, *_companions(record.path)], chosen=chosen, dry_run=dry_run)
    gone = set(removed)

    def present(path: Path | None) -> bool:  # with dry_run: as if the removable were gone
        return path is not None and path not in gone and path.exists()

    for kernels in sorted(root.glob(f"*{SUFFIX}{RUNTIME_CACHE}")):
        if present(kernels) and present(_owner(kernels)) and not cachefile.intact(kernels):
            removed += cachefile.remove(kernels, [kernels, cachefile.meta_path(kernels)], chosen=False, dry_run=dry_run)
    gone = set(removed)
    for extra in (LEGACY_RUNTIME_CACHE, RUNTIME_CACHE, SIDECAR, META):  # owners before their sidecars
        for orphan in sorted(root.glob(f"*{SUFFIX}*{extra}")):
            if present(orphan) and not present(_owner(orphan)):
                removed.append(orphan)
                gone.add(orphan)
                if not dry_run:
                    orphan.unlink(missing_ok=True)
    return removed


def runtime_cache_path(engine: Path) -> Path:
    return engine.with_name(engine.name + RUNTIME_CACHE)


class RuntimeCache:
    """TensorRT-RTX's runtime cache for one engine, kept on disk beside it.

    TensorRT-RTX compiles its kernels for the GPU at run time (JIT), which costs seconds to
    minutes at every start; its `IRuntimeCache` keeps them for the next process. One cache object
    is shared by all the contexts of an engine (kernels one stream compiled serve the others, the
    way NVIDIA's TensorRT-Edge-LLM shares it). It is read when the first context is created and
    written back (a `cachefile` entry: atomically, then its sidecar, under the file's lock, only
    when it grew new kernels) when the last runner using it is closed or garbage-collected:
    VapourSynth never closes filters explicitly, but it frees the script's nodes (and so the
    runners) when vspipe or an editor is done with it, which runs the `weakref.finalize` here.

    Its key is the engine's file name and sha256 (from the engine's sidecar), so kernels of a
    rebuilt or replaced engine are never offered to another. A file its sidecar does not vouch
    for starts an empty cache with a warning naming it; one TensorRT-RTX rejects (another GPU,
    driver or version: it validates the blob) starts an empty cache too; neither is an error.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cache: tensorrt.IRuntimeCache | None = None
        self._users = 0
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def key(self) -> dict[str, Any]:
        """What the kernels belong to: the engine file beside them, by name and sha256."""
        engine = self.path.with_name(self.path.name.removesuffix(RUNTIME_CACHE))
        try:
            sha256 = json.loads(cachefile.meta_path(engine).read_bytes()[: 1 << 20])["sha256"]
        except (OSError, ValueError, KeyError, TypeError):  # an engine built in memory has none
            sha256 = None
        return {"engine": engine.name, "engine_sha256": sha256}

    def attach(self, runtime_config: tensorrt.IRuntimeConfig) -> None:
        """Give `runtime_config` (an `IRuntimeConfig`) the shared cache, creating it on first use."""
        with self._lock:
            if self.cache is None:
                self.cache = runtime_config.create_runtime_cache()
                key = self.key()
                loaded = cachefile.read_verified(self.path, key) or b""
                if loaded and not self.cache.deserialize(loaded):
                    logger.info("runtime cache %s does not fit this GPU/driver/TensorRT-RTX; starting empty", self.path)
                    loaded = b""
                self._finalizer = weakref.finalize(self, _write_runtime_cache, self.path, self.cache, loaded, key)
            if not runtime_config.set_runtime_cache(self.cache):
                logger.warning("TensorRT-RTX refused the runtime cache; kernels will be compiled at every start")
            self._users += 1

    def release(self) -> None:
        """One user (runner) is done; the last one writes the cache to disk."""
        with self._lock:
            self._users -= 1
            if self._users <= 0 and self._finalizer is not None:
                self._finalizer()  # runs once: a later garbage collection does nothing


def _write_runtime_cache(path: Path, cache: tensorrt.IRuntimeCache, loaded: bytes, key: dict[str, Any]) -> None:
    """Save `cache` to `path` with its sidecar if it holds more than what was loaded (never
    raises: a finalizer)."""
    try:
        data = bytes(cache.serialize())
        if data and data != loaded:
            with files.file_lock(path):
                cachefile.write(path, data, key)
                Path(f"{path}.lock").unlink(missing_ok=True)  # as its holder: waiters re-lock by name
            logger.info("runtime cache %s saved (%d bytes)", path.name, len(data))
    except Exception as err:
        # an unwritable folder was reported once already, when its engine was built in memory
        unwritable = isinstance(err, OSError) and err.errno in files.CANNOT_WRITE
        (logger.info if unwritable else logger.warning)("cannot save the runtime cache %s: %s", path, err)
