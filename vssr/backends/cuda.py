"""cuda-python helpers: device checks, streams, pinned host and device buffers, CUDA graphs.

Everything goes through `cuda.bindings.runtime` and every call's error code is checked by `call`.

GIL (checked, see docs/tensorrt.md): cuda-python wraps each runtime call in `with nogil`
(cudaStreamSynchronize was seen releasing it under gdb), and TensorRT's `execute_async_v3` is bound
with `py::call_guard<py::gil_scoped_release>` (read from the installed tensorrt_rtx 1.7 dispatcher
and TensorRT's pyCore.cpp). So a runner waiting for its stream lets the other VapourSynth threads
run Python and enqueue their own streams: no thread of our own is needed.

Waiting: on an event created with `cudaEventBlockingSync`, so the waiting thread sleeps until the
GPU is done. `cudaStreamSynchronize` under the default scheduling (cudaDeviceScheduleAuto) spins
while there are no more active contexts than cores, and each of `num_streams` VapourSynth threads
would keep a core busy, taken from the rest of the user's script.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from ..errors import BackendError, MissingBackendError, install_hint

if TYPE_CHECKING:
    from cuda.bindings.runtime import cudaError_t, cudaEvent_t, cudaGraphExec_t, cudaStream_t

    from .runtime_api import CudaRuntime

__all__ = [
    "BLOCKING_EVENT_FLAGS",
    "CudaGraph",
    "DeviceBuffer",
    "DeviceInfo",
    "Event",
    "PinnedBuffer",
    "Stream",
    "call",
    "device_count",
    "device_info",
    "driver_advice",
    "import_cudart",
    "on_device",
    "require_gpu",
]

logger = logging.getLogger(__name__)


def import_cudart() -> CudaRuntime:
    """`cuda.bindings.runtime`, or MissingBackendError saying what to install."""
    try:
        from cuda.bindings import runtime
    except ImportError as err:
        raise MissingBackendError(f"cuda-python is not installed: {install_hint('trt')}") from err
    return runtime


def _error_name(rt: CudaRuntime, err: cudaError_t) -> str:
    name_err, name = rt.cudaGetErrorName(err)
    if name_err == rt.cudaError_t.cudaSuccess:
        return name.decode() if isinstance(name, bytes) else str(name)
    return str(err)


@overload
def call[T](rt: CudaRuntime, what: str, result: tuple[cudaError_t, T]) -> T: ...
@overload
def call(rt: CudaRuntime, what: str, result: tuple[cudaError_t]) -> None: ...
def call(rt: CudaRuntime, what: str, result: Any) -> Any:
    """Check a cuda-python result `(err, *values)`; return None, the value, or the tuple of values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != rt.cudaError_t.cudaSuccess:
        raise BackendError(f"CUDA {what} failed: {_error_name(rt, err)}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def device_count(rt: CudaRuntime) -> tuple[int, str | None]:
    """(number of CUDA devices, None) or (0, the error name) when there is no usable driver."""
    err, count = rt.cudaGetDeviceCount()
    if err != rt.cudaError_t.cudaSuccess:
        return 0, _error_name(rt, err)
    return int(count), None


def _cuda_version(value: int) -> str:
    return f"{value // 1000}.{value % 1000 // 10}"


def driver_advice(rt: CudaRuntime) -> str:
    """Why cuda-python finds no usable driver, from the versions it reports without one.

    cuda-python 13 is built on the CUDA 13 runtime, which needs driver >= 580; pip picks it for
    `cuda-python>=12.6` on any machine, so an older driver looks like "no GPU" unless we say so.
    """
    runtime_version = call(rt, "cudaRuntimeGetVersion", rt.cudaRuntimeGetVersion())
    driver_version = call(rt, "cudaDriverGetVersion", rt.cudaDriverGetVersion())
    if not driver_version:
        return "no NVIDIA driver is loaded"
    if driver_version < runtime_version:
        major = runtime_version // 1000
        return (
            f"the NVIDIA driver supports CUDA {_cuda_version(driver_version)} but cuda-python is built for CUDA "
            f"{_cuda_version(runtime_version)}: update the driver, or pip install \"cuda-python<{major}\" "
            f"with a TensorRT for CUDA {major - 1} (the trt-cu{major - 1} extra: {install_hint(f'trt-cu{major - 1}')})"
        )
    return ""


def require_gpu(rt: CudaRuntime, device_id: int) -> None:
    """Raise BackendError saying plainly that there is no NVIDIA GPU (or not this one), and why."""
    count, error = device_count(rt)
    if count == 0:
        reason = f" (cudaGetDeviceCount: {error})" if error else ""
        advice = driver_advice(rt) if error == "cudaErrorInsufficientDriver" else ""
        raise BackendError(
            f"TensorRT needs an NVIDIA GPU with a working driver and none was found{reason}"
            f"{'; ' + advice if advice else ''}; use Backend.ORT() or Backend.OV() on this machine"
        )
    if not 0 <= device_id < count:
        raise BackendError(f"device_id={device_id} does not exist: this machine has {count} CUDA device(s)")


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What identifies a GPU for an engine: built engines are specific to both."""

    name: str
    compute_capability: tuple[int, int]


def device_info(rt: CudaRuntime, device_id: int) -> DeviceInfo:
    props = call(rt, "cudaGetDeviceProperties", rt.cudaGetDeviceProperties(device_id))
    name = props.name.split(b"\0", 1)[0].decode() if isinstance(props.name, bytes) else str(props.name)
    return DeviceInfo(name, (int(props.major), int(props.minor)))


_capture_lock = threading.RLock()  # re-entrant: a collection may run a finalizer while it is held
_captures_running = 0
_deferred: list[tuple[CudaRuntime, int | None, tuple[tuple[str, Any], ...]]] = []


def _release(rt: CudaRuntime, device_id: int | None, calls: tuple[tuple[str, Any], ...]) -> list[tuple[str, Any]]:
    """Free CUDA resources: `(function name, handle)` calls on the owner's device.

    Run by `close()` (which checks the results) or, for a resource nobody closed, by its
    `weakref.finalize` when it is garbage-collected: VapourSynth never closes filters, it drops a
    script's nodes (an editor's reload), and without this their device and pinned memory would
    stay allocated until the process ends. A collection can run it on any thread at any moment,
    including inside a CUDA-graph capture, where a free would invalidate the capture: frees are
    then deferred until no capture is running. Never raises: a finalizer must not.
    """
    with _capture_lock:
        if _captures_running:
            _deferred.append((rt, device_id, calls))
            return []
    return _free_now(rt, device_id, calls)


@contextlib.contextmanager
def on_device(rt: CudaRuntime, device_id: int | None) -> Iterator[None]:
    """Make `device_id` current for the block, then give the thread its own device back (a
    finalizer or another runner's close may run on a thread in the middle of work on its own)."""
    previous = None
    if device_id is not None:
        err, current = rt.cudaGetDevice()
        previous = current if err == rt.cudaError_t.cudaSuccess and current != device_id else None
        call(rt, "cudaSetDevice", rt.cudaSetDevice(device_id))
    try:
        yield
    finally:
        if previous is not None:
            rt.cudaSetDevice(previous)


def _free_now(rt: CudaRuntime, device_id: int | None, calls: tuple[tuple[str, Any], ...]) -> list[tuple[str, Any]]:
    results = []
    try:
        with on_device(rt, device_id):
            for name, handle in calls:
                results.append((name, getattr(rt, name)(handle)))
    except Exception as err:
        logger.debug("freeing CUDA resources failed: %s", err)
    return results


_gc_was_enabled = False


@contextlib.contextmanager
def _capture_window() -> Iterator[None]:
    """No garbage collection and no finalizer's frees while any capture runs; both resume when
    the last one ends.

    Python code runs between begin and end of a capture (TensorRT's enqueue is called from it). A
    collection there could free a dropped script's runner: TensorRT would free device memory
    inside the capture, which invalidates it. The collector is switched off for the window (and
    left as the user had it afterwards); frees from finalizers that run anyway (a reference
    count reaching zero on another thread) are deferred to the window's end.
    """
    global _captures_running, _gc_was_enabled
    with _capture_lock:
        if not _captures_running:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _captures_running += 1
    try:
        yield
    finally:
        with _capture_lock:
            _captures_running -= 1
            ready = list(_deferred) if not _captures_running else []
            if ready:
                _deferred.clear()
            if not _captures_running and _gc_was_enabled:
                gc.enable()
        for item in ready:
            _free_now(*item)


class _Owned:
    """A CUDA resource freed by `close()`, or when collected if nobody closed it.

    Finalizers do not run at interpreter exit (`atexit = False`): the process's end frees
    everything, and CUDA calls during Python's shutdown could meet a half-torn-down runtime.
    """

    rt: CudaRuntime

    def _own(self, rt: CudaRuntime, device_id: int | None, anchor: object, *calls: tuple[str, Any]) -> None:
        self._finalizer = weakref.finalize(anchor, _release, rt, device_id, calls)
        self._finalizer.atexit = False

    def close(self) -> None:
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is None or not finalizer.alive:
            return
        for name, result in finalizer() or []:
            call(self.rt, name, result)


BLOCKING_EVENT_FLAGS = ("cudaEventBlockingSync", "cudaEventDisableTiming")
"""A host thread waiting on such an event blocks (sleeps) instead of spinning; no timing is kept."""


class Stream(_Owned):
    """A non-blocking CUDA stream owned by one runner, with the blocking event it is waited on."""

    def __init__(self, rt: CudaRuntime, device_id: int | None = None) -> None:
        self.rt = rt
        self.handle: cudaStream_t | None = call(rt, "cudaStreamCreateWithFlags", rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking))
        self._own(rt, device_id, self, ("cudaStreamDestroy", self.handle))
        flags = 0
        for name in BLOCKING_EVENT_FLAGS:
            flags |= int(getattr(rt, name))
        self.done = Event(rt, flags, device_id)

    @property
    def ptr(self) -> int:
        if self.handle is None:
            raise BackendError("a CUDA stream was used after close()")
        return int(self.handle)

    def synchronize(self) -> None:
        """Wait, asleep, until the stream's work so far is done (the GIL is released meanwhile)."""
        self.done.record(self)
        self.done.synchronize()

    def close(self) -> None:
        self.done.close()
        super().close()
        self.handle = None


class Event(_Owned):
    """A CUDA event (`cudaEventCreateWithFlags`)."""

    def __init__(self, rt: CudaRuntime, flags: int, device_id: int | None = None) -> None:
        self.rt = rt
        self.handle: cudaEvent_t | None = call(rt, "cudaEventCreateWithFlags", rt.cudaEventCreateWithFlags(flags))
        self._own(rt, device_id, self, ("cudaEventDestroy", self.handle))

    def record(self, stream: Stream) -> None:
        call(self.rt, "cudaEventRecord", self.rt.cudaEventRecord(self.handle, stream.handle))

    def synchronize(self) -> None:
        call(self.rt, "cudaEventSynchronize", self.rt.cudaEventSynchronize(self.handle))

    def close(self) -> None:
        super().close()
        self.handle = None


class PinnedBuffer(_Owned):
    """Page-locked host memory seen as one numpy array (fast, truly asynchronous copies).

    Left unclosed, the memory is freed when the last array viewing it is gone (the finalizer
    hangs on the ctypes object every view keeps alive), never under a view someone still holds.
    """

    def __init__(self, rt: CudaRuntime, shape: tuple[int, ...], dtype: np.dtype, device_id: int | None = None) -> None:
        self.rt = rt
        self.nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        self.ptr: int = int(call(rt, "cudaHostAlloc", rt.cudaHostAlloc(self.nbytes, rt.cudaHostAllocDefault)))
        raw = (ctypes.c_byte * self.nbytes).from_address(self.ptr)
        self.array = np.frombuffer(raw, dtype=dtype).reshape(shape)
        self._own(rt, None, raw, ("cudaFreeHost", self.ptr))

    def view(self, shape: tuple[int, ...]) -> np.ndarray:
        """The first prod(shape) elements as an array of `shape` (dynamic engines, smaller tiles)."""
        return self.array.reshape(-1)[: int(np.prod(shape))].reshape(shape)

    def close(self) -> None:
        self.array = np.empty(0, self.array.dtype)
        super().close()
        self.ptr = 0


class DeviceBuffer(_Owned):
    """Device memory for one tensor at its largest shape."""

    def __init__(self, rt: CudaRuntime, nbytes: int, device_id: int | None = None) -> None:
        self.rt = rt
        self.nbytes = nbytes
        self.ptr: int = int(call(rt, "cudaMalloc", rt.cudaMalloc(max(nbytes, 1))))
        self._own(rt, device_id, self, ("cudaFree", self.ptr))

    def copy_from_host(self, host: PinnedBuffer, nbytes: int, stream: Stream) -> None:
        rt = self.rt
        kind = rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        call(rt, "cudaMemcpyAsync (host to device)", rt.cudaMemcpyAsync(self.ptr, host.ptr, nbytes, kind, stream.handle))

    def copy_to_host(self, host: PinnedBuffer, nbytes: int, stream: Stream) -> None:
        rt = self.rt
        kind = rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        call(rt, "cudaMemcpyAsync (device to host)", rt.cudaMemcpyAsync(host.ptr, self.ptr, nbytes, kind, stream.handle))

    def close(self) -> None:
        super().close()
        self.ptr = 0


class CudaGraph(_Owned):
    """The work one `enqueue()` puts on a stream, captured once and replayed with one launch.

    Capture after a plain run of the same shapes (TensorRT allocates and selects kernels lazily,
    and updates its state on the first enqueue after a shape change) and only with fixed buffer
    addresses and shapes.
    """

    def __init__(self, rt: CudaRuntime, stream: Stream, enqueue: Callable[[], None], device_id: int | None = None) -> None:
        self.rt = rt
        self.stream = stream
        self.exec: cudaGraphExec_t | None = None
        mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        with _capture_window():
            call(rt, "cudaStreamBeginCapture", rt.cudaStreamBeginCapture(stream.handle, mode))
            try:
                enqueue()
            except BaseException:
                self._end_failed_capture()
                raise
            err, *graph = rt.cudaStreamEndCapture(stream.handle)
            if err != rt.cudaError_t.cudaSuccess:
                self._end_failed_capture(ended=True)
                raise BackendError(f"CUDA cudaStreamEndCapture failed: {_error_name(rt, err)}")
            self.graph = graph[0]
        try:
            self.exec = call(rt, "cudaGraphInstantiate", rt.cudaGraphInstantiate(self.graph, 0))
        except BackendError:
            rt.cudaGraphDestroy(self.graph)
            rt.cudaGetLastError()  # as after a failed capture
            raise
        self._own(rt, device_id, self, ("cudaGraphExecDestroy", self.exec), ("cudaGraphDestroy", self.graph))

    def _end_failed_capture(self, *, ended: bool = False) -> None:
        """End the capture (the stream is usable again), drop what it holds, clear the error.

        As trtexec does (sampleDevice.h, endCaptureOnError: "Clean up any CUDA error"): the failed
        capture leaves its error as the thread's last error of the CUDA runtime that made the
        failing call, and code that checks it (cudaPeekAtLastError) would fail later, unrelated
        calls. This clears it in cuda-python's runtime, the one vssr's calls go through. TensorRT
        and its plugins link their own static runtimes, which nothing outside can reach: hence
        no capture of engines with plugin layers (TrtRunner).
        """
        rt = self.rt
        if not ended:
            err, *graph = rt.cudaStreamEndCapture(self.stream.handle)
            if err == rt.cudaError_t.cudaSuccess and graph and graph[0] is not None:
                rt.cudaGraphDestroy(graph[0])
        rt.cudaGetLastError()

    def launch(self) -> None:
        call(self.rt, "cudaGraphLaunch", self.rt.cudaGraphLaunch(self.exec, self.stream.handle))

    def close(self) -> None:
        super().close()
        self.exec = None
