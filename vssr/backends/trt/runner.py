"""TensorRT runtime: execution contexts with their own CUDA streams and buffers (one per stream).

Everything here is allocated in TrtRunner's constructor, at filter creation, and `infer` is the
per-tile hot path. Polygraphy's runner is the model: every TensorRT setter's result is checked.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import BackendError
from ...types import Tensors
from .. import cuda
from ..base import check_feeds

if TYPE_CHECKING:
    import tensorrt

    from ..runtime_api import CudaRuntime, TensorRT
    from .cache import RuntimeCache
    from .plan import BuildPlan

__all__ = ["TrtRunner", "check_engine_io", "context_from_engine", "jit_runtime", "select_profile"]

logger = logging.getLogger(__name__)

ShapeKey = tuple[tuple[int, ...], ...]
"""The shapes of a call's inputs, in the plan's input order."""


def select_profile(profiles: Sequence[tuple[tuple[int, int], tuple[int, int], tuple[int, int]]], width: int, height: int) -> int:
    """Index of the profile for a (width, height) tile: opt == tile first, else the first covering it."""
    for i, (_, opt, _) in enumerate(profiles):
        if opt == (width, height):
            return i
    for i, (low, _, high) in enumerate(profiles):
        if low[0] <= width <= high[0] and low[1] <= height <= high[1]:
            return i
    raise BackendError(f"no optimization profile of the engine accepts a {width}x{height} tile: {list(profiles)}")


def jit_runtime(trt: TensorRT) -> bool:
    """True for TensorRT-RTX, whose runtime config has the JIT knobs (CUDA-graph strategy, kernel
    specialization, runtime cache). Full TensorRT >= 10.11 has an IRuntimeConfig too, with only
    the allocation strategy: the class alone does not tell them apart."""
    return hasattr(trt, "CudaGraphStrategy") and hasattr(trt, "IRuntimeConfig")


def context_from_engine(
    trt: TensorRT, engine: tensorrt.ICudaEngine, *, dynamic: bool, use_cuda_graph: bool,
    runtime_cache: RuntimeCache | None = None,
) -> tuple[tensorrt.IExecutionContext | None, bool, tensorrt.IRuntimeConfig | None]:
    """(execution context, whether vssr must capture CUDA graphs itself, its runtime config or None).

    TensorRT-RTX JIT-compiles kernels: with dynamic shapes it specializes them lazily while
    running unless told EAGER, and it captures CUDA graphs itself (CudaGraphStrategy) because a
    lazy compilation inside an outside capture is illegal. Full TensorRT has none of these knobs: vssr captures the stream's work after
    a warm-up run. The runtime config is returned so the runner keeps it (and the cache it points
    at) alive as long as the context. `runtime_cache` keeps what the JIT compiles for the next process.
    """
    if not jit_runtime(trt):
        return engine.create_execution_context(), use_cuda_graph, None
    config = engine.create_runtime_config()
    if dynamic:
        config.dynamic_shapes_kernel_specialization_strategy = trt.DynamicShapesKernelSpecializationStrategy.EAGER
    if use_cuda_graph:
        config.cuda_graph_strategy = trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE
    if runtime_cache is not None:
        runtime_cache.attach(config)
    return engine.create_execution_context(config), False, config


def check_engine_io(trt: TensorRT, engine: tensorrt.ICudaEngine, plan: BuildPlan) -> None:
    """The deserialized engine has exactly the plan's tensors, in the right directions and types.

    Buffers are sized and typed from the plan; an engine that disagrees would be fed the wrong
    bytes silently, so it is an error at load: another number of I/O tensors, a shape tensor
    (its values live on the host, not in the device buffers vssr binds), a direction or type
    other than the plan's, or a dynamic (-1) dimension in an engine the plan built static.
    """
    def mismatch(what: str) -> BackendError:
        return BackendError(f"the TensorRT engine does not match its build plan: {what} (delete the engine to rebuild it)")

    expected = len(plan.inputs) + len(plan.outputs)
    if engine.num_io_tensors != expected:
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        raise mismatch(f"it has {engine.num_io_tensors} I/O tensors {names}, the plan {expected}")
    modes = {"input": trt.TensorIOMode.INPUT, "output": trt.TensorIOMode.OUTPUT}
    for direction, specs in (("input", plan.inputs), ("output", plan.outputs)):
        for spec in specs:
            mode = engine.get_tensor_mode(spec.name)
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(spec.name))) if mode == modes[direction] else None
            if dtype != spec.dtype:
                raise mismatch(f"{direction} {spec.name!r} is {mode} {dtype}, expected {direction} {spec.dtype}")
            if engine.is_shape_inference_io(spec.name):
                raise mismatch(f"{direction} {spec.name!r} is a shape tensor; vssr binds only execution tensors")
            shape = tuple(engine.get_tensor_shape(spec.name))
            if plan.profile.is_static and any(d < 0 for d in shape):
                raise mismatch(f"{direction} {spec.name!r} has dynamic dimensions {shape} in a static engine")


class TrtRunner:
    """One execution context with its own stream and buffers; used by one thread at a time.

    `infer` sets the device, copies inputs into pinned memory (numpy releases the GIL for large
    copies), enqueues host-to-device copies, `execute_async_v3` and device-to-host copies, then
    waits on the stream's blocking event (`cuda.Stream.synchronize`: the thread sleeps, it does
    not spin). TensorRT's enqueue and cuda-python's calls release the GIL, so runners on other
    VapourSynth threads overlap.

    Engines with plugin layers are never captured into CUDA graphs: a plugin links its own static
    CUDA runtime, whose last error a failed capture leaves set where nothing outside can clear
    it, and DeformConv's plugin checks it with cudaPeekAtLastError, so every later frame on that
    thread would fail (docs/tensorrt.md, "CUDA graphs").
    """

    def __init__(
        self,
        trt: TensorRT,
        rt: CudaRuntime,
        engine: tensorrt.ICudaEngine,
        plan: BuildPlan,
        *,
        device_id: int,
        use_cuda_graph: bool,
        runtime_cache: RuntimeCache | None = None,
    ) -> None:
        self.trt, self.rt = trt, rt
        self.engine: tensorrt.ICudaEngine | None = engine
        self.keep: tuple[object, ...] = ()
        self.context: Any = None  # an IExecutionContext until close(); Any spares the hot path a None check
        self.runtime_cache: RuntimeCache | None = None
        self.keep_after_context: tuple[object, ...] = ()
        self._graph: cuda.CudaGraph | None = None
        """The CUDA graph of the current shapes (full TensorRT with use_cuda_graph)."""
        self.device_id = device_id
        self.inputs, self.outputs = plan.inputs, plan.outputs
        self.dynamic = not plan.profile.is_static
        self.stream = cuda.Stream(rt, device_id)
        self.context, self.use_cuda_graph, runtime_config = context_from_engine(
            trt, engine, dynamic=self.dynamic, use_cuda_graph=use_cuda_graph, runtime_cache=runtime_cache
        )
        self.runtime_cache = runtime_cache
        self.keep_after_context = (runtime_config, runtime_cache)  # released after the context
        if self.context is None:
            raise BackendError("TensorRT could not create an execution context (out of GPU memory?)")
        if self.use_cuda_graph and plan.plugin_nodes:
            logger.info("no CUDA graph for this engine: it has plugin layers (%s)", ", ".join(plan.plugin_nodes))
            self.use_cuda_graph = False
        self.profiles = [self._profile(engine, i) for i in range(engine.num_optimization_profiles)]
        self.host: dict[str, cuda.PinnedBuffer] = {}
        self.device: dict[str, cuda.DeviceBuffer] = {}
        self._output_shapes: dict[ShapeKey, dict[str, tuple[int, ...]]] = {}
        self._shape_key: ShapeKey | None = None
        self._enqueued_since_shapes_set = False
        self._uncapturable: set[ShapeKey] = set()
        self._checked: set[ShapeKey] = set()
        self._profile_index = 0
        check_engine_io(trt, engine, plan)
        largest = {spec.name: plan.shapes[spec.name][2] for spec in self.inputs}
        self.opt_shapes = {spec.name: plan.shapes[spec.name][1] for spec in self.inputs}
        for spec in self.inputs:
            if not self.context.set_input_shape(spec.name, largest[spec.name]):
                raise BackendError(f"TensorRT rejected input shape {largest[spec.name]} for {spec.name!r}")
        sizes = {**largest, **{spec.name: tuple(self.context.get_tensor_shape(spec.name)) for spec in self.outputs}}
        for spec in (*self.inputs, *self.outputs):
            shape = tuple(int(d) for d in sizes[spec.name])
            self.host[spec.name] = cuda.PinnedBuffer(rt, shape, spec.dtype, device_id)
            self.device[spec.name] = cuda.DeviceBuffer(rt, self.host[spec.name].nbytes, device_id)
            if not self.context.set_tensor_address(spec.name, self.device[spec.name].ptr):
                raise BackendError(f"TensorRT rejected the device address of {spec.name!r} (misaligned or not a tensor "
                                   "of this engine)")

    def warm_up(self) -> None:
        """One inference of zeros at the profile's opt shape, at filter creation.

        It makes TensorRT do its lazy first-run work (allocations, TensorRT-RTX's JIT) before the
        first frame, is the warm-up run CUDA-graph capture needs, keeps first calls of the bindings
        from racing between VapourSynth threads, and turns an engine that cannot run into an
        error while the script is evaluated rather than on its first frame.
        """
        self.infer({spec.name: np.zeros(self.opt_shapes[spec.name], spec.dtype) for spec in self.inputs})
        self._checked.clear()  # the caller's own feeds are checked on their first call

    def _profile(self, engine: tensorrt.ICudaEngine, index: int) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        image = next((s for s in self.inputs if s.is_image), self.inputs[0])
        dims = engine.get_tensor_profile_shape(image.name, index)
        low, opt, high = (tuple(d) for d in dims)
        return (low[3], low[2]), (opt[3], opt[2]), (high[3], high[2])

    def _set_shapes(self, key: ShapeKey) -> dict[str, tuple[int, ...]]:
        """Set input shapes for a new tile size (dynamic engines); outputs' shapes are remembered."""
        image = next(i for i, s in enumerate(self.inputs) if s.is_image)
        height, width = key[image][2], key[image][3]
        index = select_profile(self.profiles, width, height)
        if index != self._profile_index:
            self.context.set_optimization_profile_async(index, self.stream.ptr)
            self._profile_index = index
        for spec, shape in zip(self.inputs, key, strict=True):
            if not self.context.set_input_shape(spec.name, shape):
                raise BackendError(f"TensorRT rejected input shape {shape} for {spec.name!r}")
        if key not in self._output_shapes:
            self._output_shapes[key] = {
                spec.name: tuple(int(d) for d in self.context.get_tensor_shape(spec.name)) for spec in self.outputs
            }
        return self._output_shapes[key]

    def _enqueue(self, in_bytes: list[int], out_bytes: list[int]) -> None:
        for spec, nbytes in zip(self.inputs, in_bytes, strict=True):
            self.device[spec.name].copy_from_host(self.host[spec.name], nbytes, self.stream)
        if not self.context.execute_async_v3(self.stream.ptr):
            raise BackendError("TensorRT execute_async_v3 failed (see the log)")
        for spec, nbytes in zip(self.outputs, out_bytes, strict=True):
            self.device[spec.name].copy_to_host(self.host[spec.name], nbytes, self.stream)

    def infer(self, feeds: Tensors) -> Tensors:
        rt = self.rt
        cuda.call(rt, "cudaSetDevice", rt.cudaSetDevice(self.device_id))
        key = tuple(tuple(feeds[spec.name].shape) for spec in self.inputs)
        if key not in self._checked:  # the caller's first feed of this size: names, dtypes, ranks
            check_feeds(self.inputs, feeds)
            self._checked.add(key)
        if key != self._shape_key:  # a new tile size (or the first call): set shapes
            self._drop_graph()
            self._shape_key = None  # until every input's shape is accepted
            out_shapes = self._set_shapes(key)
            self._shape_key = key
            self._enqueued_since_shapes_set = False
        else:
            out_shapes = self._output_shapes[key]
        for spec in self.inputs:
            np.copyto(self.host[spec.name].view(feeds[spec.name].shape), feeds[spec.name], casting="no")
        in_bytes = [feeds[s.name].nbytes for s in self.inputs]
        out_bytes = [int(np.prod(out_shapes[s.name])) * s.dtype.itemsize for s in self.outputs]
        graph = self._graph
        if graph is None and self.use_cuda_graph and self._enqueued_since_shapes_set and key not in self._uncapturable:
            # TensorRT updates its state on the first enqueue after a shape or profile change and
            # that enqueue cannot be captured: capture only once one has run since the shapes were set
            graph = self._capture(key, in_bytes, out_bytes)
        if graph is not None:
            graph.launch()
        else:
            self._enqueue(in_bytes, out_bytes)
            self._enqueued_since_shapes_set = True
        self.stream.synchronize()
        return {spec.name: self.host[spec.name].view(out_shapes[spec.name]) for spec in self.outputs}

    def _capture(self, key: ShapeKey, in_bytes: list[int], out_bytes: list[int]) -> cuda.CudaGraph | None:
        """A graph of this call's copies and inference, kept while the shapes stay; None if capture fails.

        A graph replays what TensorRT enqueued for the context's state at capture; after the shapes
        change that state is another, so the graph is dropped and recaptured (one plain run later)
        rather than replayed on a context it no longer matches. Tiles of one size, the usual case,
        capture once. A failed capture (a TensorRT build whose enqueue is not capturable) is
        reported once and that shape runs without a graph from then on.
        """
        try:
            graph = cuda.CudaGraph(self.rt, self.stream, lambda: self._enqueue(in_bytes, out_bytes), self.device_id)
        except BackendError as err:
            self._uncapturable.add(key)
            logger.warning("CUDA graph capture failed for input shapes %s (%s): running them without a graph", key, err)
            return None
        self._graph = graph
        return graph

    def _drop_graph(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None

    def close(self) -> None:
        """Free everything now (unclosed, the CUDA resources free themselves when collected)."""
        self._free_tensorrt()
        for device in self.device.values():
            device.close()
        for host in self.host.values():
            host.close()
        self.stream.close()

    def _free_tensorrt(self) -> None:
        """Drop the graph, the context, then what it was made from, on this runner's device.

        TensorRT frees a context's (and the last one's engine's) device memory on whatever device
        is current: the runner's, set here, not that of the thread that happens to close or collect
        it (multi-GPU, as Triton does). The thread's own device is restored afterwards.
        """
        with cuda.on_device(self.rt, self.device_id):
            self._drop_graph()
            self.context = None  # before the memory it was pointed at, and before the runtime cache
            self.keep_after_context = ()
            if self.runtime_cache is not None:
                self.runtime_cache.release()
                self.runtime_cache = None
            self.engine = None
            self.keep = ()  # the runtime, after its engine

    def __del__(self) -> None:
        # VapourSynth never closes filters: a dropped script's runners are collected, maybe on
        # another thread whose current device is another GPU. Not at interpreter exit (the
        # process's end frees everything, and CUDA may be half torn down then).
        if sys.is_finalizing() or getattr(self, "engine", None) is None:
            return
        try:
            self._free_tensorrt()
        except Exception as err:
            logger.debug("freeing a TensorRT context failed: %s", err)
