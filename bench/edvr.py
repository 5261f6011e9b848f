"""EDVR-M x4 on CPU through vssr.EDVR: split vs monolithic, native DeformConv vs decomposition.

    .venv/bin/python bench/edvr.py                                  # 180x320 -> 720x1280, 8 frames
    .venv/bin/python bench/edvr.py --frames 6 --only ort-split-native,ort-mono-native

EDVR-M shape (num_feat 64, 5 frames, 8 deformable groups, 5 extraction / 10 reconstruction
blocks) with random weights: the same compute as EDVR_M_x4_SR_REDS_official (no checkpoint can be
fetched here; pass --model PATH.pth to use one). Frames are random noise. Each configuration runs
the clip's frames in order; the first --warmup output frames (session warm-up, and the split's
initial feature fill) are excluded from the timed part. Prints ms/frame and fps, and the ratios
split/monolithic and native/decomposed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# openvino before the VapourSynth core (see vssr/backends/ov.py)
from vssr.backends import ov as vssr_ov  # noqa: E402

HAS_OV = vssr_ov.preload()

import numpy as np  # noqa: E402
import vapoursynth as vs  # noqa: E402

from tests.arch.edvr_numpy import random_state  # noqa: E402
from vssr.backends import Backend  # noqa: E402
from vssr.filters.edvr import EDVR  # noqa: E402

core = vs.core

CONFIGS = {  # name: (backend factory, split, deform)
    "ort-mono-native": (lambda: Backend.ORT(), False, "native"),
    "ort-mono-decomposed": (lambda: Backend.ORT(), False, "decomposed"),
    "ort-split-native": (lambda: Backend.ORT(), True, "native"),
    "ort-split-decomposed": (lambda: Backend.ORT(), True, "decomposed"),
    "ov-mono-decomposed": (lambda: Backend.OV(precision="f32"), False, "decomposed"),
    "ov-split-decomposed": (lambda: Backend.OV(precision="f32"), True, "decomposed"),
}


def source(frames: int, height: int, width: int) -> vs.VideoNode:
    data = np.random.default_rng(0).random((frames, 3, height, width)).astype(np.float32)
    blank = core.std.BlankClip(width=width, height=height, format=vs.RGBS, length=frames)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        f = f.copy()
        for p in range(3):
            np.asarray(f[p])[:] = data[n, p]
        return f

    return core.std.ModifyFrame(blank, blank, fill)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--model", default=None, help="a BasicSR EDVR .pth (default: EDVR-M random weights)")
    parser.add_argument("--only", default="", help="comma-separated config names: " + ", ".join(CONFIGS))
    args = parser.parse_args()
    model = args.model or random_state(num_feat=64, num_frame=5, groups=8, extract=5, reconstruct=10, offset_scale=0.5)
    clip = source(args.frames, args.height, args.width)
    wanted = [c for c in args.only.split(",") if c] or list(CONFIGS)
    results: dict[str, float] = {}
    for name in wanted:
        make_backend, split, deform = CONFIGS[name]
        if name.startswith("ov") and not HAS_OV:
            print(f"{name:24s} skipped: openvino not installed")
            continue
        t0 = time.perf_counter()
        out = EDVR(clip, model, backend=make_backend(), split=split, deform=deform)
        setup = time.perf_counter() - t0
        times = []
        for n in range(args.frames):
            t = time.perf_counter()
            out.get_frame(n)
            times.append(time.perf_counter() - t)
        timed = times[args.warmup:]
        ms = 1000 * sum(timed) / len(timed)
        results[name] = ms
        print(f"{name:24s} {ms:8.0f} ms/frame  {1000 / ms:6.3f} fps  (setup {setup:.1f} s, first frame "
              f"{1000 * times[0]:.0f} ms, {out.width}x{out.height})", flush=True)
    for a, b, label in (
        ("ort-mono-native", "ort-split-native", "split speedup, ORT native"),
        ("ort-mono-decomposed", "ort-split-decomposed", "split speedup, ORT decomposed"),
        ("ov-mono-decomposed", "ov-split-decomposed", "split speedup, OV decomposed"),
        ("ort-mono-decomposed", "ort-mono-native", "native/decomposed speedup, ORT monolithic"),
        ("ort-split-decomposed", "ort-split-native", "native/decomposed speedup, ORT split"),
    ):
        if a in results and b in results:
            print(f"{label}: {results[a] / results[b]:.2f}x")


if __name__ == "__main__":
    main()
