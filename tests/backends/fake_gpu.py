"""A fake NVIDIA GPU for the TensorRT runtime path: real engine builds, mocked runtime and CUDA.

Every CUDA function is `create_autospec` of the real `cuda.bindings.runtime` function (a call with
the wrong arguments, or to a function the installed version lacks, fails), and the TensorRT
runtime objects are autospecs of the real `tensorrt_rtx` classes (a method they lack fails). The
"GPU" is host memory: cudaMalloc hands out real buffers, cudaMemcpyAsync really copies, and
execute_async_v3 runs the engine's ONNX with onnx.reference, so the data path is checked end to
end, including CUDA-graph capture and replay. Used by the tests and, through `install`, by
scripts vspipe runs.
"""

from __future__ import annotations

import ctypes
import threading
from types import SimpleNamespace
from typing import Any
from unittest import mock

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

from vssr.backends import cuda
from vssr.types import ShapeProfile

trt = pytest.importorskip("tensorrt_rtx")
rt = pytest.importorskip("cuda.bindings.runtime")

OK = rt.cudaError_t.cudaSuccess
RUNTIME_CONFIG = trt.IRuntimeConfig  # kept: one test hides it to play full TensorRT
RUNTIME = trt.Runtime  # kept: tests replace it, maybe twice in a test


class FakeGpu:
    """cuda.bindings.runtime stand-in: autospecced functions over host memory."""

    USED = (
        "cudaGetDeviceCount", "cudaSetDevice", "cudaGetDeviceProperties", "cudaGetErrorName",
        "cudaStreamCreateWithFlags", "cudaStreamSynchronize", "cudaStreamDestroy",
        "cudaHostAlloc", "cudaFreeHost", "cudaMalloc", "cudaFree", "cudaMemcpyAsync",
        "cudaStreamBeginCapture", "cudaStreamEndCapture", "cudaGraphInstantiate", "cudaGraphLaunch",
        "cudaGraphExecDestroy", "cudaGraphDestroy", "cudaMemGetInfo", "cudaGetDevice",
        "cudaEventCreateWithFlags", "cudaEventRecord", "cudaEventSynchronize", "cudaEventDestroy",
        "cudaGetLastError",
    )
    TOTAL = 24 << 30

    def __init__(self) -> None:
        self.memory: dict[int, ctypes.Array[ctypes.c_byte]] = {}
        self.capturing: list[Any] | None = None
        self.graphs: dict[int, list[Any]] = {}
        self.fail: dict[str, Any] = {}
        self.accept_kernel_cache = True
        self.capturable = True
        """False: TensorRT's enqueue is never capturable (as if it allocated inside the capture)."""
        self.capture_invalidated = False
        self.current_device = 0
        self.devices = 1
        self.last_error: dict[int, Any] = {}
        """Host thread -> the CUDA runtime's last error there (cudaGetLastError returns and clears it)."""
        self.check_last_error = False
        """True: execute_async_v3 fails while the thread's last error is set, as a plugin checking
        cudaPeekAtLastError does (here TensorRT shares the one runtime of the fake)."""
        self.device_of: dict[str, int] = {}
        """What was freed ("context", "engine") -> the device current when it was."""
        self.events: dict[int, int] = {}
        """Event handle -> its creation flags."""
        self.kernel_caches: list[Any] = []
        self.trt_mocks: list[tuple[Any, type, bool]] = []
        """(autospec, real tensorrt_rtx class, is the class itself): calls checked after each test."""
        self.module = SimpleNamespace(
            cudaError_t=rt.cudaError_t,
            cudaStreamNonBlocking=rt.cudaStreamNonBlocking,
            cudaHostAllocDefault=rt.cudaHostAllocDefault,
            cudaMemcpyKind=rt.cudaMemcpyKind,
            cudaStreamCaptureMode=rt.cudaStreamCaptureMode,
            cudaEventBlockingSync=rt.cudaEventBlockingSync,
            cudaEventDisableTiming=rt.cudaEventDisableTiming,
        )
        for name in self.USED:
            impl = getattr(self, name)

            def guarded(*args: Any, _name: str = name, _impl: Any = impl) -> Any:
                if _name in self.fail:
                    return (self.fail[_name],)
                return _impl(*args)

            setattr(self.module, name, mock.create_autospec(getattr(rt, name), side_effect=guarded))

    def _alloc(self, size: int) -> int:
        buffer = (ctypes.c_byte * size)()
        address = ctypes.addressof(buffer)
        self.memory[address] = buffer
        return address

    # --- the functions, with the real ones' return conventions ---------------------------------
    def cudaGetDeviceCount(self) -> Any:
        return OK, self.devices

    def cudaSetDevice(self, device: int) -> Any:
        self.current_device = device
        return (OK,)

    def cudaGetDevice(self) -> Any:
        return OK, self.current_device

    def cudaGetDeviceProperties(self, device: int) -> Any:
        return OK, SimpleNamespace(name=b"Fake RTX 4090\0\0", major=8, minor=9)

    def cudaGetErrorName(self, err: Any) -> Any:
        return OK, err.name.encode()

    def cudaStreamCreateWithFlags(self, flags: int) -> Any:
        return OK, 4000 + len(self.memory)

    def cudaStreamSynchronize(self, stream: Any) -> Any:
        return (OK,)

    def cudaStreamDestroy(self, stream: Any) -> Any:
        return (OK,)

    def cudaHostAlloc(self, size: int, flags: int) -> Any:
        return OK, self._alloc(size)

    def cudaMalloc(self, size: int) -> Any:
        return OK, self._alloc(size)

    def cudaFreeHost(self, ptr: int) -> Any:
        if self.capturing is not None:  # a capture-unsafe call on a capturing thread
            self.capture_invalidated = True
            return (rt.cudaError_t.cudaErrorStreamCaptureUnsupported,)
        del self.memory[ptr]
        return (OK,)

    cudaFree = cudaFreeHost

    def cudaMemcpyAsync(self, dst: int, src: int, count: int, kind: Any, stream: Any) -> Any:
        op = lambda: ctypes.memmove(dst, src, count)
        self.capturing.append(op) if self.capturing is not None else op()
        return (OK,)

    def cudaStreamBeginCapture(self, stream: Any, mode: Any) -> Any:
        self.capturing, self.capture_invalidated = [], False
        return (OK,)

    def cudaStreamEndCapture(self, stream: Any) -> Any:
        ops, self.capturing = self.capturing, None
        if self.capture_invalidated:
            self.last_error[threading.get_ident()] = rt.cudaError_t.cudaErrorStreamCaptureInvalidated
            return rt.cudaError_t.cudaErrorStreamCaptureInvalidated, None
        self.graphs[id(ops)] = ops  # type: ignore[arg-type]
        return OK, id(ops)

    def cudaGraphInstantiate(self, graph: Any, flags: int) -> Any:
        return OK, graph

    def cudaGraphLaunch(self, graph_exec: Any, stream: Any) -> Any:
        for op in self.graphs[graph_exec]:
            op()
        return (OK,)

    def cudaGraphExecDestroy(self, graph_exec: Any) -> Any:
        return (OK,)

    def cudaGraphDestroy(self, graph: Any) -> Any:
        return (OK,)

    def cudaEventCreateWithFlags(self, flags: int) -> Any:
        handle = 9000 + len(self.events)
        self.events[handle] = flags
        return OK, handle

    def cudaEventRecord(self, event: Any, stream: Any) -> Any:
        return (OK,)

    def cudaEventSynchronize(self, event: Any) -> Any:
        return (OK,)

    def cudaEventDestroy(self, event: Any) -> Any:
        del self.events[event]
        return (OK,)

    def cudaGetLastError(self) -> Any:
        return (self.last_error.pop(threading.get_ident(), OK),)

    def cudaMemGetInfo(self) -> Any:
        used = sum(ctypes.sizeof(buffer) for buffer in self.memory.values())
        return OK, self.TOTAL - used, self.TOTAL


def _reference_spelling(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnx.reference implements GridSample as opset 20 spells its modes ("linear", "cubic"); the
    models say "bilinear"/"bicubic", opset 16-19's names for the same interpolation."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    renamed = {b"bilinear": b"linear", b"bicubic": b"cubic"}
    for node in out.graph.node:
        if node.op_type == "GridSample":
            for attr in node.attribute:
                if attr.name == "mode" and attr.s in renamed:
                    attr.s = renamed[attr.s]
    return out


def fake_engine(gpu: FakeGpu, model: onnx.ModelProto, profile: ShapeProfile) -> Any:
    """An autospec ICudaEngine whose contexts run `model` with onnx.reference on fake device memory."""
    reference = ReferenceEvaluator(_reference_spelling(model))
    inputs = [i for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    dtypes = {v.name: onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)
              for v in [*model.graph.input, *model.graph.output]}
    engine = mock.create_autospec(trt.ICudaEngine, instance=True)
    gpu.trt_mocks.append((engine, trt.ICudaEngine, False))
    engine.num_optimization_profiles = 1
    modes = {**{i.name: trt.TensorIOMode.INPUT for i in inputs}, **{n: trt.TensorIOMode.OUTPUT for n in outputs}}
    trt_types = {np.dtype(np.float32): trt.float32, np.dtype(np.float16): trt.float16}
    engine.get_tensor_mode.side_effect = lambda name: modes.get(name, trt.TensorIOMode.NONE)
    engine.get_tensor_dtype.side_effect = lambda name: trt_types[np.dtype(dtypes[name])]
    c = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim][1]
    engine.get_tensor_profile_shape.return_value = [(1, c, h, w) for w, h in (profile.min, profile.opt, profile.max)]

    def make_context(*args: Any) -> Any:
        context = mock.create_autospec(trt.IExecutionContext, instance=True)
        gpu.trt_mocks.append((context, trt.IExecutionContext, False))
        runtime_config = args[0] if args else None
        kernels = (runtime_config.set_runtime_cache.call_args.args[0]
                   if runtime_config is not None and runtime_config.set_runtime_cache.called else None)
        shapes: dict[str, tuple[int, ...]] = {}
        addresses: dict[str, int] = {}
        state = {"updated": False}  # TensorRT's: the first enqueue after a shape change updates it

        def set_input_shape(name: str, shape: Any) -> bool:
            shapes[name] = tuple(shape)
            state["updated"] = False
            return True

        def out_shapes() -> dict[str, tuple[int, ...]]:
            """Output shapes by the graph's scale, read at 16x16 (cheap at any size) or, for graphs
            that need larger inputs (RIFE's pyramid), at a 64x64 probe."""
            image = next(i.name for i in inputs if len(shapes[i.name]) == 4 and shapes[i.name][2:] != (1, 1))
            h, w = shapes[image][2:]
            for side in (16, 64):
                probe = {i.name: np.zeros((*shapes[i.name][:2], side, side) if len(shapes[i.name]) == 4
                                          and shapes[i.name][2:] != (1, 1) else shapes[i.name], dtypes[i.name])
                         for i in inputs}
                try:
                    results = reference.run(None, probe)
                except (ValueError, TypeError):
                    continue
                return {n: (*r.shape[:2], r.shape[2] * h // side, r.shape[3] * w // side)
                        for n, r in zip(outputs, results, strict=True)}
            raise AssertionError("the fake engine cannot probe this graph's output shapes")

        def get_tensor_shape(name: str) -> Any:
            return shapes[name] if name in shapes else out_shapes()[name]

        def set_tensor_address(name: str, ptr: int) -> bool:
            addresses[name] = ptr
            return True

        def run() -> None:
            feeds = {}
            for i in inputs:
                n = int(np.prod(shapes[i.name])) * np.dtype(dtypes[i.name]).itemsize
                feeds[i.name] = np.frombuffer(ctypes.string_at(addresses[i.name], n), dtypes[i.name]).reshape(shapes[i.name])
            for name, result in zip(outputs, reference.run(None, feeds), strict=True):
                data = np.ascontiguousarray(result, dtypes[name]).tobytes()
                ctypes.memmove(addresses[name], data, len(data))

        def execute_async_v3(stream: int) -> bool:
            if gpu.check_last_error and gpu.last_error.get(threading.get_ident(), OK) != OK:
                return False  # a plugin's cudaPeekAtLastError sees an error left by an earlier call
            if kernels is not None:  # the JIT: kernels for this shape, compiled once, kept in the cache
                kernels.kernels.add("x".join(map(str, shapes[inputs[0].name])))
            if gpu.capturing is not None and not (state["updated"] and gpu.capturable):
                gpu.capture_invalidated = True  # TensorRT's state update cannot be captured
                return False
            state["updated"] = True
            gpu.capturing.append(run) if gpu.capturing is not None else run()
            return True

        context.set_input_shape.side_effect = set_input_shape
        context.get_tensor_shape.side_effect = get_tensor_shape
        context.set_tensor_address.side_effect = set_tensor_address
        context.execute_async_v3.side_effect = execute_async_v3
        return Released(gpu, context, "context")

    engine.create_execution_context.side_effect = make_context
    runtime_config = mock.create_autospec(RUNTIME_CONFIG, instance=True)
    gpu.trt_mocks.append((runtime_config, RUNTIME_CONFIG, False))
    runtime_config.create_runtime_cache.side_effect = lambda: fake_kernel_cache(gpu)
    runtime_config.set_runtime_cache.return_value = True
    engine.create_runtime_config.return_value = runtime_config
    engine.num_io_tensors = len(inputs) + len(outputs)
    engine.get_tensor_name.side_effect = lambda index: [*(i.name for i in inputs), *outputs][index]
    engine.is_shape_inference_io.return_value = False
    engine.get_tensor_shape.side_effect = lambda name: (1, c, -1, -1) if not profile.is_static else (1, c, 1, 1)
    return Released(gpu, engine, "engine")


class Released:
    """A TensorRT object (an autospec, reached through attribute access) that notes the device
    current when its last reference goes: the real object frees its GPU memory there. (The mock
    itself, in reference cycles of its own, would go only at the next collection.)"""

    def __init__(self, gpu: FakeGpu, real: Any, what: str) -> None:
        object.__setattr__(self, "_fake", (gpu, real, what))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fake[1], name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._fake[1], name, value)

    def __del__(self) -> None:
        gpu, _, what = self._fake
        gpu.device_of[what] = gpu.current_device


def fake_kernel_cache(gpu: FakeGpu) -> Any:
    """An autospec IRuntimeCache holding kernel names; (de)serializes them as text."""
    cache = mock.create_autospec(trt.IRuntimeCache, instance=True)
    gpu.trt_mocks.append((cache, trt.IRuntimeCache, False))
    cache.kernels = set()

    def deserialize(blob: Any) -> bool:
        if not gpu.accept_kernel_cache:
            return False
        cache.kernels |= set(bytes(blob).decode().split())
        return True

    cache.deserialize.side_effect = deserialize
    cache.serialize.side_effect = lambda: " ".join(sorted(cache.kernels)).encode()
    gpu.kernel_caches.append(cache)
    return cache


def fake_runtime(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch, deserialize: Any) -> Any:
    """trt.Runtime replaced by an autospec whose instance deserializes with `deserialize(data)`."""
    runtime = mock.create_autospec(RUNTIME, instance=True)
    runtime.deserialize_cuda_engine.side_effect = deserialize
    runtime_class = mock.create_autospec(RUNTIME, return_value=runtime)
    monkeypatch.setattr(trt, "Runtime", runtime_class)
    gpu.trt_mocks += [(runtime, RUNTIME, False), (runtime_class, RUNTIME, True)]
    return runtime


def run_built_graphs(gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Make deserialized engines run the ONNX vssr built for them (recorded from BuildPlan.make)."""
    from vssr.backends.trt.plan import BuildPlan

    plans: list[Any] = []
    make = BuildPlan.make.__func__  # type: ignore[attr-defined]

    def recording_make(cls: Any, *args: Any, **kwargs: Any) -> Any:
        plans.append(make(cls, *args, **kwargs))
        return plans[-1]

    monkeypatch.setattr(BuildPlan, "make", classmethod(recording_make))
    fake_runtime(gpu, monkeypatch, lambda data: fake_engine(
        gpu, onnx.load_model_from_string(plans[-1].model_bytes), plans[-1].profile
    ))
    return plans


def install(monkeypatch: pytest.MonkeyPatch) -> FakeGpu:
    """Make vssr's TensorRT backends run on a new fake GPU: engines built for real, executed by
    onnx.reference on the graph vssr built. Undone by `monkeypatch.undo()`."""
    gpu = FakeGpu()
    monkeypatch.setattr(cuda, "import_cudart", lambda: gpu.module)
    run_built_graphs(gpu, monkeypatch)
    return gpu
