"""ONNX Runtime backend: one InferenceSession per stream, threads set explicitly.

vs-mlrt's ORT_CPU sets no thread counts, so N sessions each start a pool the size of the machine
and oversubscribe it; here intra-op threads x streams never exceeds the cores unless asked.
"""

from __future__ import annotations

import importlib.metadata
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BackendError, MissingBackendError
from ..types import ShapeProfile, Tensors, TensorSpec
from ..validation import require_int
from .base import BackendConfig, Runner, cpu_count, runtime_field

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime

    from ..network import Network
    from .runtime_api import OnnxRuntime

__all__ = ["ORT", "OrtRunner", "import_onnxruntime"]

logger = logging.getLogger(__name__)

MAX_THREADS = 1024
"""Bound of threads (intra-op threads per stream): beyond any CPU vssr runs on, so larger is a typo."""

_PROVIDERS = {
    "CPU": "CPUExecutionProvider",
    "CUDA": "CUDAExecutionProvider",
    "TensorRT": "TensorrtExecutionProvider",
}


def import_onnxruntime() -> OnnxRuntime:
    try:
        import onnxruntime
    except ImportError as err:
        raise MissingBackendError('onnxruntime is not installed: pip install "onnxruntime>=1.25"') from err
    return onnxruntime


def _ort_version() -> tuple[int, ...]:
    """Installed onnxruntime version, read from package metadata (no import)."""
    try:
        version = importlib.metadata.version("onnxruntime")
    except importlib.metadata.PackageNotFoundError:
        return (0,)
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


@dataclass(frozen=True, kw_only=True)
class ORT(BackendConfig):
    """ONNX Runtime. CPU by default; CUDA / TensorRT execution providers with onnxruntime-gpu."""

    # threading
    num_streams: int = 2
    """Sessions, i.e. frames in flight. Two single-threaded sessions beat one two-threaded session
    on CPU (measured: 1.23x vs 0.99x of vs-mlrt's ORT plugin on 2 cores)."""
    threads: int | None = None
    """Intra-op threads per stream. None: cores // num_streams (at least 1)."""
    # devices
    providers: tuple[str, ...] = ("CPU",)
    """Execution providers in order of preference: "CPU", "CUDA", "TensorRT"."""
    device_id: int = 0
    # logging
    verbosity: int = runtime_field(3, "ORT log severity: 0 verbose .. 4 fatal")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.normalise("threads", require_int("threads", self.threads, 1, MAX_THREADS, optional=True))
        providers = self.providers
        if (
            not isinstance(providers, tuple | list)
            or not providers
            or any(not isinstance(p, str) or p not in _PROVIDERS for p in providers)
        ):
            raise ValueError(f"providers must be a non-empty tuple of {sorted(_PROVIDERS)}, not {providers!r}")
        self.normalise("providers", tuple(providers))
        self.normalise("device_id", require_int("device_id", self.device_id, 0))
        self.normalise("verbosity", require_int("verbosity", self.verbosity, 0, 4))

    def supports_op(self, op_type: str) -> bool:
        if op_type == "DeformConv":  # CPU kernel since onnxruntime 1.25 (1.19 listed it without one)
            return _ort_version() >= (1, 25)
        return True

    @property
    def intra_op_threads(self) -> int:
        return self.threads or max(1, cpu_count() // self.num_streams)

    def session_options(self) -> onnxruntime.SessionOptions:
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = self.verbosity
        # a session-local pool would spin between runs; with several streams that steals cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.num_streams == 1 else "0")
        return options

    def provider_list(self) -> list[str | tuple[str, dict[str, object]]]:
        ort = import_onnxruntime()
        available = set(ort.get_available_providers())
        chosen: list[str | tuple[str, dict[str, object]]] = []
        for name in self.providers:
            provider = _PROVIDERS[name]
            if provider not in available:
                raise MissingBackendError(
                    f"ONNX Runtime provider {name} is not available here (available: {sorted(available)}); "
                    "install onnxruntime-gpu for CUDA/TensorRT"
                )
            chosen.append(provider if name == "CPU" else (provider, {"device_id": self.device_id}))
        return chosen

    def load(self, network: Network, profile: ShapeProfile, io_dtype: np.dtype | None = None) -> list[Runner]:
        ort = import_onnxruntime()
        if io_dtype is not None:  # ONNX Runtime converts at the graph edge
            network = network.with_io_dtype(io_dtype, io_dtype)
        data = network.model.SerializeToString()
        runners: list[Runner] = []
        for _ in range(self.num_streams):
            try:
                session = ort.InferenceSession(data, self.session_options(), providers=self.provider_list())
            except MissingBackendError:
                raise
            except Exception as err:
                raise BackendError(f"onnxruntime cannot load network {network.name!r}: {err}") from err
            runners.append(OrtRunner(session, network.inputs, network.outputs))
        logger.info(
            "ORT: %d session(s) x %d intra-op thread(s) for %s", self.num_streams, self.intra_op_threads, network.name
        )
        return runners


class OrtRunner:
    """One InferenceSession. `run` releases the GIL, so runners on other threads overlap."""

    def __init__(
        self, session: onnxruntime.InferenceSession, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]
    ) -> None:
        self.session: onnxruntime.InferenceSession | None = session
        self.inputs = inputs
        self.outputs = outputs
        self._output_names = [o.name for o in outputs]

    def infer(self, feeds: Tensors) -> Tensors:
        if self.session is None:
            raise BackendError("an ONNX Runtime runner was used after close()")
        results = self.session.run(self._output_names, feeds)
        return dict(zip(self._output_names, results, strict=True))

    def close(self) -> None:
        self.session = None
