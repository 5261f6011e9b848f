"""`python -m vssr caches list | prune`: the converted-model, int8 and OpenVINO caches.

Every entry in them is a `vssr.cachefile` entry (file + `.meta.json` sidecar). `list` shows each
with its size, last use and whether it still matches its sidecar; `prune` removes leftovers of
killed writers, damaged entries, sidecars without an entry, empty folders of old OpenVINO
compiles, and (with `--unused-days`) entries not used for that long. TensorRT engines have their
own command (`python -m vssr engines`).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from . import cachefile, files

__all__ = ["CacheRecord", "add_command", "cache_folders", "list_entries", "prune"]

_SUFFIXES = {"onnx": ".onnx", "int8": ".onnx", "openvino": ".blob"}
"""What an entry of each kind is named; nothing else in these folders is touched (models/ also
holds the README, shipped weights and the user's own files)."""


def cache_folders() -> dict[str, Path]:
    """The cache folders by kind (from VSSR_MODEL_DIR / VSSR_ENGINE_DIR or their defaults)."""
    return {
        "onnx": files.models_dir(),
        "int8": files.models_dir() / "int8",
        "openvino": files.engines_dir() / "openvino",
    }


@dataclass(frozen=True)
class CacheRecord:
    kind: str
    path: Path
    bytes: int
    last_used: float
    intact: bool
    """The entry matches its sidecar (size, sha256); a damaged one is rebuilt on next use."""


def _entries(folder: Path, kind: str) -> list[Path]:
    try:
        return sorted(p for p in folder.glob(f"*{_SUFFIXES[kind]}") if p.is_file() and not p.name.startswith("."))
    except OSError:
        return []


def list_entries() -> list[CacheRecord]:
    """Every cache entry, newest use first."""
    records = []
    for kind, folder in cache_folders().items():
        for path in _entries(folder, kind):
            with contextlib.suppress(OSError):
                stat = path.stat()
                records.append(CacheRecord(kind, path, stat.st_size, stat.st_mtime, cachefile.intact(path)))
    return sorted(records, key=lambda r: r.last_used, reverse=True)


def prune(*, unused_days: float | None = None, dry_run: bool = False) -> list[Path]:
    """Remove leftovers, damaged entries, orphan sidecars, empty folders and (optionally) entries
    unused for `unused_days`; each entry under its lock, so a process writing it is not cut short.
    Returns the removed (with `dry_run`: the removable) paths."""
    removed: list[Path] = []
    now = time.time()
    for kind, folder in cache_folders().items():
        if not folder.is_dir():
            continue
        if dry_run:
            removed += [p for p in sorted(folder.glob(f".*{files.TMP_SUFFIX}")) + sorted(folder.glob("*.lock"))
                        if files.lock_is_idle(p)]
        else:
            removed += files.remove_leftovers(folder)
        for entry in _entries(folder, kind):
            stale = unused_days is not None and now - entry.stat().st_mtime > unused_days * 86400
            if stale or not cachefile.intact(entry):
                removed += _remove_entry(entry, dry_run)
        for sidecar in sorted(folder.glob(f"*{cachefile.META_SUFFIX}")):
            if not sidecar.with_name(sidecar.name[: -len(cachefile.META_SUFFIX)]).exists():
                removed.append(sidecar)
                if not dry_run:
                    sidecar.unlink(missing_ok=True)
        subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()) if kind == "openvino" else []
        for sub in subfolders:
            if not any(sub.iterdir()):  # what failed OpenVINO compiles of older versions left
                removed.append(sub)
                if not dry_run:
                    with contextlib.suppress(OSError):
                        sub.rmdir()
    return removed


def _remove_entry(entry: Path, dry_run: bool) -> list[Path]:
    victims = [p for p in (entry, cachefile.meta_path(entry)) if p.exists()]
    if dry_run:
        return victims
    with files.file_lock(entry):
        for victim in victims:
            victim.unlink(missing_ok=True)
        Path(f"{entry}.lock").unlink(missing_ok=True)  # as its holder: waiters re-lock by name
    return victims


def _run(args: argparse.Namespace) -> int:
    if args.action == "list":
        records = list_entries()
        for r in records:
            used = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.last_used))
            state = "" if r.intact else "  DAMAGED (rebuilt on next use; `prune` removes it)"
            print(f"{r.kind:8} {r.path}  {r.bytes / 2**20:.1f} MiB, last used {used}{state}")
        print(f"{len(records)} cache entr{'y' if len(records) == 1 else 'ies'} in "
              f"{', '.join(str(p) for p in cache_folders().values())}")
        return 0
    if args.unused_days is not None and not args.unused_days >= 0:
        print("--unused-days must be >= 0")
        return 2
    removed = prune(unused_days=args.unused_days, dry_run=args.dry_run)
    for path in removed:
        print(path)
    print(f"{'would remove' if args.dry_run else 'removed'} {len(removed)} path(s)")
    return 0


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `caches list | prune` on the CLI's subparsers."""
    parser = sub.add_parser("caches", help="list or prune converted models, int8 models and OpenVINO blobs")
    parser.add_argument("action", choices=["list", "prune"])
    parser.add_argument("--unused-days", type=float, default=None, help="prune: entries unused this long")
    parser.add_argument("--dry-run", action="store_true", help="prune: only print what would go")
    parser.set_defaults(run=_run)
