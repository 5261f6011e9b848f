"""The TensorRT runtime path without a GPU, on the fake GPU of tests/backends/fake_gpu.py: real
engine builds; autospecs of the real tensorrt_rtx classes and cuda.bindings.runtime functions;
device memory in host memory; engines executed by onnx.reference.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

from tests import nets
from tests.backends.fake_gpu import (
    OK,
    FakeGpu,
    fake_engine,
    fake_runtime,
    rt,
    run_built_graphs,
    trt,
)
from tests.backends.pybind_signatures import check_calls, signatures
from vssr.backends import cuda
from vssr.backends.trt import TRT_RTX
from vssr.errors import BackendError
from vssr.network import Network
from vssr.types import ShapeProfile

pytest.importorskip("tensorrt_rtx")


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGpu]:
    """The fake GPU; afterwards every call made on a TensorRT mock must fit a real pybind signature."""
    fake = FakeGpu()
    monkeypatch.setattr(cuda, "import_cudart", lambda: fake.module)
    yield fake
    checked = sum(check_calls(recorded, cls, constructor=constructor) for recorded, cls, constructor in fake.trt_mocks)
    assert checked or not fake.trt_mocks


def _load(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, model: onnx.ModelProto, config: TRT_RTX,
          tile: ShapeProfile, engine_profile: ShapeProfile | None = None) -> tuple[list[Any], Any]:
    """config.load with a real engine build and a mocked trt.Runtime returning `fake_engine`."""
    runtime = fake_runtime(gpu, monkeypatch, lambda data: fake_engine(gpu, model, engine_profile or tile))
    return config.load(Network.load(model), tile), runtime


def test_static_engine_runs_through_buffers(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = nets.pixel_shuffle_x2()
    runners, runtime = _load(gpu, monkeypatch, model, TRT_RTX(engine_folder=str(tmp_path), num_streams=2),
                             ShapeProfile.static(24, 24))
    assert len(runners) == 2 and runners[0].stream.handle != runners[1].stream.handle
    assert runners[0].host["input"].ptr != runners[1].host["input"].ptr
    for runner in runners:
        nets.check_runner(runner, model)  # numbers through pinned -> device -> engine -> host
    deserialized = runtime.deserialize_cuda_engine.call_args.args[0]
    assert deserialized == next(tmp_path.glob("*.engine")).read_bytes()  # the real built engine
    calls = gpu.module.cudaSetDevice.call_count
    runners[0].infer({"input": np.zeros((1, 3, 24, 24), np.float32)})
    assert gpu.module.cudaSetDevice.call_count == calls + 1  # on every call: VS threads are arbitrary
    allocated = len(gpu.memory)
    for runner in runners:
        runner.close()
    assert len(gpu.memory) == allocated - 8  # 2 runners x (host + device) x (input + output)


def test_dynamic_engine_sets_shapes_per_tile(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = nets.conv3x3()
    config = TRT_RTX(engine_folder=str(tmp_path), static_shape=False, max_shapes=(64, 48))
    (runner,), _ = _load(gpu, monkeypatch, model, config, ShapeProfile.static(32, 32),
                         ShapeProfile((32, 32), (32, 32), (64, 48)))
    context = runner.context
    assert runner.host["input"].array.shape == (1, 3, 48, 64)  # allocated at the largest shape, once
    mallocs = gpu.module.cudaMalloc.call_count
    reference = ReferenceEvaluator(model)
    for h, w in [(32, 32), (48, 64), (32, 32), (32, 32)]:
        x = np.random.default_rng(h * w).random((1, 3, h, w), dtype=np.float32)
        got = runner.infer({"input": x})["output"]
        np.testing.assert_allclose(got, reference.run(None, {"input": x})[0], rtol=1e-5, atol=1e-5)
    assert gpu.module.cudaMalloc.call_count == mallocs  # no per-frame allocation
    shapes = [c.args for c in context.set_input_shape.call_args_list]
    # one call at load (largest shape), then one per change of tile size, none for repeats
    assert shapes == [("input", (1, 3, 48, 64)), ("input", (1, 3, 32, 32)), ("input", (1, 3, 48, 64)),
                      ("input", (1, 3, 32, 32))]
    with pytest.raises(BackendError, match="no optimization profile"):
        runner.infer({"input": np.zeros((1, 3, 96, 96), np.float32)})


def test_cuda_graph_captured_after_warm_up(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Full TensorRT (no IRuntimeConfig): vssr captures copies + enqueue itself, after a warm-up."""
    monkeypatch.delattr(trt, "IRuntimeConfig")
    model = nets.conv3x3()
    (runner,), _ = _load(gpu, monkeypatch, model, TRT_RTX(engine_folder=str(tmp_path), use_cuda_graph=True),
                         ShapeProfile.static(16, 16))
    reference = ReferenceEvaluator(model)
    for seed in range(4):
        x = np.random.default_rng(seed).random((1, 3, 16, 16), dtype=np.float32)
        np.testing.assert_allclose(runner.infer({"input": x})["output"], reference.run(None, {"input": x})[0],
                                   rtol=1e-5, atol=1e-5)
    assert runner.context.execute_async_v3.call_count == 2  # warm-up at load, then once inside the capture
    assert gpu.module.cudaStreamBeginCapture.call_count == 1
    assert gpu.module.cudaGraphLaunch.call_count == 4  # every call of the filter replays the graph
    runner.close()
    assert gpu.module.cudaGraphExecDestroy.call_count == 1


def _full_tensorrt_dynamic(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.delattr(trt, "IRuntimeConfig")
    config = TRT_RTX(engine_folder=str(tmp_path), use_cuda_graph=True, static_shape=False, max_shapes=(32, 32))
    (runner,), _ = _load(gpu, monkeypatch, nets.conv3x3(), config, ShapeProfile.static(16, 16),
                         ShapeProfile((16, 16), (16, 16), (32, 32)))
    return runner


def _runs_like_the_graph(runner: Any, sides: list[int]) -> None:
    """Random side x side frames through `runner` (conv3x3) equal onnx.reference's, one per side."""
    reference = ReferenceEvaluator(nets.conv3x3())
    for i, side in enumerate(sides):
        x = np.random.default_rng(i).random((1, 3, side, side), dtype=np.float32)
        np.testing.assert_allclose(runner.infer({"input": x})["output"], reference.run(None, {"input": x})[0],
                                   rtol=1e-5, atol=1e-5)


def test_cuda_graph_capture_waits_for_an_enqueue_after_each_shape_change(
    gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """TensorRT's first enqueue after set_input_shape updates its state and cannot be captured (the
    fake invalidates such a capture): after every change of shapes, one plain run, then a capture;
    a graph is never replayed on a context whose shapes moved on since its capture."""
    runner = _full_tensorrt_dynamic(gpu, monkeypatch, tmp_path)  # warm-up ran 16x16
    _runs_like_the_graph(runner, [32, 16, 16, 16, 32, 32, 32])
    assert not any("capture failed" in r.getMessage() for r in caplog.records)
    # warm-up 16, plain 32, plain 16, capture 16, (replay 16), plain 32, capture 32, (replay 32)
    assert runner.context.execute_async_v3.call_count == 6
    assert gpu.module.cudaStreamBeginCapture.call_count == 2 and gpu.module.cudaGraphLaunch.call_count == 4
    # a graph lives while its shapes do: the 16x16 one was destroyed at the change to 32x32
    assert gpu.module.cudaGraphExecDestroy.call_count == 1 and runner._graph is not None
    runner.close()
    assert gpu.module.cudaGraphExecDestroy.call_count == 2


def test_failed_capture_falls_back_to_plain_enqueues(
    gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A TensorRT whose enqueue cannot be captured: one warning, the stream usable, right output, no retries."""
    gpu.capturable = False
    runner = _full_tensorrt_dynamic(gpu, monkeypatch, tmp_path)
    _runs_like_the_graph(runner, [16] * 4)
    warnings = [r.getMessage() for r in caplog.records if "capture failed" in r.getMessage()]
    assert len(warnings) == 1 and "execute_async_v3 failed" in warnings[0], warnings
    assert gpu.module.cudaStreamBeginCapture.call_count == gpu.module.cudaStreamEndCapture.call_count == 1
    assert gpu.capturing is None and runner._graph is None and gpu.module.cudaGraphLaunch.call_count == 0


def test_engine_io_must_match_the_plan(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An engine whose tensors differ from the build plan (types, directions) is refused at load."""
    def fp16_output(data: Any) -> Any:
        engine = fake_engine(gpu, nets.conv3x3(), ShapeProfile.static(16, 16))
        engine.get_tensor_dtype.side_effect = lambda name: trt.float16 if name == "output" else trt.float32
        return engine

    fake_runtime(gpu, monkeypatch, fp16_output)
    with pytest.raises(BackendError, match="output 'output' is TensorIOMode.OUTPUT float16, expected output float32"):
        TRT_RTX(engine_folder=str(tmp_path)).load(Network.load(nets.conv3x3()), ShapeProfile.static(16, 16))


def test_rtx_captures_graphs_itself_and_specializes_eagerly(
    gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """TensorRT-RTX JIT-compiles kernels: graphs and dynamic-shape kernels are asked of its runtime config."""
    config = TRT_RTX(engine_folder=str(tmp_path), use_cuda_graph=True, static_shape=False, max_shapes=(32, 32))
    (runner,), _ = _load(gpu, monkeypatch, nets.conv3x3(), config, ShapeProfile.static(16, 16),
                         ShapeProfile((16, 16), (16, 16), (32, 32)))
    runtime_config = runner.engine.create_runtime_config.return_value
    runner.engine.create_execution_context.assert_called_once_with(runtime_config)
    assert runtime_config.cuda_graph_strategy == trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE
    strategy = runtime_config.dynamic_shapes_kernel_specialization_strategy
    assert strategy == trt.DynamicShapesKernelSpecializationStrategy.EAGER
    for _ in range(3):
        runner.infer({"input": np.zeros((1, 3, 16, 16), np.float32)})
    # TensorRT-RTX captures inside execute_async_v3: once at load (warm-up), then per call
    assert gpu.module.cudaStreamBeginCapture.call_count == 0 and runner.context.execute_async_v3.call_count == 4


def test_full_tensorrt_runtime_config_is_not_taken_for_rtx(
    gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """TensorRT >= 10.11 has an IRuntimeConfig too, holding only the allocation strategy: a plain
    context, and vssr captures CUDA graphs itself (the JIT knobs would be AttributeErrors there)."""
    monkeypatch.delattr(trt, "CudaGraphStrategy")
    monkeypatch.delattr(trt, "DynamicShapesKernelSpecializationStrategy")
    config = TRT_RTX(engine_folder=str(tmp_path), use_cuda_graph=True, static_shape=False, max_shapes=(32, 32))
    (runner,), _ = _load(gpu, monkeypatch, nets.conv3x3(), config, ShapeProfile.static(16, 16),
                         ShapeProfile((16, 16), (16, 16), (32, 32)))
    runner.engine.create_runtime_config.assert_not_called()
    runner.engine.create_execution_context.assert_called_once_with()
    for _ in range(3):
        runner.infer({"input": np.zeros((1, 3, 16, 16), np.float32)})
    assert gpu.module.cudaStreamBeginCapture.call_count == 1 and not gpu.kernel_caches


def _engine_and_kernels(tmp_path: Path) -> tuple[Path, Path]:
    (engine,) = tmp_path.glob("*.engine")
    return engine, engine.with_name(engine.name + ".runtimecache")


def test_rtx_kernels_persist_between_processes(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One runtime cache shared by an engine's contexts, written beside the engine when the last
    runner closes, read back by the next load; rewritten only when it learnt new kernels."""
    model = nets.conv3x3()
    config = TRT_RTX(engine_folder=str(tmp_path), num_streams=2, static_shape=False, max_shapes=(32, 32))
    tile, engine_profile = ShapeProfile.static(16, 16), ShapeProfile((16, 16), (16, 16), (32, 32))
    runners, _ = _load(gpu, monkeypatch, model, config, tile, engine_profile)
    (cache,) = gpu.kernel_caches  # one cache for both contexts
    runtime_config = runners[0].engine.create_runtime_config.return_value
    assert runtime_config.set_runtime_cache.call_args_list == [mock.call(cache)] * 2
    cache.deserialize.assert_not_called()  # nothing on disk yet
    runners[0].infer({"input": np.zeros((1, 3, 16, 16), np.float32)})
    runners[1].infer({"input": np.zeros((1, 3, 32, 32), np.float32)})
    _, kernels = _engine_and_kernels(tmp_path)
    runners[0].close()
    assert not kernels.exists()  # the other context still uses (and may add to) the cache
    runners[1].close()
    assert kernels.read_bytes() == b"1x3x16x16 1x3x32x32"
    # the next process: reads the kernels, compiles nothing new, leaves the file alone
    runners, _ = _load(gpu, monkeypatch, model, config, tile, engine_profile)
    gpu.kernel_caches[-1].deserialize.assert_called_once_with(b"1x3x16x16 1x3x32x32")
    mtime = kernels.stat().st_mtime_ns
    runners[0].infer({"input": np.zeros((1, 3, 16, 16), np.float32)})
    for runner in runners:
        runner.close()
    assert kernels.stat().st_mtime_ns == mtime and not list(tmp_path.glob(".*.tmp"))


def test_rtx_kernel_cache_rejected_or_left_to_the_garbage_collector(
    gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A cache from another GPU/driver is replaced, not an error; runners VapourSynth frees without
    close() still save it (the script's nodes are freed when vspipe or an editor is done)."""
    import gc

    model = nets.conv3x3()
    config = TRT_RTX(engine_folder=str(tmp_path))
    runners, _ = _load(gpu, monkeypatch, model, config, ShapeProfile.static(16, 16))
    _, kernels = _engine_and_kernels(tmp_path)
    kernels.write_bytes(b"kernels-of-another-gpu")
    gpu.accept_kernel_cache = False
    runners[0].close()
    runners, _ = _load(gpu, monkeypatch, model, config, ShapeProfile.static(16, 16))
    runners[0].infer({"input": np.zeros((1, 3, 16, 16), np.float32)})
    del runners
    gc.collect()
    assert kernels.read_bytes() == b"1x3x16x16"


def test_rtx_runtime_cache_can_be_turned_off(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = TRT_RTX(engine_folder=str(tmp_path), runtime_cache=False)
    (runner,), _ = _load(gpu, monkeypatch, nets.conv3x3(), config, ShapeProfile.static(16, 16))
    runner.infer({"input": np.zeros((1, 3, 16, 16), np.float32)})
    engine = runner.engine
    runner.close()
    engine.create_runtime_config.return_value.set_runtime_cache.assert_not_called()
    assert not gpu.kernel_caches and not list(tmp_path.glob("*.runtimecache"))


def test_session_rgbh_tiles_through_trt(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The generic Session (padding, tiles, fp16 frames) over TRT_RTX: the engine runs the graph vssr
    actually built (fp16 I/O, fp16 compute), in true fp16 arithmetic by onnx.reference."""
    from vssr.inference import Session

    plans = run_built_graphs(gpu, monkeypatch)
    model = nets.pixel_shuffle_x2()
    session = Session.create(Network.load(model), TRT_RTX(engine_folder=str(tmp_path)), width=50, height=30,
                             tilesize=32, overlap=4, dtype=np.float16, func="test")
    assert plans[-1].precision_label == "fp16-in16-out16" and plans[-1].profile == ShapeProfile.static(32, 30)
    x = np.random.default_rng(7).random((1, 3, 30, 50), dtype=np.float32).astype(np.float16)
    got = session.run({"input": x})["output"]
    want = ReferenceEvaluator(model).run(None, {"input": x.astype(np.float32)})[0]
    assert got.dtype == np.float16 and got.shape == (1, 3, 60, 100)
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=1e-2, atol=1e-2)


def test_each_context_runs_once_at_load(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A warm-up inference per context while the filter is created: first-run work is done before
    frame 0, and an engine that cannot run fails the script's evaluation, not its first frame."""
    model = nets.conv3x3()
    config = TRT_RTX(engine_folder=str(tmp_path), num_streams=2, static_shape=False, max_shapes=(48, 40))
    runners, _ = _load(gpu, monkeypatch, model, config, ShapeProfile.static(32, 24),
                       ShapeProfile((32, 24), (32, 24), (48, 40)))
    for runner in runners:
        runner.context.execute_async_v3.assert_called_once()
        assert runner.context.set_input_shape.call_args_list[-1] == mock.call("input", (1, 3, 24, 32))  # opt
    with pytest.raises(ValueError, match="float16.*takes float32"):  # the caller's feeds still checked
        runners[0].infer({"input": np.zeros((1, 3, 24, 32), np.float16)})
    broken = fake_engine(gpu, model, ShapeProfile.static(16, 16))
    make_context = broken.create_execution_context.side_effect

    def failing_context(*args: Any) -> Any:
        context = make_context(*args)
        context.execute_async_v3.side_effect = lambda stream: False
        return context

    broken.create_execution_context.side_effect = failing_context
    fake_runtime(gpu, monkeypatch, lambda data: broken)
    before = set(gpu.memory)
    with pytest.raises(BackendError, match="execute_async_v3 failed"):
        TRT_RTX(engine_folder=str(tmp_path), num_streams=2).load(Network.load(model), ShapeProfile.static(16, 16))
    assert set(gpu.memory) == before  # the failed load's buffers were freed at once


def test_runners_nobody_closes_free_their_memory_when_collected(
    gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """VapourSynth never closes filters: it drops a script's nodes (an editor's reload). The runners'
    device and pinned memory, streams and CUDA graphs must go with them, on their device, and an
    output array still held keeps its pinned memory until it is dropped too."""
    monkeypatch.delattr(trt, "IRuntimeConfig")  # full TensorRT: vssr's own CUDA graphs
    config = TRT_RTX(engine_folder=str(tmp_path), num_streams=2, use_cuda_graph=True, device_id=0)
    runners, _ = _load(gpu, monkeypatch, nets.conv3x3(), config, ShapeProfile.static(16, 16))
    for runner in runners:
        runner.infer({"input": np.zeros((1, 3, 16, 16), np.float32)})  # the graph is captured here
    kept = runners[0].infer({"input": np.ones((1, 3, 16, 16), np.float32)})["output"]
    assert gpu.memory and gpu.module.cudaGraphInstantiate.call_count == 2
    destroyed = gpu.module.cudaStreamDestroy.call_count
    del runners, runner
    gc.collect()
    assert len(gpu.memory) == 1  # the pinned output buffer `kept` views
    assert gpu.module.cudaStreamDestroy.call_count == destroyed + 2
    assert gpu.module.cudaGraphExecDestroy.call_count == gpu.module.cudaGraphDestroy.call_count == 2
    expected = ReferenceEvaluator(nets.conv3x3()).run(None, {"input": np.ones((1, 3, 16, 16), np.float32)})[0]
    np.testing.assert_allclose(kept, expected, rtol=1e-5, atol=1e-5)  # still valid memory
    del kept
    gc.collect()
    assert not gpu.memory


def test_cuda_errors_are_checked(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (runner,), _ = _load(gpu, monkeypatch, nets.conv3x3(), TRT_RTX(engine_folder=str(tmp_path)),
                         ShapeProfile.static(16, 16))
    gpu.fail["cudaMemcpyAsync"] = rt.cudaError_t.cudaErrorIllegalAddress
    with pytest.raises(BackendError, match="cudaMemcpyAsync.*cudaErrorIllegalAddress"):
        runner.infer({"input": np.zeros((1, 3, 16, 16), np.float32)})


def test_undeserializable_engine_is_rebuilt(
    gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A truncated engine is rebuilt; TensorRT's error about it is a warning (vspipe shows a logged
    error as "Critical:", alarming for what the cache repairs)."""
    from vssr.backends.trt.build import shared_logger

    model = nets.conv3x3()
    config = TRT_RTX(engine_folder=str(tmp_path))
    _, runtime = _load(gpu, monkeypatch, model, config, ShapeProfile.static(16, 16))
    (path,) = tmp_path.glob("*.engine")
    good = path.read_bytes()
    # truncated, with a sidecar that vouches for it (or the sidecar check would refuse it first,
    # see test_trt_cache.py): the real runtime returns None for it
    import json

    from vssr import cachefile

    key = json.loads(cachefile.meta_path(path).read_text())["key"]
    cachefile.write(path, good[: len(good) // 2], key)

    def deserialize(data: bytes) -> Any:
        if data == good:
            return fake_engine(gpu, model, ShapeProfile.static(16, 16))
        shared_logger(trt).log(trt.ILogger.Severity.ERROR, "IRuntime::deserializeCudaEngine: magic tag mismatch")
        return None

    runtime.deserialize_cuda_engine.side_effect = deserialize
    config.load(Network.load(model), ShapeProfile.static(16, 16))
    assert path.read_bytes() == good  # rebuilt, byte for byte (the build is deterministic here)
    levels = {r.levelname for r in caplog.records if "magic tag" in r.getMessage()}
    assert levels == {"WARNING"}  # tried before and after taking the engine's lock
    shared_logger(trt).log(trt.ILogger.Severity.ERROR, "an error outside deserialization")
    assert caplog.records[-1].levelname == "ERROR"


def test_no_gpu_is_said_plainly() -> None:
    """The real cuda-python on this machine: cudaGetDeviceCount reports no usable driver."""
    err, count = rt.cudaGetDeviceCount()
    if err == OK and count > 0:  # pragma: no cover - a GPU machine
        pytest.skip("this machine has a GPU")
    with pytest.raises(BackendError, match=r"needs an NVIDIA GPU.*cudaGetDeviceCount: cudaError.*no NVIDIA driver is loaded"):
        TRT_RTX().load(Network.load(nets.conv3x3()), ShapeProfile.static(16, 16))


@pytest.mark.parametrize(("driver", "advice"), [
    (0, "no NVIDIA driver is loaded"),
    (12080, r'driver supports CUDA 12.8 but cuda-python is built for CUDA 13.4: update the driver, or pip install "cuda-python<13"'),
])
def test_old_driver_is_told_apart_from_no_gpu(driver: int, advice: str) -> None:
    """cuda-python 13 on a CUDA 12 driver reports cudaErrorInsufficientDriver like a machine without a GPU."""
    fake = SimpleNamespace(
        cudaError_t=rt.cudaError_t,
        cudaGetDeviceCount=mock.create_autospec(rt.cudaGetDeviceCount, return_value=(rt.cudaError_t.cudaErrorInsufficientDriver, None)),
        cudaGetErrorName=rt.cudaGetErrorName,
        cudaRuntimeGetVersion=mock.create_autospec(rt.cudaRuntimeGetVersion, return_value=(OK, 13040)),
        cudaDriverGetVersion=mock.create_autospec(rt.cudaDriverGetVersion, return_value=(OK, driver)),
    )
    with pytest.raises(BackendError, match=advice):
        cuda.require_gpu(fake, 0)


def test_autospec_catches_calls_the_installed_version_lacks() -> None:
    """The guard the other tests rely on: a misspelt or wrongly called function fails."""
    fake = FakeGpu()
    with pytest.raises(TypeError):
        fake.module.cudaMemcpyAsync(1, 2, 3)  # missing kind and stream
    context = mock.create_autospec(trt.IExecutionContext, instance=True)
    with pytest.raises(AttributeError):
        context.enqueue_v3(0)  # not a tensorrt_rtx method
    # autospec lets a pybind method take any arguments; the docstring signatures do not
    context.set_tensor_address("input", 1234)
    context.execute_async_v3(stream_handle=0)
    assert check_calls(context, trt.IExecutionContext) == 2
    context.set_tensor_address("input")  # the device address forgotten
    with pytest.raises(AssertionError, match=r"set_tensor_address\('input',\).*fits no signature"):
        check_calls(context, trt.IExecutionContext)
    engine = trt.ICudaEngine.create_execution_context
    assert [list(sig.parameters) for sig in signatures(engine, "create_execution_context")] == [
        ["self", "strategy"], ["self", "runtime_config"]]  # both overloads read


@pytest.mark.parametrize("name", [
    "test_engine_runs_like_onnx_reference",
    "test_streams_in_threads_and_tile_changes",
    # onnx.reference's GridSample is a Python loop: minutes for RIFE on the fake
    pytest.param("test_rife_fp16_keeps_its_warp_accurate", marks=pytest.mark.slow),
    "test_unclosed_runners_give_their_gpu_memory_back",
])
def test_the_gpu_tests_pass_on_the_fake_gpu(
    name: str, gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """tests/backends/test_trt_gpu.py only runs on a GPU: its test code is run here on the fake
    (TensorRT-RTX flavour), so a GPU owner's first run meets engines, not bugs in the tests."""
    from tests.backends import test_trt_gpu

    run_built_graphs(gpu, monkeypatch)
    test = getattr(test_trt_gpu, name)
    if name == "test_engine_runs_like_onnx_reference":
        for fp16 in (False, True):
            for static in (True, False):
                test(TRT_RTX, fp16, static, tmp_path)
    elif name == "test_streams_in_threads_and_tile_changes":
        for use_cuda_graph in (False, True):
            test(TRT_RTX, use_cuda_graph, tmp_path)
    elif name == "test_rife_fp16_keeps_its_warp_accurate":
        test(TRT_RTX, tmp_path)
    else:
        test(TRT_RTX, tmp_path, side=128)  # the fake runs the graph in numpy: a small frame
        assert not gpu.memory


def test_one_logger_serves_every_builder_and_runtime(
    gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """TensorRT keeps one logger per process and warns when a Builder or Runtime brings another."""
    from vssr.backends.trt.build import shared_logger

    builders: list[Any] = []
    real_builder = trt.Builder
    monkeypatch.setattr(trt, "Builder", lambda logger: builders.append(logger) or real_builder(logger))
    _load(gpu, monkeypatch, nets.conv3x3(), TRT_RTX(engine_folder=str(tmp_path)), ShapeProfile.static(16, 16))
    runtime_class = trt.Runtime
    loggers = [*builders, *(c.args[0] for c in runtime_class.call_args_list)]
    assert len(builders) == 1 and len(loggers) == 2 and all(x is shared_logger(trt) for x in loggers)


def test_collections_during_a_capture_free_after_it(gpu: FakeGpu) -> None:
    """A garbage collection can run a finalizer inside a CUDA-graph capture, on the capturing
    thread: its cudaFree would invalidate the capture (the fake does so). Frees wait for the end."""
    stream = cuda.Stream(gpu.module, 0)
    doomed = [cuda.DeviceBuffer(gpu.module, 64, 0)]
    address = doomed[0].ptr

    def enqueue() -> None:
        doomed.clear()
        gc.collect()
        assert address in gpu.memory  # deferred, not freed inside the capture

    graph = cuda.CudaGraph(gpu.module, stream, enqueue, 0)
    assert not gpu.capture_invalidated and address not in gpu.memory  # freed when the capture ended
    graph.close()
    stream.close()


def test_a_finalizer_leaves_the_threads_device_alone(gpu: FakeGpu) -> None:
    """A collection on a thread working on GPU 0 frees GPU 1's buffer on GPU 1, then puts 0 back."""
    buffer = cuda.DeviceBuffer(gpu.module, 64, 1)
    address = buffer.ptr
    gpu.module.cudaSetDevice(0)
    del buffer
    gc.collect()
    assert address not in gpu.memory and gpu.current_device == 0
    assert [c.args for c in gpu.module.cudaSetDevice.call_args_list[-2:]] == [(1,), (0,)]


def test_wrong_feeds_are_named(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (runner,), _ = _load(gpu, monkeypatch, nets.conv3x3(), TRT_RTX(engine_folder=str(tmp_path)),
                         ShapeProfile.static(16, 16))
    with pytest.raises(ValueError, match="float16.*takes float32"):
        runner.infer({"input": np.zeros((1, 3, 16, 16), np.float16)})
    with pytest.raises(BackendError, match="no optimization profile.*20x16"):
        runner.infer({"input": np.zeros((1, 3, 16, 20), np.float32)})  # a static engine takes its tile only


def test_gpu_check_script_runs_on_the_fake_gpu(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """bench/gpu_check.py's accuracy and timing code, on tiny shapes (its real run needs a GPU)."""
    import sys

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "bench"))
    import gpu_check  # type: ignore[import-not-found]

    run_built_graphs(gpu, monkeypatch)
    network = Network.load(nets.pixel_shuffle_x2())
    assert gpu_check.accuracy(TRT_RTX, network, str(tmp_path), fp16=False, size=(32, 24)) <= 1e-5
    assert 1e-5 < gpu_check.accuracy(TRT_RTX, network, str(tmp_path), fp16=True, size=(32, 24)) <= 1e-2
    for static in (True, False):
        fps, load_s, cpu_ms = gpu_check.speed(TRT_RTX, network, str(tmp_path), (24, 16), 2, static, True, 4)
        assert fps > 0 and load_s >= 0 and cpu_ms > 0
    sys.modules.pop("gpu_check", None)


VSPIPE_SCRIPT = '''\
from pathlib import Path

import pytest
import vapoursynth as vs

import vssr
from tests import nets

core = vs.core


def arg(value):  # vspipe -a values: bytes in older VapourSynth, str in newer
    return value.decode() if isinstance(value, bytes) else value


def dot(value):
    return core.std.BlankClip(format=vs.GRAYS, width=1, height=1, length=1, color=[value])


frames = []
for n in range(8):  # 2x2 values that change every frame, smoothly upscaled: gradients that move
    a, b, c, d = ((0.1 + 0.23 * k + 0.07 * n) % 1 for k in range(4))
    frames.append(core.std.StackVertical([core.std.StackHorizontal([dot(a), dot(b)]),
                                          core.std.StackHorizontal([dot(c), dot(d)])]))
clip = core.resize.Bicubic(core.std.Splice(frames), 72, 40)
on_trt = arg(backend) == "trt"
if on_trt:
    from tests.backends import fake_gpu

    gpu = fake_gpu.install(pytest.MonkeyPatch())
    config = vssr.Backend.TRT_RTX(engine_folder=arg(engines), num_streams=2)
    report = Path(arg(report_path))

    # after each free: what is left once vspipe has freed the script (whose globals are gone by
    # then: everything the report needs is bound here)
    def write_report(report=report, gpu=gpu):
        report.write_text(f"{len(gpu.memory)} {gpu.module.cudaStreamDestroy.call_count}")

    for name in ("cudaFree", "cudaFreeHost", "cudaStreamDestroy"):
        function = getattr(gpu.module, name)

        def freeing(*args, _inner=function.side_effect, _report=write_report):
            result = _inner(*args)
            _report()
            return result

        function.side_effect = freeing
else:
    config = vssr.Backend.ORT(num_streams=2)
out = vssr.inference(clip, nets.pixel_shuffle_x2(1), config, tilesize=32, overlap=4)
core.resize.Point(out, format=vs.GRAY8).set_output()
if on_trt:
    write_report()  # nothing freed yet
'''


def test_vspipe_runs_trt_on_the_fake_gpu_like_ort_and_frees_it(tmp_path: Path) -> None:
    """The whole user path but the GPU: vspipe evaluates a script with Backend.TRT_RTX (a real
    engine build, two streams on VapourSynth's threads, tiles); its frames match ORT's; and when
    vspipe frees the script, every CUDA buffer and stream is freed (VapourSynth never closes filters)."""
    from tests.pipeline import decode_gray, encode

    script = tmp_path / "trt.vpy"
    script.write_text(VSPIPE_SCRIPT)
    report = tmp_path / "report.txt"
    frames = {}
    for backend in ("ort", "trt"):
        out = tmp_path / f"{backend}.mkv"
        info = encode(script, out, backend=backend, engines=tmp_path / "engines", report_path=report)
        assert (info["width"], info["height"], info["nb_read_frames"]) == (144, 80, "8")
        frames[backend] = decode_gray(out, 144, 80).astype(int)
    assert np.abs(frames["trt"] - frames["ort"]).max() <= 1 and frames["ort"].std() > 10
    memory, streams_destroyed = map(int, report.read_text().split())
    assert memory == 0 and streams_destroyed == 2


@pytest.mark.parametrize("method", ["naive", "minmax"])
def test_quicksrnet_int8_for_tensorrt_builds_and_runs(
    method: str, gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """QuickSRNet(int8=..., int8_symmetric=True), the int8 meant for TensorRT, through TRT_RTX: the
    QDQ graph vssr's quantizer writes must build (TensorRT refuses int32-quantized biases, which
    ORT's quantizer writes by default) and run like the same int8 graph on ORT."""
    import vapoursynth as vs

    from vssr.backends.ort import ORT
    from vssr.filters.quicksrnet import QuickSRNet

    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "models"))
    run_built_graphs(gpu, monkeypatch)
    core = vs.core
    blank = core.std.BlankClip(format=vs.RGBS, width=24, height=16, length=3)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        rng = np.random.default_rng(n)
        for c in range(3):
            np.copyto(np.asarray(out[c]), rng.random((16, 24), dtype=np.float32))
        return out

    clip = core.std.ModifyFrame(blank, blank, fill)
    frames = {}
    for name, backend in (("ort", ORT(threads=1)), ("trt", TRT_RTX(engine_folder=str(tmp_path / "engines")))):
        out = QuickSRNet(clip, int8=method, int8_symmetric=True, calibration_frames=2, backend=backend)
        frames[name] = np.stack([np.asarray(out.get_frame(1)[c]) for c in range(3)])
    assert frames["trt"].shape == (3, 32, 48)
    np.testing.assert_allclose(frames["trt"], frames["ort"], atol=0.03)  # int8 kernels round differently


@pytest.mark.slow  # a minute: onnx.reference's GridSample (EDVR's decomposed DeformConv) is a Python loop
def test_output_dtype_is_for_the_filters_result_only(
    gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """TRT(output_dtype="float16") on an RGBS clip: EDVR's feature extractor feeds its aligner in
    the clip's type, not in the output type (it failed on the first frame); the result is fp16-close
    to ORT's."""
    import vapoursynth as vs

    from tests.arch import edvr_numpy
    from tests.filters.test_edvr import _array, _source
    from vssr.backends.ort import ORT
    from vssr.filters.edvr import EDVR

    assert TRT_RTX(output_dtype="float16").for_intermediate().output_dtype is None
    run_built_graphs(gpu, monkeypatch)
    state = edvr_numpy.random_state(num_feat=8, groups=8, seed=11)
    clip, _ = _source(vs.core, 3, 12, 16)
    got = {}
    for name, backend in (("ort", ORT(threads=1)),
                          ("trt", TRT_RTX(engine_folder=str(tmp_path), output_dtype="float16"))):
        out = EDVR(clip, state, backend=backend, deform="decomposed")
        got[name] = _array(out.get_frame(1))
    np.testing.assert_allclose(got["trt"], got["ort"], atol=1e-2)


# --- issue 17: waits, failed captures, the collector, frees, engine I/O -------------------------
def test_waits_sleep_on_a_blocking_event(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each wait is cudaEventRecord + cudaEventSynchronize on an event made with cudaEventBlockingSync
    (the thread sleeps), never cudaStreamSynchronize (which spins under the default scheduling)."""
    import inspect

    assert list(inspect.signature(rt.cudaEventCreateWithFlags).parameters) == ["flags"]  # the real binding
    assert int(rt.cudaEventBlockingSync) == 0x01 and int(rt.cudaEventDisableTiming) == 0x02  # cuda_runtime_api.h
    (runner,), _ = _load(gpu, monkeypatch, nets.conv3x3(), TRT_RTX(engine_folder=str(tmp_path)),
                         ShapeProfile.static(16, 16))
    runner.infer({"input": np.zeros((1, 3, 16, 16), np.float32)})
    assert gpu.module.cudaStreamSynchronize.call_count == 0
    assert gpu.module.cudaEventSynchronize.call_count == gpu.module.cudaEventRecord.call_count == 2  # warm-up + 1
    assert list(gpu.events.values()) == [int(rt.cudaEventBlockingSync) | int(rt.cudaEventDisableTiming)]
    runner.close()
    assert not gpu.events  # destroyed with the stream


def test_a_failed_capture_clears_the_error_before_the_plain_run(
    gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """After a failed capture the thread's last CUDA error is cleared (trtexec's endCaptureOnError):
    code that checks it with cudaPeekAtLastError (the fake's execute does, like DeformConv's
    plugin) then runs the same frame plainly, and every later one."""
    gpu.capturable = False
    gpu.check_last_error = True
    runner = _full_tensorrt_dynamic(gpu, monkeypatch, tmp_path)
    _runs_like_the_graph(runner, [16] * 3)
    assert gpu.module.cudaStreamBeginCapture.call_count == 1 and gpu.module.cudaGetLastError.call_count == 1
    assert not gpu.last_error
    runner.close()


def test_engines_with_plugin_layers_are_not_captured(
    gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A plugin's static CUDA runtime keeps a failed capture's error where nothing outside can clear
    it: an engine with plugin layers (DeformConv, custom-domain ops) runs without vssr's graphs."""
    import dataclasses
    import logging

    from vssr.backends.trt.plan import BuildPlan, plugin_nodes
    from vssr.backends.trt.runner import TrtRunner

    monkeypatch.delattr(trt, "IRuntimeConfig")  # full TensorRT, where vssr captures
    dcn = onnx.helper.make_node("DeformConv", ["x", "w", "offset"], ["y"], name="n_dcn")
    custom = onnx.helper.make_node("MyOp", ["y"], ["z"], name="n_custom", domain="my.ops")
    assert plugin_nodes(onnx.helper.make_model(onnx.helper.make_graph([dcn, custom], "g", [], []))) == ("n_dcn", "n_custom")
    plan = BuildPlan.make(TRT_RTX(), Network.load(nets.conv3x3()), ShapeProfile.static(16, 16))
    engine = fake_engine(gpu, nets.conv3x3(), ShapeProfile.static(16, 16))
    with caplog.at_level(logging.INFO):
        runner = TrtRunner(trt, gpu.module, engine, dataclasses.replace(plan, plugin_nodes=("n_dcn",)),
                           device_id=0, use_cuda_graph=True)
    for _ in range(3):
        runner.infer({"input": np.zeros((1, 3, 16, 16), np.float32)})
    assert gpu.module.cudaStreamBeginCapture.call_count == 0 and runner.context.execute_async_v3.call_count == 3
    assert any("plugin layers (n_dcn)" in r.getMessage() for r in caplog.records)
    runner.close()


@pytest.mark.parametrize("enabled", [True, False])
def test_no_garbage_collection_inside_a_capture(gpu: FakeGpu, enabled: bool) -> None:
    """Python runs between begin and end of a capture; a collection there could free a dropped
    runner's TensorRT memory inside it. The collector is off for the window, then as it was."""
    import gc as collector

    seen = []
    stream = cuda.Stream(gpu.module, 0)
    (collector.enable if enabled else collector.disable)()
    try:
        graph = cuda.CudaGraph(gpu.module, stream, lambda: seen.append(collector.isenabled()), 0)
        assert seen == [False] and collector.isenabled() is enabled
        with pytest.raises(RuntimeError):  # a failing enqueue restores it too
            cuda.CudaGraph(gpu.module, stream, lambda: (_ for _ in ()).throw(RuntimeError("enqueue")), 0)
        assert collector.isenabled() is enabled
    finally:
        collector.enable()
    graph.close()
    stream.close()


def test_the_collector_stays_off_until_the_last_of_two_captures_ends(gpu: FakeGpu) -> None:
    """Captures on two threads overlap: the first to end must not turn the collector back on while
    the other still captures; the last one restores it."""
    import gc as collector
    import threading

    first_inside, second_done = threading.Event(), threading.Event()
    seen: dict[str, bool] = {}
    graphs: list[Any] = []

    def first() -> None:
        def enqueue() -> None:
            first_inside.set()
            assert second_done.wait(10)
            seen["first, after the second ended"] = collector.isenabled()

        graphs.append(cuda.CudaGraph(gpu.module, cuda.Stream(gpu.module, 0), enqueue, 0))

    collector.enable()
    thread = threading.Thread(target=first)
    thread.start()
    assert first_inside.wait(10)
    gpu.capturing = None  # the fake has one capture list: the second thread's capture is its own
    graphs.append(cuda.CudaGraph(gpu.module, cuda.Stream(gpu.module, 0), lambda: None, 0))
    seen["main, after its capture"] = collector.isenabled()
    second_done.set()
    thread.join(10)
    assert seen == {"main, after its capture": False, "first, after the second ended": False}
    assert collector.isenabled()
    for graph in graphs:
        graph.close()


def test_collected_runners_free_tensorrt_on_their_device(
    gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A runner on GPU 1 collected by a thread working on GPU 0: its context and engine are released
    with GPU 1 current (TensorRT frees on the current device), then the thread's GPU 0 is back."""
    gpu.devices = 2
    (runner,), _ = _load(gpu, monkeypatch, nets.conv3x3(), TRT_RTX(engine_folder=str(tmp_path), device_id=1),
                         ShapeProfile.static(16, 16))
    runner.infer({"input": np.zeros((1, 3, 16, 16), np.float32)})
    assert sum(check_calls(m, cls, constructor=c) for m, cls, c in gpu.trt_mocks)
    gpu.trt_mocks.clear()  # the mocks' calls are checked; let the engine and context go
    gpu.module.cudaSetDevice(0)
    del runner, _
    gc.collect()
    assert gpu.device_of == {"context": 1, "engine": 1}
    assert gpu.current_device == 0


def _load_with_engine(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, change: Any) -> None:
    def changed(data: Any) -> Any:
        engine = fake_engine(gpu, nets.conv3x3(), ShapeProfile.static(16, 16))
        change(engine)
        return engine

    fake_runtime(gpu, monkeypatch, changed)
    TRT_RTX(engine_folder=str(tmp_path)).load(Network.load(nets.conv3x3()), ShapeProfile.static(16, 16))


def test_engine_with_other_io_tensors_is_refused(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def extra(engine: Any) -> None:
        engine.num_io_tensors = 3
        engine.get_tensor_name.side_effect = ["input", "output", "aux"].__getitem__

    with pytest.raises(BackendError, match=r"3 I/O tensors \['input', 'output', 'aux'\], the plan 2"):
        _load_with_engine(gpu, monkeypatch, tmp_path, extra)


def test_engine_with_shape_tensor_io_is_refused(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def shape_tensor(engine: Any) -> None:
        engine.is_shape_inference_io.side_effect = lambda name: name == "output"

    with pytest.raises(BackendError, match="output 'output' is a shape tensor"):
        _load_with_engine(gpu, monkeypatch, tmp_path, shape_tensor)


def test_static_engine_with_dynamic_dims_is_refused(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def dynamic(engine: Any) -> None:
        engine.get_tensor_shape.side_effect = lambda name: (1, 3, -1, -1)

    with pytest.raises(BackendError, match=r"input 'input' has dynamic dimensions \(1, 3, -1, -1\) in a static engine"):
        _load_with_engine(gpu, monkeypatch, tmp_path, dynamic)


def test_a_refused_tensor_address_is_an_error(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """set_tensor_address returns False for a misaligned address or a name the engine lacks (Polygraphy: fatal)."""
    def refusing(engine: Any) -> None:
        make = engine.create_execution_context.side_effect

        def context(*args: Any) -> Any:
            made = make(*args)
            made.set_tensor_address.side_effect = lambda name, ptr: False
            return made

        engine.create_execution_context.side_effect = context

    with pytest.raises(BackendError, match="rejected the device address of 'input'"):
        _load_with_engine(gpu, monkeypatch, tmp_path, refusing)


def test_cuda_python_floor_has_cuda_bindings() -> None:
    """cuda-python 12.6.0 has no cuda.bindings (it came in 12.6.1): every extra asks for >= 12.6.1."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    floors = [r for r in requirements if r.name == "cuda-python"]
    assert floors and all(not r.specifier.contains("12.6.0") for r in floors), [str(r) for r in floors]
