"""PSNR/SSIM on Set5 and Set14 the SR-paper way, for bicubic and QuickSRNet (ONNX Runtime), beside the paper.

    .venv/bin/python bench/eval_sr.py                                  # shipped small x2 weights
    .venv/bin/python bench/eval_sr.py --weights /tmp/run/weights_ema.npz --int8 minmax

Convention (shared/data/README.md, implemented in vssr.metrics): HR mod-cropped to the scale, LR by
MATLAB-semantics bicubic imresize, SR rounded to uint8, Y of BT.601 (studio range), `scale` pixels
shaved from each border, peak 255. Set14's grey bridge.png is fed as three equal channels and the
mean of the output's channels is scored as Y against the grey ground truth. `--int8 METHOD`
quantizes the model (vssr.quant, calibrated on --calib, default the T91 training images) and adds a
row.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vssr import metrics
from vssr.arch import quicksrnet
from vssr.network import Network

DATA = ROOT.parent / "shared" / "data"
PAPER = {  # QuickSRNet paper / AIMET model zoo, x2 (the brief's Set5/Set14 small fp16 numbers)
    ("small", 2): {"Set5": 37.12, "Set14": 32.57},
    ("medium", 2): {"Set14": 32.78},
    ("large", 2): {"Set14": 33.24},
}


def ort_upscaler(net: Network, threads: int = 2):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(net.model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    name = net.inputs[0].name

    def upscale(lr: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(lr.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
        return sess.run(None, {name: x})[0][0].transpose(1, 2, 0)

    return upscale


def bicubic(scale: int):  # type: ignore[no-untyped-def]
    return lambda lr: metrics.imresize(lr, float(scale))


def evaluate(upscale, sets: dict[str, list[metrics.SRImage]], scale: int) -> dict[str, tuple[float, float]]:  # type: ignore[no-untyped-def]
    return {name: metrics.score_sr_set(upscale, images, scale)[:2] for name, images in sets.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=ROOT / "vssr" / "data" / "quicksrnet" / "small_x2.npz")
    ap.add_argument("--sets", nargs="+", default=["Set5", "Set14"])
    ap.add_argument("--int8", nargs="*", default=[], help="quantization methods to add as rows")
    ap.add_argument("--calib", type=Path, default=DATA / "sr-train" / "T91", help="calibration image folder")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--qat",
        type=Path,
        help="quantization-aware weights for the int8 rows (e.g. vssr/data/quicksrnet/small_x2_qat.npz)",
    )
    args = ap.parse_args()

    state = dict(np.load(args.weights))
    params = quicksrnet.QuickSRNetParams.from_state(state)
    scale = int(params.scale)
    net = Network.load(quicksrnet.build(state))
    sets = {name: metrics.load_sr_set(DATA / "sr-bench" / name, scale) for name in args.sets}

    rows = [("bicubic (MATLAB imresize)", evaluate(bicubic(scale), sets, scale))]
    rows.append(
        (
            f"{params.name} fp32 ({os.path.relpath(args.weights, ROOT)})",
            evaluate(ort_upscaler(net, args.threads), sets, scale),
        )
    )
    for method in args.int8:
        from vssr.quant import quantize

        # int8 rows: the quantization-aware weights when given (plain graph), else the fp32 weights
        # with their identity taps split out (quicksrnet.build split_identity=True)
        if args.qat and args.qat.is_file():
            qsrc, kind = Network.load(quicksrnet.build(dict(np.load(args.qat)))), f"QAT weights {args.qat.name}"
        else:
            qsrc, kind = Network.load(quicksrnet.build(state, split_identity=True)), "split identity"
        qnet = quantize(qsrc, None if method == "naive" else args.calib, method=method, frames=16, crop=128)
        rows.append(
            (
                f"{params.name} int8 {method} ({kind}, u8 act, ORT)",
                evaluate(ort_upscaler(qnet, args.threads), sets, scale),
            )
        )
    paper = PAPER.get((params.size or "", scale), {})
    if paper:
        rows.append(
            (
                "paper (fp16; Set14 of the AIMET zoo card is fp32 32.52)",
                {k: (paper.get(k, float("nan")), float("nan")) for k in args.sets},
            )
        )

    print(f"| x{scale} | " + " | ".join(f"{s} PSNR / SSIM" for s in args.sets) + " |")
    print("|---|" + "---|" * len(args.sets))
    for label, res in rows:
        cells = []
        for s in args.sets:
            p, q = res.get(s, (float("nan"), float("nan")))
            cells.append(f"{p:.2f}" + ("" if np.isnan(q) else f" / {q:.4f}"))
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
