"""Every cache vssr writes, listed and pruned in one place (`vssr engines list|prune`).

- TensorRT / TensorRT-RTX engines (`engines/*.engine`, their `.json` sidecars and `.rtxcache`
  runtime caches of JIT-compiled kernels): through `trt_cache`, which deletes each engine under
  its lock;
- OpenVINO compiled models (`engines/openvino/<key>/`, one folder per network, shape and settings;
  its modification time is refreshed on every use);
- converted ONNX (`models/*.onnx` from the zoo, `models/int8/*.onnx` calibrated int8 models): all
  re-creatable, deleted under the lock their writer takes;
- idle `*.lock` files (a lock nobody holds; held ones are never touched).

Last use is the file's modification time (engines and OpenVINO folders are touched when loaded) or
its access time, whichever is newer.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import files
from .backends import trt_cache

__all__ = ["CacheEntry", "entries", "prune"]

_ONNX_FOLDERS = ("", "int8")


@dataclass(frozen=True, slots=True)
class CacheEntry:
    kind: str
    """"tensorrt", "openvino", "onnx" or "lock"."""
    path: Path
    bytes: int
    last_used: float
    detail: str = ""


def _last_use(path: Path) -> float:
    stat = path.stat()
    return max(stat.st_mtime, stat.st_atime)


def _tree(folder: Path) -> tuple[int, float]:
    size, newest = 0, folder.stat().st_mtime
    for item in folder.rglob("*"):
        if item.is_file():
            size += item.stat().st_size
            newest = max(newest, item.stat().st_mtime)
    return size, newest


def _engines(engine_dir: Path) -> Iterator[CacheEntry]:
    for record in trt_cache.list_engines(engine_dir):
        extra = [p for p in (trt_cache.kernel_cache_path(record.path),) if p.is_file()]
        size = record.bytes + sum(p.stat().st_size for p in extra)
        built = record.info.get("build_seconds")
        detail = f"built in {built:.0f} s" if isinstance(built, int | float) else ""
        if extra:
            detail = ", ".join(filter(None, [detail, "with its RTX runtime cache"]))
        yield CacheEntry("tensorrt", record.path, size, record.last_used, detail)


def _openvino(engine_dir: Path) -> Iterator[CacheEntry]:
    root = engine_dir / "openvino"
    for folder in sorted(root.iterdir()) if root.is_dir() else ():
        if folder.is_dir():
            size, _ = _tree(folder)
            label = folder / "vssr.txt"
            what = label.read_text(errors="replace").strip() if label.is_file() else "compiled model"
            yield CacheEntry("openvino", folder, size, folder.stat().st_mtime, what)


def _onnx(model_dir: Path) -> Iterator[CacheEntry]:
    for sub in _ONNX_FOLDERS:
        for path in sorted((model_dir / sub).glob("*.onnx")) if (model_dir / sub).is_dir() else ():
            yield CacheEntry("onnx", path, path.stat().st_size, _last_use(path), "int8" if sub else "converted")


def _locks(*roots: Path) -> Iterator[CacheEntry]:
    for root in roots:
        for path in sorted(root.rglob("*.lock")) if root.is_dir() else ():
            yield CacheEntry("lock", path, path.stat().st_size, _last_use(path), "")


def entries(engine_dir: Path | None = None, model_dir: Path | None = None) -> list[CacheEntry]:
    """Everything cached, newest use first within each kind."""
    engine_dir = engine_dir or trt_cache.engine_folder(None)
    model_dir = model_dir or files.models_dir()
    out: list[CacheEntry] = []
    for found in (_engines(engine_dir), _openvino(engine_dir), _onnx(model_dir), _locks(engine_dir, model_dir)):
        out += sorted(found, key=lambda e: e.last_used, reverse=True)
    return out


def prune(unused_days: float | None, *, dry_run: bool = False, engine_dir: Path | None = None,
          model_dir: Path | None = None) -> list[Path]:
    """Delete what was not used for `unused_days` (None: only leftovers and idle locks).

    TensorRT engines go through trt_cache.prune_engines (under their locks, with their sidecars
    and runtime caches); OpenVINO folders and ONNX files are deleted under their own lock.
    """
    engine_dir = engine_dir or trt_cache.engine_folder(None)
    model_dir = model_dir or files.models_dir()
    removed = trt_cache.prune_engines(engine_dir, unused_days=unused_days, dry_run=dry_run)
    cutoff = None if unused_days is None else time.time() - unused_days * 86400
    for entry in [*_openvino(engine_dir), *_onnx(model_dir)]:
        if cutoff is None or entry.last_used > cutoff:
            continue
        removed.append(entry.path)
        if dry_run:
            continue
        with files.file_lock(entry.path):
            if entry.path.is_dir():
                shutil.rmtree(entry.path, ignore_errors=True)
            elif entry.path.exists():
                entry.path.unlink()
    for entry in _locks(engine_dir, model_dir):
        if dry_run:
            if files.lock_is_idle(entry.path):
                removed.append(entry.path)
        elif files.remove_idle_lock(entry.path):
            removed.append(entry.path)
    return removed


def describe(entry: CacheEntry) -> str:
    used = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.last_used))
    size = f"{entry.bytes / 2**20:.1f} MiB" if entry.bytes >= 2**16 else f"{entry.bytes} B"
    name = os.fspath(entry.path.name)
    return f"{entry.kind:<9} {name}  {size}, last used {used}" + (f", {entry.detail}" if entry.detail else "")
