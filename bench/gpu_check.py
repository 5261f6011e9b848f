"""For whoever has an NVIDIA GPU: build each shipped model, check it against ORT, time it.

    .venv/bin/python bench/gpu_check.py --models compact --sizes 1080p   # a quick first run
    .venv/bin/python bench/gpu_check.py                      # every model and size (tens of builds)
    .venv/bin/python bench/gpu_check.py --backend TRT_RTX    # default: TRT if tensorrt is installed

Install TensorRT first: pip install -e ".[trt]" (CUDA 12 drivers; TensorRT 11), ".[trt10]"
(TensorRT 10), ".[trt-cu13]" or ".[trt-rtx]" (driver >= 580).

1. Accuracy: each model at a small size, TensorRT vs ONNX Runtime CPU on the same random input;
   relative error max|trt - ort| / max|ort| must be <= 1e-3 (fp32) and <= 1e-2 (fp16).
2. Speed: the seed's configurations (1080p / 720p / 480p, 1 and 2 streams, static vs dynamic
   shapes, fp16), frames per second with N threads each owning one runner (as VapourSynth does),
   printed as a Markdown table like vs-mlrt v13's benchmark tables, with the CPU time the
   inferring threads use per frame (time.thread_time: copies, enqueues and the wait; a thread
   spinning in its wait would show about 1000 / fps ms per frame per stream, a sleeping one far
   less). The first (build) load is timed separately; engines land in --engines (default: a
   temporary folder). --layers prints each accuracy engine's layers (engine inspector: the
   precision each layer runs in).

Models are the zoo's when their weights are present (Real-ESRGAN animevideov3), else the
architecture with random weights (same graph, same speed). Exit status 1 if an accuracy check fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vssr.backends.base import Runner
from vssr.backends.ort import ORT
from vssr.network import Network
from vssr.types import ShapeProfile

SIZES = {"1080p": (1920, 1080), "720p": (1280, 720), "480p": (854, 480)}


def _random_compact(feat: int = 64, convs: int = 16, scale: int = 4) -> Network:
    """SRVGGNetCompact at animevideov3's size with random weights (same graph, same speed)."""
    from vssr.arch import compact

    rng = np.random.default_rng(0)
    state = {"body.0.weight": rng.normal(0, 0.1, (feat, 3, 3, 3)), "body.0.bias": np.zeros(feat)}
    for i in range(convs + 1):
        state[f"body.{2 * i + 1}.weight"] = np.full(feat, 0.2)
        if i < convs:
            state[f"body.{2 * i + 2}.weight"] = rng.normal(0, 0.05, (feat, feat, 3, 3))
            state[f"body.{2 * i + 2}.bias"] = np.zeros(feat)
    last = 2 * convs + 2
    state[f"body.{last}.weight"] = rng.normal(0, 0.05, (3 * scale * scale, feat, 3, 3))
    state[f"body.{last}.bias"] = np.zeros(3 * scale * scale)
    return Network.load(compact.build({k: v.astype(np.float32) for k, v in state.items()}))


def _compact() -> Network:
    try:
        from vssr import zoo

        return zoo.network("realesrgan", "animevideov3", func="gpu_check")
    except Exception as err:
        print(f"(zoo Real-ESRGAN unavailable: {err}; random weights)")
    return _random_compact()


def _quicksrnet() -> Network:
    from vssr.arch import quicksrnet

    return Network.load(quicksrnet.build(quicksrnet.random_state("small", 2)))


def _rife() -> Network:
    from tests.arch import ifnet_numpy
    from vssr.arch import ifnet

    v = ifnet.VERSIONS["4.6"]
    return Network.load(ifnet.build_flownet(ifnet_numpy.random_state(v.channels, v.encoder, v.head, v.feat), v))


def _edvr() -> Network:
    """EDVR-M size (64 features, 5 frames); decomposed deformable conv (TensorRT-RTX has no plugin)."""
    from tests.arch import edvr_numpy
    from vssr.arch import edvr

    return Network.load(edvr.build(edvr_numpy.random_state(num_feat=64, num_frame=5, groups=8), deform="decomposed"))


MODELS: dict[str, Callable[[], Network]] = {
    "compact": _compact,
    "quicksrnet": _quicksrnet,
    "rife": _rife,
    "edvr": _edvr,
}


def feeds_for(runner: Runner, width: int, height: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in runner.inputs:
        if spec.is_image:
            shape = (1, spec.channels or 3, height, width)
            feeds[spec.name] = rng.random(shape, dtype=np.float32).astype(spec.dtype)
        else:
            shape = tuple(d or 1 for d in spec.shape)
            feeds[spec.name] = np.full(shape, 0.5, spec.dtype)
    return feeds


def padded(network: Network, width: int, height: int) -> tuple[int, int]:
    return network.size.padded(width), network.size.padded(height)


def accuracy(backend_cls: type, network: Network, engines: str, fp16: bool, size: tuple[int, int] = (128, 96),
             layers: bool = False) -> float:
    w, h = padded(network, *size)
    (ort,) = ORT(num_streams=1).load(network, ShapeProfile.static(w, h))
    (trt,) = backend_cls(engine_folder=engines, fp16=fp16).load(network, ShapeProfile.static(w, h))
    try:
        if layers:
            inspector = trt.engine.create_engine_inspector()  # type: ignore[attr-defined]
            print(inspector.get_engine_information(trt.trt.LayerInformationFormat.ONELINE))  # type: ignore[attr-defined]
        feeds = feeds_for(ort, w, h)
        want = ort.infer(feeds)[ort.outputs[0].name].astype(np.float32)
        got = trt.infer(feeds)[trt.outputs[0].name].astype(np.float32)
        return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-6))
    finally:
        trt.close()
        ort.close()


def speed(
    backend_cls: type,
    network: Network,
    engines: str,
    size: tuple[int, int],
    streams: int,
    static: bool,
    fp16: bool,
    frames: int,
) -> tuple[float, float, float]:
    """(frames per second, seconds of the first load, CPU milliseconds per frame of the inferring threads)."""
    w, h = padded(network, *size)
    config = backend_cls(
        engine_folder=engines,
        fp16=fp16,
        num_streams=streams,
        static_shape=static,
        max_shapes=None if static else padded(network, 1920, 1080),
    )
    start = time.perf_counter()
    runners = config.load(network, ShapeProfile.static(w, h))
    load_s = time.perf_counter() - start
    try:
        feeds = [feeds_for(r, w, h, seed=i) for i, r in enumerate(runners)]
        for r, f in zip(runners, feeds, strict=True):
            r.infer(f)  # warm-up
        per_thread = max(1, frames // streams)
        errors: list[BaseException] = []
        cpu_seconds: list[float] = []

        def work(r: Runner, f: dict[str, np.ndarray]) -> None:
            try:
                start_cpu = time.thread_time()
                for _ in range(per_thread):
                    r.infer(f)
                cpu_seconds.append(time.thread_time() - start_cpu)
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=work, args=(r, f)) for r, f in zip(runners, feeds, strict=True)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        fps = per_thread * streams / (time.perf_counter() - start)
        if errors:
            raise errors[0]
        cpu_ms = 1000 * sum(cpu_seconds) / (per_thread * streams)
    finally:  # a failed configuration must not keep GPU memory the next rows need
        for r in runners:
            r.close()
    return fps, load_s, cpu_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["TRT", "TRT_RTX"], default=None,
                        help="default: TRT if the tensorrt module is installed, else TRT_RTX")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--engines", default=None, help="engine folder (default: a temporary one)")
    parser.add_argument("--layers", action="store_true", help="print the layers of each accuracy engine")
    args = parser.parse_args()

    from vssr.backends import cuda
    from vssr.backends import trt as trt_backend  # the package: TRT, TRT_RTX

    rt = cuda.import_cudart()
    count, error = cuda.device_count(rt)
    if count == 0:
        advice = cuda.driver_advice(rt) if error == "cudaErrorInsufficientDriver" else ""
        print(f"no usable NVIDIA GPU here (cudaGetDeviceCount: {error}{'; ' + advice if advice else ''}); this script needs one")
        return 2

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")  # build progress
    backend_name = args.backend or ("TRT" if importlib.util.find_spec("tensorrt") else "TRT_RTX")
    backend_cls = getattr(trt_backend, backend_name)
    temporary = None if args.engines else tempfile.TemporaryDirectory(prefix="vssr-engines-")
    engines = args.engines or temporary.name  # type: ignore[union-attr]
    try:
        return _check(args, backend_name, backend_cls, engines)
    finally:
        if temporary is not None:
            temporary.cleanup()


def _check(args: argparse.Namespace, backend_name: str, backend_cls: type, engines: str) -> int:
    failed = False
    rows = []
    for name in args.models.split(","):
        try:
            network = MODELS[name]()
        except Exception as err:
            print(f"{name}: cannot build the network: {err}")
            failed = True
            continue
        for fp16, limit in ((False, 1e-3), (True, 1e-2)):
            try:
                err = accuracy(backend_cls, network, engines, fp16, layers=args.layers)
                verdict = "ok" if err <= limit else "FAIL"
            except Exception as exc:
                err, verdict = float("nan"), f"ERROR {exc}"
            failed |= verdict != "ok"
            print(f"{name} {'fp16' if fp16 else 'fp32'} vs ORT CPU: rel err {err:.2e} (limit {limit:g}) {verdict}")
        for size_name in args.sizes.split(","):
            for static in (True, False):
                for streams in (1, 2):
                    try:
                        fps, load_s, cpu_ms = speed(
                            backend_cls, network, engines, SIZES[size_name], streams, static, True, args.frames
                        )
                        rows.append((name, size_name, "static" if static else "dynamic", streams, f"{fps:.2f}",
                                     f"{cpu_ms:.2f}", f"{load_s:.1f}"))
                    except Exception as exc:
                        rows.append((name, size_name, "static" if static else "dynamic", streams, f"ERROR {exc}", "", ""))
                    print(" | ".join(str(c) for c in rows[-1]), flush=True)
    print()
    print(f"{backend_name}, fp16, {args.frames} frames per configuration")
    print("| model | size | shapes | streams | fps | CPU ms/frame (inferring threads) | load s (build on first) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
