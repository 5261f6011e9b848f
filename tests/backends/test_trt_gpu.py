"""Real engines on a real NVIDIA GPU, with whichever of `tensorrt` / `tensorrt_rtx` is installed.

Every test here is marked `gpu` and skipped where no GPU is usable (tests/conftest.py says why:
no driver, or a driver older than cuda-python's CUDA). Nothing here has run on this project's
machines, which have no GPU; whoever has one: `pytest -m gpu tests/backends/test_trt_gpu.py`.
Full TensorRT takes paths TensorRT-RTX never does (vssr's own CUDA-graph capture, the timing cache,
its plugin library), so each test runs with each installed flavour.
"""

from __future__ import annotations

import gc
import importlib.metadata
import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

from tests import nets
from vssr.backends.ort import ORT
from vssr.backends.trt import TRT, TRT_RTX
from vssr.network import Network
from vssr.types import ShapeProfile

pytestmark = pytest.mark.gpu

def _cuda_major_of(distribution: str) -> int | None:
    """The CUDA major a TensorRT flavour was built for, from its installed wheel's name (-cu12/-cu13)."""
    names = {d.metadata["Name"].lower().replace("_", "-") for d in importlib.metadata.distributions()}
    majors = [int(n.rsplit("-cu", 1)[1]) for n in names if n.startswith(f"{distribution}-cu") and n.rsplit("-cu", 1)[1].isdigit()]
    return max(majors) if majors else None


def _driver_cuda_major() -> int:
    try:
        from cuda.bindings import runtime

        err, version = runtime.cudaDriverGetVersion()
    except ImportError:
        return 0
    return int(version) // 1000 if err == runtime.cudaError_t.cudaSuccess else 0


def _why_not(module: str, distribution: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed"
    needed, driver = _cuda_major_of(distribution), _driver_cuda_major()
    if needed is not None and driver and needed > driver:
        return f"{module} is built for CUDA {needed}; the driver supports CUDA {driver}"
    return None


FLAVOURS = [
    pytest.param(config, id=module,
                 marks=pytest.mark.skipif(_why_not(module, dist) is not None, reason=str(_why_not(module, dist))))
    for config, module, dist in ((TRT, "tensorrt", "tensorrt"), (TRT_RTX, "tensorrt_rtx", "tensorrt-rtx"))
]


def _close(runners: list[Any]) -> None:
    for runner in runners:
        runner.close()


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("fp16", [False, True])
@pytest.mark.parametrize("static", [True, False], ids=["static", "dynamic"])
def test_engine_runs_like_onnx_reference(flavour: type, fp16: bool, static: bool, tmp_path: Path) -> None:
    model = nets.pixel_shuffle_x2()
    config = flavour(engine_folder=str(tmp_path), fp16=fp16, static_shape=static, num_streams=2,
                     max_shapes=None if static else (64, 64))
    runners = config.load(Network.load(model), ShapeProfile.static(24, 24))
    try:
        for runner in runners:
            nets.check_runner(runner, model, rtol=1e-2 if fp16 else 1e-3, atol=1e-2 if fp16 else 1e-4)
    finally:
        _close(runners)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("use_cuda_graph", [False, True])
def test_streams_in_threads_and_tile_changes(flavour: type, use_cuda_graph: bool, tmp_path: Path) -> None:
    """Two streams driven from two threads, dynamic tiles changing, optional CUDA graphs."""
    model = nets.conv3x3(layers=3)
    config = flavour(engine_folder=str(tmp_path), num_streams=2, static_shape=False, max_shapes=(128, 96),
                     use_cuda_graph=use_cuda_graph)
    runners = config.load(Network.load(model), ShapeProfile.static(64, 48))
    reference = ReferenceEvaluator(model)
    errors: list[BaseException] = []

    def work(runner: Any, seed: int) -> None:
        try:
            for i, (h, w) in enumerate([(48, 64), (96, 128), (48, 64), (48, 64)] * 3):
                x = np.random.default_rng(seed * 100 + i).random((1, 3, h, w), dtype=np.float32)
                got = runner.infer({"input": x})["output"]
                np.testing.assert_allclose(got, reference.run(None, {"input": x})[0], rtol=1e-3, atol=1e-4)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(r, i)) for i, r in enumerate(runners)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _close(runners)
    if errors:
        raise errors[0]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_rife_fp16_keeps_its_warp_accurate(flavour: type, tmp_path: Path) -> None:
    """RIFE 4.6 (random weights; no encoder, so the flownet is the whole model) in fp16 against ORT
    fp32: the fp32 islands (grid arithmetic, GridSample), Casts in the strongly typed graph on every
    TensorRT, hold it within 1e-2 of the output range."""
    from tests.arch import ifnet_numpy
    from vssr.arch import ifnet

    version = ifnet.VERSIONS["4.6"]
    state = ifnet_numpy.random_state(version.channels, version.encoder, version.head, version.feat)
    network = Network.load(ifnet.build_flownet(state, version))
    img0, img1 = ifnet_numpy.smooth_frames(64, 64, seed=1, shift=3.0)
    feeds = {"img0": img0[None], "img1": img1[None], "timestep": np.full((1, 1, 1, 1), 0.5, np.float32)}
    (ort,) = ORT(num_streams=1).load(network, ShapeProfile.static(64, 64))
    (trt,) = flavour(engine_folder=str(tmp_path), fp16=True).load(network, ShapeProfile.static(64, 64))
    try:
        want = next(iter(ort.infer(feeds).values())).astype(np.float32)
        got = next(iter(trt.infer(feeds).values())).astype(np.float32)
        assert np.abs(got - want).max() <= 1e-2 * max(np.abs(want).max(), 1e-6)
    finally:
        trt.close()
        ort.close()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_unclosed_runners_give_their_gpu_memory_back(flavour: type, tmp_path: Path, side: int = 2048) -> None:
    """VapourSynth drops a script's filters without closing them (an editor's reload): collected
    runners must return their device memory (the engine's own included)."""
    from vssr.backends import cuda

    rt = cuda.import_cudart()
    model = nets.conv3x3(layers=3)
    config = flavour(engine_folder=str(tmp_path), num_streams=2, use_cuda_graph=True)
    _close(config.load(Network.load(model), ShapeProfile.static(side, side)))  # build; CUDA context up
    gc.collect()
    free_before, _ = cuda.call(rt, "cudaMemGetInfo", rt.cudaMemGetInfo())
    for _ in range(3):
        runners = config.load(Network.load(model), ShapeProfile.static(side, side))
        for runner in runners:
            runner.infer({"input": np.zeros((1, 3, side, side), np.float32)})
        del runners, runner
        gc.collect()
    free_after, _ = cuda.call(rt, "cudaMemGetInfo", rt.cudaMemGetInfo())
    # a leak would be 3 loads x 2 streams x 96 MiB of buffers = 576 MiB; 64 MiB of slack for the
    # allocator and for other processes on a desktop GPU
    assert free_before - free_after < 64 << 20


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_engine_inspector_shows_the_precision_that_runs(flavour: type, tmp_path: Path) -> None:
    """Engines keep detailed layer information (ProfilingVerbosity.DETAILED): the inspector shows
    the convolutions of an fp16 build computing in half precision, with no FP16 flag (strongly typed)."""
    model = nets.conv3x3(layers=2)
    (runner,) = flavour(engine_folder=str(tmp_path), fp16=True).load(Network.load(model), ShapeProfile.static(32, 32))
    try:
        inspector = runner.engine.create_engine_inspector()
        info = inspector.get_engine_information(runner.trt.LayerInformationFormat.JSON)
        assert "Half" in info, info[:2000]
    finally:
        runner.close()
