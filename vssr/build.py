"""`vssr build SCRIPT.vpy [-a name=value ...]`: build every engine a script needs, ahead of time.

`vssr build --for MODEL --size WxH` does the same without a script: one model function on a
blank clip of that size and format, with the backend asked for.

The script is evaluated as vspipe evaluates it (`__name__ == "__vapoursynth__"`, `-a` arguments
as globals), with the real VapourSynth core: creating its filters builds or compiles whatever they
need (TensorRT engines, OpenVINO compiled models, converted and int8 ONNX) into the caches, with
the build progress in the log. No frame is rendered. Then it prints what is new in the caches, so
the first preview or encode starts at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import runpy
import time
from collections.abc import Callable
from pathlib import Path

from . import caches

__all__ = ["FAMILIES", "build_model", "build_script"]

logger = logging.getLogger(__name__)


FAMILIES = ("realesrgan", "quicksrnet", "rife", "edvr")
"""The model functions `--for` builds, by their `vssr models` names."""

BACKENDS = {"ort": "ORT", "ov": "OV", "trt": "TRT", "trt_rtx": "TRT_RTX"}
"""--backend value -> vssr.Backend class."""

_WINDOW = 8
"""Frames of the blank clip: more than EDVR's window and RIFE's pair need at creation."""


def _written_since(before: dict[Path, float]) -> list[caches.CacheEntry]:
    """The cache entries written or touched (loaded) since `before` (path -> last use) was taken."""
    return [e for e in caches.entries() if e.kind != "lock" and before.get(e.path, -1.0) < e.last_used]


def _last_uses() -> dict[Path, float]:
    return {e.path: e.last_used for e in caches.entries()}


def build_model(family: str, width: int, height: int, *, model: str | None = None, backend: str | None = None,
                sample_format: str = "RGBS", tilesize: int | None = None) -> list[caches.CacheEntry]:
    """Create `family`'s filter on a blank `width`x`height` clip; return the cache entries it wrote.

    model: Real-ESRGAN's zoo name or file (default its default), QuickSRNet's size ("small"),
    RIFE's version or weights file (required), EDVR's checkpoint (required). backend: a BACKENDS
    key, default vssr's default backend. Errors are the model function's VssrError.
    """
    import vapoursynth as vs

    import vssr

    if family not in FAMILIES:
        raise ValueError(f"--for must be one of {', '.join(FAMILIES)}, not {family!r}")
    if family in ("rife", "edvr") and model is None:
        what = "a version (4.22) or a flownet .pkl / ONNX path" if family == "rife" else "a BasicSR checkpoint path"
        raise ValueError(f"--for {family} needs --model: {what}")
    config = None if backend is None else getattr(vssr.Backend, BACKENDS[backend])()
    clip = vs.core.std.BlankClip(format=getattr(vs, sample_format), width=width, height=height, length=_WINDOW)
    options: dict[str, object] = {"backend": config}
    if tilesize is not None:
        options["tilesize"] = tilesize
    if model is not None:
        options["size" if family == "quicksrnet" else "model"] = model
    function: dict[str, Callable[..., object]] = {"realesrgan": vssr.RealESRGAN, "quicksrnet": vssr.QuickSRNet, "rife": vssr.RIFE, "edvr": vssr.EDVR}
    logger.info("building %s (%s) for %dx%d %s on %s", family, model or "default model", width, height,
                sample_format, backend or "the default backend")
    before = _last_uses()
    start = time.time()
    function[family](clip, **options)
    logger.info("%s ready in %.1f s", family, time.time() - start)
    return _written_since(before)


def frame_size(text: str) -> tuple[int, int]:
    """--size WxH (1920x1080): (width, height)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if match is None or 0 in (int(match[1]), int(match[2])):
        raise argparse.ArgumentTypeError(f"--size takes WIDTHxHEIGHT, e.g. 1920x1080, not {text!r}")
    return int(match[1]), int(match[2])


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """`vssr build --for MODEL --size WxH [--model ...] [--backend ...] [--format ...] [--tilesize N]`."""
    parser.add_argument("--for", dest="model_for", choices=FAMILIES, default=None,
                        help="build for this model function instead of a script (needs --size)")
    parser.add_argument("--size", type=frame_size, default=None, help="the clip's frame size, WxH (e.g. 1920x1080)")
    parser.add_argument("--model", default=None,
                        help="realesrgan: zoo name or file; quicksrnet: size; rife: version (4.22) or weights; "
                             "edvr: checkpoint")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default=None, help="default: vssr's default backend")
    parser.add_argument("--format", choices=("RGBS", "RGBH"), default="RGBS",
                        help="the clip's format: RGBH builds the fp16-input engine")
    parser.add_argument("--tilesize", type=int, default=None, help="the tile size the script will use, if any")


def build_script(script: str | os.PathLike[str], args: dict[str, str]) -> list[caches.CacheEntry]:
    """Evaluate `script` with `args` (as vspipe's -a name=value); return the cache entries it wrote."""
    import vapoursynth as vs

    path = Path(script).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such script: {path}")
    before = _last_uses()
    start = time.time()
    # vspipe passes -a values as bytes; scripts written for it decode them
    runpy.run_path(os.fspath(path), init_globals={k: v.encode() for k, v in args.items()}, run_name="__vapoursynth__")
    outputs = vs.get_outputs()
    logger.info("%s evaluated in %.1f s: %d output(s)", path.name, time.time() - start, len(outputs))
    return _written_since(before)
