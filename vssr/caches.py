"""Every cache vssr writes, listed and pruned in one place (`vssr engines list|prune`, also
spelt `vssr caches ...`).

- TensorRT / TensorRT-RTX engines (`engines/*.engine`, with their sidecars and runtime caches of
  JIT-compiled kernels): through the TensorRT cache module, which deletes each engine under its lock;
- OpenVINO compiled models (`engines/openvino/<digest>.blob`), converted ONNX (`models/*.onnx`) and
  calibrated int8 ONNX (`models/int8/*.onnx`): `vssr.cachefile` entries (file + `.meta.json`);
- leftovers of killed writers (temporary files, idle `*.lock` files), sidecars without their
  entry, and empty folders that OpenVINO compiles of older vssr versions left.

An entry that no longer matches its sidecar is listed as DAMAGED: it is rebuilt on next use and
`prune` removes it. Nothing else in these folders is touched (models/ also holds the README,
downloaded weights and the user's own files). Last use is the file's modification time (entries
are touched when loaded).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import cachefile, files
from .backends.trt import cache as trt_cache

__all__ = ["CacheEntry", "describe", "entries", "prune"]

_ENTRY_FOLDERS = {"onnx": ("", ".onnx"), "int8": ("int8", ".onnx"), "openvino": ("openvino", ".blob")}
"""kind -> (folder under models/ or engines/, what its entries are named)."""

_VSSR_NAMES = {
    "onnx": re.compile(r".+\.[0-9a-f]{16}\.onnx"),  # convert.py: <name>.<digest16>.onnx
    "int8": re.compile(r".+_int8.*_[0-9a-f]+\.onnx"),  # quant/qdq.py: <name>_int8<kind>_<method>_<key>.onnx
    "openvino": re.compile(r"[0-9a-f]{24}\.blob"),  # backends/ov.py: <digest24>.blob
}
"""What vssr names its entries: a file that has no sidecar and no such name is the user's (a model
they keep in models/), never listed or pruned."""

_LEGACY_OPENVINO = re.compile(r"[0-9a-f]{24}")
"""engines/openvino/<digest24>/: OpenVINO's own CACHE_DIR of older vssr versions, which vssr no
longer reads (it exports verified blobs instead): removed by every prune."""


@dataclass(frozen=True, slots=True)
class CacheEntry:
    kind: str
    """"tensorrt", "openvino", "onnx", "int8" or "lock"."""
    path: Path
    bytes: int
    last_used: float
    intact: bool = True
    """The entry matches its sidecar (size, sha256); a damaged one is rebuilt on next use."""
    detail: str = ""


def _folders(engine_dir: Path | None, model_dir: Path | None) -> tuple[Path, Path]:
    return engine_dir or trt_cache.engine_folder(None), model_dir or files.models_dir()


def _entry_folder(kind: str, engine_dir: Path, model_dir: Path) -> Path:
    sub, _ = _ENTRY_FOLDERS[kind]
    return (engine_dir if kind == "openvino" else model_dir) / sub


def _engines(engine_dir: Path) -> Iterator[CacheEntry]:
    for record in trt_cache.list_engines(engine_dir):
        kernels = trt_cache.runtime_cache_path(record.path)
        size = record.bytes + (kernels.stat().st_size if kernels.is_file() else 0)
        built = record.info.get("build_seconds")
        detail = f"built in {built:.0f} s" if isinstance(built, int | float) else ""
        if kernels.is_file():
            detail = ", ".join(filter(None, [detail, "with its RTX runtime cache"]))
        yield CacheEntry("tensorrt", record.path, size, record.last_used, record.intact, detail)


def _cachefile_entries(kind: str, folder: Path) -> Iterator[CacheEntry]:
    _, suffix = _ENTRY_FOLDERS[kind]
    with contextlib.suppress(OSError):
        for path in sorted(folder.glob(f"*{suffix}")):
            ours = _VSSR_NAMES[kind].fullmatch(path.name) or cachefile.meta_path(path).exists()
            if path.is_file() and not path.name.startswith(".") and ours:
                with contextlib.suppress(OSError):  # pruned meanwhile
                    stat = path.stat()
                    key = cachefile.stored_key(path)
                    what = key.get("what", "") if isinstance(key, dict) else ""
                    detail = str(what) if what else {"onnx": "converted", "int8": "int8"}.get(kind, "")
                    yield CacheEntry(kind, path, stat.st_size, stat.st_mtime, cachefile.intact(path), detail)


def _legacy_openvino(engine_dir: Path) -> Iterator[CacheEntry]:
    folder = engine_dir / "openvino"
    with contextlib.suppress(OSError):
        for sub in sorted(folder.iterdir()):
            if sub.is_dir() and not sub.is_symlink() and _LEGACY_OPENVINO.fullmatch(sub.name):
                size = sum(p.stat().st_size for p in sub.rglob("*") if p.is_file())
                yield CacheEntry("openvino", sub, size, sub.stat().st_mtime, True,
                                 "cache folder of an older vssr, no longer read: `prune` removes it")


def _locks(*roots: Path) -> Iterator[CacheEntry]:
    for root in roots:
        for path in sorted(root.rglob("*.lock")) if root.is_dir() else ():
            with contextlib.suppress(OSError):
                yield CacheEntry("lock", path, path.stat().st_size, path.stat().st_mtime)


def entries(engine_dir: Path | None = None, model_dir: Path | None = None) -> list[CacheEntry]:
    """Everything cached, newest use first within each kind."""
    engine_dir, model_dir = _folders(engine_dir, model_dir)
    found = [_engines(engine_dir)]
    found += [_cachefile_entries(kind, _entry_folder(kind, engine_dir, model_dir)) for kind in _ENTRY_FOLDERS]
    found.append(_legacy_openvino(engine_dir))
    out: list[CacheEntry] = []
    for kind_entries in (*found, _locks(engine_dir, model_dir)):
        out += sorted(kind_entries, key=lambda e: e.last_used, reverse=True)
    return out


def prune(unused_days: float | None = None, *, dry_run: bool = False, engine_dir: Path | None = None,
          model_dir: Path | None = None) -> list[Path]:
    """Delete leftovers, damaged entries, orphan sidecars, empty folders and (with `unused_days`)
    entries not used for that long; each entry under its lock, so a process writing or loading it
    is not cut short. Returns the removed (with `dry_run`: the removable) paths."""
    engine_dir, model_dir = _folders(engine_dir, model_dir)
    removed = trt_cache.prune_engines(engine_dir, unused_days=unused_days, dry_run=dry_run)
    now = time.time()
    for kind in _ENTRY_FOLDERS:
        folder = _entry_folder(kind, engine_dir, model_dir)
        if not folder.is_dir():
            continue
        removed += files.remove_leftovers(folder, dry_run=dry_run)
        for entry in _cachefile_entries(kind, folder):
            stale = unused_days is not None and now - entry.last_used > unused_days * 86400
            if stale or not entry.intact:
                removed += cachefile.remove(entry.path, [entry.path, cachefile.meta_path(entry.path)],
                                            chosen=stale, dry_run=dry_run)
        for sidecar in sorted(folder.glob(f"*{cachefile.META_SUFFIX}")):
            if not sidecar.with_name(sidecar.name[: -len(cachefile.META_SUFFIX)]).exists():
                removed.append(sidecar)
                if not dry_run:
                    sidecar.unlink(missing_ok=True)
        if kind == "openvino":
            for legacy in _legacy_openvino(engine_dir):  # older vssr's CACHE_DIR folders, empty or not
                removed.append(legacy.path)
                if not dry_run:
                    shutil.rmtree(legacy.path, ignore_errors=True)
    for lock in _locks(engine_dir, model_dir):  # idle locks in subfolders (models/rife, ...)
        if lock.path in removed:
            continue
        if files.lock_is_idle(lock.path) if dry_run else files.remove_idle_lock(lock.path):
            removed.append(lock.path)
    return removed


def describe(entry: CacheEntry) -> str:
    """One line of `vssr engines list`."""
    used = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.last_used))
    size = f"{entry.bytes / 2**20:.1f} MiB" if entry.bytes >= 2**16 else f"{entry.bytes} B"
    state = "" if entry.intact else "  DAMAGED (rebuilt on next use; `prune` removes it)"
    detail = f", {entry.detail}" if entry.detail else ""
    return f"{entry.kind:<9} {os.fspath(entry.path)}  {size}, last used {used}{detail}{state}"
