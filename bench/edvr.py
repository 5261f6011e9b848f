"""EDVR-M x4 on CPU through vssr.EDVR: split vs monolithic, native DeformConv vs decomposition.

    .venv/bin/python bench/edvr.py                                  # 180x320 -> 720x1280, all configs
    .venv/bin/python bench/edvr.py --rounds 2 --only ort-split-native,ort-mono-native
    .venv/bin/python bench/edvr.py --layer                          # one DCNv2Pack, native vs decomposed

EDVR-M shape (num_feat 64, 5 frames, 8 deformable groups, 5 extraction / 10 reconstruction
blocks) with random weights: the same compute as EDVR_M_x4_SR_REDS_official (no checkpoint can be
fetched here; pass --model PATH.pth to use one). Frames are random noise. Each configuration
first renders --warmup frames (session warm-up, the split's initial feature fill), then the
configurations take turns, one frame each per round, in frame order (so the split runs in its
steady state: one feature extraction per output frame). Prints the median ms/frame and fps, and
the ratios split/monolithic and native/decomposed. Single-stream backends (ORT num_streams=1; OV
with its defaults) and frames requested one at a time: this measures per-frame latency.
Every selected configuration stays loaded (about 2 GB each at 320x180): select a few with --only
on a machine with less than ~16 GB free.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# openvino before the VapourSynth core (see vssr/backends/ov.py)
from vssr.backends import ov as vssr_ov

HAS_OV = vssr_ov.preload()

import numpy as np
import vapoursynth as vs

from tests.arch.edvr_numpy import random_state
from vssr.backends import Backend
from vssr.filters.edvr import EDVR

core = vs.core

CONFIGS = {  # name: (backend factory, split, deform)
    "ort-mono-native": (lambda: Backend.ORT(), False, "native"),
    "ort-mono-decomposed": (lambda: Backend.ORT(), False, "decomposed"),
    "ort-split-native": (lambda: Backend.ORT(), True, "native"),
    "ort-split-decomposed": (lambda: Backend.ORT(), True, "decomposed"),
    "ov-mono-decomposed": (lambda: Backend.OV(precision="f32"), False, "decomposed"),
    "ov-split-decomposed": (lambda: Backend.OV(precision="f32"), True, "decomposed"),
    "ov-split-decomposed-auto": (lambda: Backend.OV(), True, "decomposed"),  # OV's default precision (bf16 on AMX)
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


def layer_bench(height: int, width: int, rounds: int) -> None:
    """One DCNv2Pack (64 -> 64, 8 groups, its 216-channel offset conv included) on bare ORT, 2 threads."""
    import onnxruntime as ort

    from vssr.arch.deform import DEFORM_MODES, modulated_deform_conv
    from vssr.arch.ops import GraphBuilder

    rng = np.random.default_rng(0)
    c = 64
    pack = {
        "weight": rng.normal(0, 0.05, (c, c, 3, 3)).astype(np.float32),
        "bias": np.zeros(c, np.float32),
        "conv_offset.weight": rng.normal(0, 0.05, (216, c, 3, 3)).astype(np.float32),
        "conv_offset.bias": np.zeros(216, np.float32),
    }
    x = rng.normal(0, 1, (1, c, height, width)).astype(np.float32)
    for mode in DEFORM_MODES:
        g = GraphBuilder("dcn")
        out = modulated_deform_conv(g, g.input("x", c), g.input("f", c), pack, "dcn", mode=mode)  # type: ignore[arg-type]
        g.output(out, "o", c)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        session = ort.InferenceSession(
            g.model(scale=1).SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        session.run(None, {"x": x, "f": x})
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            session.run(None, {"x": x, "f": x})
            times.append(time.perf_counter() - t)
        print(f"DCNv2Pack {mode:10s} {1000 * statistics.median(times):6.0f} ms  ({width}x{height}, ORT, 2 threads)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4, help="timed rounds; each config runs one frame per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed frames per config before the rounds")
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--model", default=None, help="a BasicSR EDVR .pth (default: EDVR-M random weights)")
    parser.add_argument("--only", default="", help="comma-separated config names: " + ", ".join(CONFIGS))
    parser.add_argument("--layer", action="store_true", help="time one deformable conv layer (native vs decomposed)")
    args = parser.parse_args()
    if args.layer:
        layer_bench(args.height, args.width, max(args.rounds, 5))
        return
    model = args.model or random_state(num_feat=64, num_frame=5, groups=8, extract=5, reconstruct=10, offset_scale=0.5)
    frames = args.warmup + args.rounds
    clip = source(frames, args.height, args.width)
    wanted = [c for c in args.only.split(",") if c] or list(CONFIGS)
    clips: dict[str, vs.VideoNode] = {}
    for name in wanted:
        make_backend, split, deform = CONFIGS[name]
        if name.startswith("ov") and not HAS_OV:
            print(f"{name:24s} skipped: openvino not installed")
            continue
        t0 = time.perf_counter()
        clips[name] = EDVR(clip, model, backend=make_backend(), split=split, deform=deform)
        for n in range(args.warmup):
            clips[name].get_frame(n)
        print(f"{name:24s} setup + {args.warmup} warm-up frames: {time.perf_counter() - t0:.1f} s", flush=True)
    # the configs take turns frame by frame, so that a change in machine load hits them all alike
    times: dict[str, list[float]] = {name: [] for name in clips}
    for n in range(args.warmup, frames):
        for name, out in clips.items():
            t = time.perf_counter()
            out.get_frame(n)
            times[name].append(time.perf_counter() - t)
    results: dict[str, float] = {}
    for name, ts in times.items():
        ms = 1000 * statistics.median(ts)
        results[name] = ms
        out = clips[name]
        print(
            f"{name:24s} {ms:8.0f} ms/frame  {1000 / ms:6.3f} fps  median of {len(ts)} "
            f"({', '.join(f'{1000 * t:.0f}' for t in ts)}) {clip.width}x{clip.height} -> {out.width}x{out.height}"
        )
    for a, b, label in (
        ("ort-mono-native", "ort-split-native", "split speedup, ORT native"),
        ("ort-mono-decomposed", "ort-split-decomposed", "split speedup, ORT decomposed"),
        ("ov-mono-decomposed", "ov-split-decomposed", "split speedup, OV decomposed"),
        ("ort-mono-decomposed", "ort-mono-native", "native/decomposed speedup, ORT monolithic"),
        ("ort-split-decomposed", "ort-split-native", "native/decomposed speedup, ORT split"),
        ("ort-split-native", "ov-split-decomposed", "OV decomposed vs ORT native, split"),
    ):
        if a in results and b in results:
            print(f"{label}: {results[a] / results[b]:.2f}x")


if __name__ == "__main__":
    main()
