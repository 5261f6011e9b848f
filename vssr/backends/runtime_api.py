"""The runtime modules vssr receives as values, typed: `TensorRT`, `CudaRuntime`, `OpenVINO`, `OnnxRuntime`.

`tensorrt` or `tensorrt_rtx` is chosen by name at run time, and every runtime is imported lazily by
a loader that turns a failed import into a message saying what to install (and is replaced by a
fake in tests), so the modules travel as values; these Protocols are their types, spelled with the stubs in typings/ (a module satisfies a Protocol by its attributes). Only
what vssr reaches through the module value is listed; the classes' own methods are in the stubs.
mypy checks the stub modules against these Protocols at the bottom, so the two cannot drift.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime
    import openvino
    import tensorrt
    from cuda.bindings import runtime as cudart

__all__ = ["CudaRuntime", "OnnxRuntime", "OpenVINO", "TensorRT"]


class TensorRT(Protocol):
    """`tensorrt` (10.x/11.x) or `tensorrt_rtx`; names only some versions have are looked up with
    hasattr/getattr where they are used."""

    __name__: str
    __version__: str
    Builder: type[tensorrt.Builder]
    BuilderFlag: type[tensorrt.BuilderFlag]
    ComputeCapability: type[tensorrt.ComputeCapability]
    CudaGraphStrategy: type[tensorrt.CudaGraphStrategy]
    DynamicShapesKernelSpecializationStrategy: type[tensorrt.DynamicShapesKernelSpecializationStrategy]
    ILogger: type[tensorrt.ILogger]
    IProgressMonitor: type[tensorrt.IProgressMonitor]
    MemoryPoolType: type[tensorrt.MemoryPoolType]
    NetworkDefinitionCreationFlag: type[tensorrt.NetworkDefinitionCreationFlag]
    OnnxParser: type[tensorrt.OnnxParser]
    ProfilingVerbosity: type[tensorrt.ProfilingVerbosity]
    Runtime: type[tensorrt.Runtime]
    TensorIOMode: type[tensorrt.TensorIOMode]

    def get_plugin_registry(self) -> tensorrt.IPluginRegistry: ...
    def init_libnvinfer_plugins(self, logger: tensorrt.ILogger, namespace: str, /) -> bool: ...
    def nptype(self, trt_type: tensorrt.DataType, /) -> type[np.generic]: ...


class CudaRuntime(Protocol):
    """`cuda.bindings.runtime`: each call returns `(cudaError_t, *values)` (see cuda.call)."""

    cudaError_t: type[cudart.cudaError_t]
    cudaMemcpyKind: type[cudart.cudaMemcpyKind]
    cudaStreamCaptureMode: type[cudart.cudaStreamCaptureMode]
    cudaStreamNonBlocking: int
    cudaHostAllocDefault: int

    def cudaGetErrorName(self, error: cudart.cudaError_t, /) -> tuple[cudart.cudaError_t, bytes]: ...
    def cudaGetLastError(self) -> tuple[cudart.cudaError_t]: ...
    def cudaRuntimeGetVersion(self) -> tuple[cudart.cudaError_t, int]: ...
    def cudaDriverGetVersion(self) -> tuple[cudart.cudaError_t, int]: ...
    def cudaGetDeviceCount(self) -> tuple[cudart.cudaError_t, int]: ...
    def cudaGetDevice(self) -> tuple[cudart.cudaError_t, int]: ...
    def cudaSetDevice(self, device: int, /) -> tuple[cudart.cudaError_t]: ...
    def cudaGetDeviceProperties(self, device: int, /) -> tuple[cudart.cudaError_t, cudart.cudaDeviceProp]: ...
    def cudaStreamCreateWithFlags(self, flags: int, /) -> tuple[cudart.cudaError_t, cudart.cudaStream_t]: ...
    def cudaEventCreateWithFlags(self, flags: int, /) -> tuple[cudart.cudaError_t, cudart.cudaEvent_t]: ...
    def cudaEventRecord(self, event: cudart.cudaEvent_t | None, stream: cudart.cudaStream_t | None, /) -> tuple[cudart.cudaError_t]: ...
    def cudaEventSynchronize(self, event: cudart.cudaEvent_t | None, /) -> tuple[cudart.cudaError_t]: ...
    def cudaHostAlloc(self, size: int, flags: int, /) -> tuple[cudart.cudaError_t, int]: ...
    def cudaMalloc(self, size: int, /) -> tuple[cudart.cudaError_t, int]: ...
    def cudaMemcpyAsync(
        self, dst: int, src: int, count: int, kind: cudart.cudaMemcpyKind, stream: cudart.cudaStream_t | None, /
    ) -> tuple[cudart.cudaError_t]: ...
    def cudaStreamBeginCapture(
        self, stream: cudart.cudaStream_t | None, mode: cudart.cudaStreamCaptureMode, /
    ) -> tuple[cudart.cudaError_t]: ...
    def cudaStreamEndCapture(self, stream: cudart.cudaStream_t | None, /) -> tuple[cudart.cudaError_t, cudart.cudaGraph_t | None]: ...
    def cudaGraphInstantiate(self, graph: cudart.cudaGraph_t | None, flags: int, /) -> tuple[cudart.cudaError_t, cudart.cudaGraphExec_t]: ...
    def cudaGraphLaunch(
        self, graphExec: cudart.cudaGraphExec_t | None, stream: cudart.cudaStream_t | None, /
    ) -> tuple[cudart.cudaError_t]: ...
    def cudaGraphDestroy(self, graph: cudart.cudaGraph_t | None, /) -> tuple[cudart.cudaError_t]: ...


class OpenVINO(Protocol):
    """`openvino`."""

    __version__: str
    Core: type[openvino.Core]
    Tensor: type[openvino.Tensor]

    def save_model(self, model: openvino.Model, output_model: str, compress_to_fp16: bool = True) -> None: ...


class OnnxRuntime(Protocol):
    """`onnxruntime`."""

    ExecutionMode: type[onnxruntime.ExecutionMode]
    InferenceSession: type[onnxruntime.InferenceSession]
    SessionOptions: type[onnxruntime.SessionOptions]

    def get_available_providers(self) -> list[str]: ...


if TYPE_CHECKING:  # the stub modules are what these Protocols describe
    import tensorrt_rtx

    _checks: tuple[TensorRT, TensorRT, CudaRuntime, OpenVINO, OnnxRuntime] = (
        tensorrt, tensorrt_rtx, cudart, openvino, onnxruntime
    )
