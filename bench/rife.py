"""RIFE on CPU through vssr.RIFE: output fps at 640x360, multi=2, random weights.

    .venv/bin/python bench/rife.py                         # v4.6 and v4.22, ORT (and OV if installed)
    .venv/bin/python bench/rife.py --versions 4.22 --frames 8 --backends ort
    .venv/bin/python bench/rife.py --versions 4.6 --backends ort,ov,mlrt-ort,mlrt-ov   # with vs-mlrt

No RIFE checkpoint can be fetched here: the weights are random with the official shapes (the
compute is the same as the released flownet.pkl of that version; pass --model PATH to use a real
one). The source is a smooth pattern moving 3 px per frame; sc=False, so every other output frame
is a network run (the others are exact copies of source frames). The first --warmup output frames
(session warm-up; the encoder-feature cache filling) are excluded from the timing. Prints output
fps and ms per interpolated frame.

mlrt-ort / mlrt-ov (v4.6 only): the same flownet graph behind vs-mlrt's v1 input layout (one
11-channel input: img0, img1, timestep plane, 4 grid planes; the grid planes are ignored and the
timestep is read from the plane, so the compute is identical), run by vs-mlrt's core.ort.Model /
core.ov.Model the way vsmlrt.RIFE(multi=2) assembles it: left/right/timestep clips from std
filters and the frame padded by hand to a multiple of 32 (vs-mlrt's v1 does not pad), then
interleaved with the source. The printed ratio is vssr/vs-mlrt on the same backend.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# openvino before the VapourSynth core (see vssr/backends/ov.py)
from vssr.backends import ov as vssr_ov

HAS_OV = vssr_ov.preload()

import numpy as np
import onnx
import vapoursynth as vs

from tests.arch import ifnet_numpy as ref
from tests.weights.torchsave import Tensor, save_zip
from vssr.arch import ifnet
from vssr.backends import Backend
from vssr.filters.rife import RIFE
from vssr.zoo import rife_model

core = vs.core

BACKENDS = {"ort": lambda n: Backend.ORT(num_streams=n), "ov": lambda n: Backend.OV(precision="f32", num_streams=n)}


def vsmlrt_layout(flownet: onnx.ModelProto) -> bytes:
    """flownet (img0, img1, timestep[1,1,1,1]) behind vs-mlrt's 11-channel v1 input."""
    model = onnx.ModelProto()
    model.CopyFrom(flownet)
    graph = model.graph

    def i64(name: str, values: list[int]) -> str:
        graph.initializer.append(onnx.numpy_helper.from_array(np.array(values, np.int64), f"mlrt_in/{name}"))
        return f"mlrt_in/{name}"

    def cut(out: str, start: list[int], end: list[int], axes: list[int]) -> onnx.NodeProto:
        ins = ["input", i64(f"{out}_s", start), i64(f"{out}_e", end), i64(f"{out}_a", axes)]
        return onnx.helper.make_node("Slice", ins, [out], name=f"mlrt_in/{out}")

    front = [cut("img0", [0], [3], [1]), cut("img1", [3], [6], [1]), cut("timestep", [6, 0, 0], [7, 1, 1], [1, 2, 3])]
    nodes = [*front, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    graph.input.append(onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 11, "H", "W"]))
    onnx.checker.check_model(model)
    return model.SerializeToString()


def vsmlrt_rife(clip: vs.VideoNode, data: bytes, runtime: str) -> vs.VideoNode:
    """vsmlrt.RIFE(multi=2)'s assembly with std filters, on a frame padded to a multiple of 32."""
    w, h = clip.width, clip.height
    pw, ph = -(-w // 32) * 32, -(-h // 32) * 32
    padded = clip.std.AddBorders(right=pw - w, bottom=ph - h)
    length = clip.num_frames
    right = padded.std.DuplicateFrames(frames=length - 1).std.Trim(first=1)
    gray = padded.std.BlankClip(format=vs.GRAYS, length=1, keep=True)
    planes = [gray.std.BlankClip(color=0.5, length=length)]
    ramps = [
        np.broadcast_to(2 * np.arange(pw) / (pw - 1) - 1, (ph, pw)),
        np.broadcast_to((2 * np.arange(ph) / (ph - 1) - 1)[:, None], (ph, pw)),
    ]
    for ramp in ramps:

        def put(n: int, f: vs.VideoFrame, ramp: np.ndarray = ramp) -> vs.VideoFrame:
            out = f.copy()
            np.copyto(np.asarray(out[0]), ramp)
            return out

        planes.append(core.std.ModifyFrame(gray, gray, put).std.Loop(clip.num_frames))
    planes += [
        gray.std.BlankClip(color=2 / (pw - 1), length=length),
        gray.std.BlankClip(color=2 / (ph - 1), length=length),
    ]
    clips = [padded, right, *planes]
    if runtime == "ort":
        mid = core.ort.Model(clips, data, path_is_serialization=True)
    else:
        mid = core.ov.Model(
            clips, data, path_is_serialization=True, device="CPU", config=lambda: {"INFERENCE_PRECISION_HINT": "f32"}
        )
    mid = mid.std.Crop(right=pw - w, bottom=ph - h)
    return core.std.Interleave([clip, mid]).std.AssumeFPS(fpsnum=clip.fps.numerator * 2, fpsden=clip.fps.denominator)


def source(frames: int, height: int, width: int) -> vs.VideoNode:
    data = [ref.smooth_frames(height, width, seed=0, shift=3.0 * k)[1] for k in range(frames)]
    blank = core.std.BlankClip(width=width, height=height, format=vs.RGBS, length=frames, fpsnum=24000, fpsden=1001)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for c in range(3):
            np.copyto(np.asarray(out[c]), data[n][c])
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def weights(version: str, folder: Path) -> Path:
    v = ifnet.VERSIONS[version]
    state = ref.random_state(v.channels, v.encoder, v.head, v.feat)
    return save_zip(
        OrderedDict((f"module.{k}", Tensor.of(a)) for k, a in state.items()), folder / f"flownet_v{version}.pkl"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", default="4.6,4.22")
    parser.add_argument("--backends", default="ort,ov", help="ort, ov, mlrt-ort, mlrt-ov")
    parser.add_argument("--frames", type=int, default=6, help="source frames (output: 2x)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--streams", type=int, default=1, help="vssr inference streams (frames in flight)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--model", default=None, help="a real flownet.pkl instead of random weights")
    args = parser.parse_args()
    clip = source(args.frames, args.height, args.width)
    print(
        f"RIFE multi=2, {args.width}x{args.height} RGBS, {args.frames} source frames, "
        f"{vs.core.num_threads} VapourSynth threads, {args.streams} vssr stream(s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for version in args.versions.split(","):
            model = Path(args.model) if args.model else weights(version, Path(tmp))
            fps: dict[str, float] = {}
            for name in args.backends.split(","):
                if name.endswith("ov") and not HAS_OV:
                    print(f"v{version} {name}: skipped (openvino not usable)")
                    continue
                if name.startswith("mlrt-"):
                    loaded = rife_model(model)
                    if loaded.encoder is not None:
                        print(f"v{version} {name}: skipped (the vs-mlrt comparison runs encoder-less v4.6 only)")
                        continue
                    out = vsmlrt_rife(clip, vsmlrt_layout(loaded.flownet), name[5:])
                else:
                    out = RIFE(clip, model=model, backend=BACKENDS[name](args.streams), sc=False)  # odd frames: runs
                for n in range(args.warmup):
                    out.get_frame(n)
                timed = out[args.warmup : out.num_frames - 1]  # the last frame is a held copy
                start = time.perf_counter()
                count = sum(1 for _ in timed.frames(prefetch=2 * args.streams + 2))
                elapsed = time.perf_counter() - start
                runs = sum(1 for n in range(args.warmup, out.num_frames - 1) if n % 2)
                fps[name] = count / elapsed
                print(
                    f"v{version} {name}: {fps[name]:.2f} output fps, "
                    f"{1000 * elapsed / max(runs, 1):.0f} ms per interpolated frame ({runs} runs)"
                )
            for name in ("ort", "ov"):
                if name in fps and f"mlrt-{name}" in fps:
                    print(f"v{version} vssr/vs-mlrt ({name}): {fps[name] / fps[f'mlrt-{name}']:.2f}x")


if __name__ == "__main__":
    main()
