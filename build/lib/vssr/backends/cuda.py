"""cuda-python helpers: device checks, streams, pinned host and device buffers, CUDA graphs.

Everything goes through `cuda.bindings.runtime` and every call's error code is checked by `call`.

GIL (checked, see docs/tensorrt.md): cuda-python wraps each runtime call in `with nogil`
(cudaStreamSynchronize was seen releasing it under gdb), and TensorRT's `execute_async_v3` is bound
with `py::call_guard<py::gil_scoped_release>` (read from the installed tensorrt_rtx 1.7 dispatcher
and TensorRT's pyCore.cpp). So a runner waiting in `cudaStreamSynchronize` lets the other
VapourSynth threads run Python and enqueue their own streams: no thread of our own is needed.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BackendError, MissingBackendError, install_hint

__all__ = [
    "CudaGraph",
    "DeviceBuffer",
    "DeviceInfo",
    "PinnedBuffer",
    "Stream",
    "call",
    "device_count",
    "device_info",
    "driver_advice",
    "import_cudart",
    "require_gpu",
]

logger = logging.getLogger(__name__)


def import_cudart() -> Any:
    """`cuda.bindings.runtime`, or MissingBackendError saying what to install."""
    try:
        from cuda.bindings import runtime
    except ImportError as err:
        raise MissingBackendError(f"cuda-python is not installed: {install_hint('trt')}") from err
    return runtime


def _error_name(rt: Any, err: Any) -> str:
    name_err, name = rt.cudaGetErrorName(err)
    if name_err == rt.cudaError_t.cudaSuccess:
        return name.decode() if isinstance(name, bytes) else str(name)
    return str(err)


def call(rt: Any, what: str, result: Any) -> Any:
    """Check a cuda-python result `(err, *values)`; return None, the value, or the tuple of values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != rt.cudaError_t.cudaSuccess:
        raise BackendError(f"CUDA {what} failed: {_error_name(rt, err)}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def device_count(rt: Any) -> tuple[int, str | None]:
    """(number of CUDA devices, None) or (0, the error name) when there is no usable driver."""
    err, count = rt.cudaGetDeviceCount()
    if err != rt.cudaError_t.cudaSuccess:
        return 0, _error_name(rt, err)
    return int(count), None


def _cuda_version(value: int) -> str:
    return f"{value // 1000}.{value % 1000 // 10}"


def driver_advice(rt: Any) -> str:
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


def require_gpu(rt: Any, device_id: int) -> None:
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


def device_info(rt: Any, device_id: int) -> DeviceInfo:
    props = call(rt, "cudaGetDeviceProperties", rt.cudaGetDeviceProperties(device_id))
    name = props.name.split(b"\0", 1)[0].decode() if isinstance(props.name, bytes) else str(props.name)
    return DeviceInfo(name, (int(props.major), int(props.minor)))


_capture_lock = threading.RLock()  # re-entrant: a collection may run a finalizer while it is held
_captures_running = 0
_deferred: list[tuple[Any, int | None, tuple[tuple[str, Any], ...]]] = []


def _release(rt: Any, device_id: int | None, calls: tuple[tuple[str, Any], ...]) -> list[tuple[str, Any]]:
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


def _free_now(rt: Any, device_id: int | None, calls: tuple[tuple[str, Any], ...]) -> list[tuple[str, Any]]:
    results = []
    try:
        previous = None
        if device_id is not None:
            err, current = rt.cudaGetDevice()
            previous = current if err == rt.cudaError_t.cudaSuccess and current != device_id else None
            rt.cudaSetDevice(device_id)
        for name, handle in calls:
            results.append((name, getattr(rt, name)(handle)))
        if previous is not None:  # this thread may be in the middle of work on its own device
            rt.cudaSetDevice(previous)
    except Exception as err:  # noqa: BLE001 - from a finalizer, nothing can be done with it
        logger.debug("freeing CUDA resources failed: %s", err)
    return results


@contextlib.contextmanager
def _no_frees_while_capturing() -> Iterator[None]:
    """Hold back finalizers' frees during a capture; free what they deferred when the last ends."""
    global _captures_running
    with _capture_lock:
        _captures_running += 1
    try:
        yield
    finally:
        with _capture_lock:
            _captures_running -= 1
            ready = list(_deferred) if not _captures_running else []
            if ready:
                _deferred.clear()
        for item in ready:
            _free_now(*item)


class _Owned:
    """A CUDA resource freed by `close()`, or when collected if nobody closed it.

    Finalizers do not run at interpreter exit (`atexit = False`): the process's end frees
    everything, and CUDA calls during Python's shutdown could meet a half-torn-down runtime.
    """

    def _own(self, rt: Any, device_id: int | None, anchor: object, *calls: tuple[str, Any]) -> None:
        self._finalizer = weakref.finalize(anchor, _release, rt, device_id, calls)
        self._finalizer.atexit = False

    def close(self) -> None:
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is None or not finalizer.alive:
            return
        for name, result in finalizer() or []:
            call(self.rt, name, result)  # type: ignore[attr-defined]


class Stream(_Owned):
    """A non-blocking CUDA stream owned by one runner."""

    def __init__(self, rt: Any, device_id: int | None = None) -> None:
        self.rt = rt
        self.handle = call(rt, "cudaStreamCreateWithFlags", rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking))
        self._own(rt, device_id, self, ("cudaStreamDestroy", self.handle))

    @property
    def ptr(self) -> int:
        return int(self.handle)

    def synchronize(self) -> None:
        """Wait for the stream (cuda-python releases the GIL while waiting)."""
        call(self.rt, "cudaStreamSynchronize", self.rt.cudaStreamSynchronize(self.handle))

    def close(self) -> None:
        super().close()
        self.handle = None


class PinnedBuffer(_Owned):
    """Page-locked host memory seen as one numpy array (fast, truly asynchronous copies).

    Left unclosed, the memory is freed when the last array viewing it is gone (the finalizer
    hangs on the ctypes object every view keeps alive), never under a view someone still holds.
    """

    def __init__(self, rt: Any, shape: tuple[int, ...], dtype: np.dtype, device_id: int | None = None) -> None:
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

    def __init__(self, rt: Any, nbytes: int, device_id: int | None = None) -> None:
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

    def __init__(self, rt: Any, stream: Stream, enqueue: Any, device_id: int | None = None) -> None:
        self.rt = rt
        self.stream = stream
        self.exec = None
        mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        with _no_frees_while_capturing():
            call(rt, "cudaStreamBeginCapture", rt.cudaStreamBeginCapture(stream.handle, mode))
            try:
                enqueue()
            except BaseException:
                # end the capture so the stream is usable again; the enqueue's error is the one to report
                err, *graph = rt.cudaStreamEndCapture(stream.handle)
                if err == rt.cudaError_t.cudaSuccess and graph and graph[0] is not None:
                    rt.cudaGraphDestroy(graph[0])
                raise
            self.graph = call(rt, "cudaStreamEndCapture", rt.cudaStreamEndCapture(stream.handle))
        try:
            self.exec = call(rt, "cudaGraphInstantiate", rt.cudaGraphInstantiate(self.graph, 0))
        except BackendError:
            rt.cudaGraphDestroy(self.graph)
            raise
        self._own(rt, device_id, self, ("cudaGraphExecDestroy", self.exec), ("cudaGraphDestroy", self.graph))

    def launch(self) -> None:
        call(self.rt, "cudaGraphLaunch", self.rt.cudaGraphLaunch(self.exec, self.stream.handle))

    def close(self) -> None:
        super().close()
        self.exec = None
