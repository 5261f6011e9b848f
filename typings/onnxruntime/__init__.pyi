"""The part of onnxruntime (1.25+) vssr uses: sessions and their options (signatures from onnxruntime 1.32)."""

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

__version__: str

class ExecutionMode:
    ORT_SEQUENTIAL: ClassVar[ExecutionMode]
    ORT_PARALLEL: ClassVar[ExecutionMode]

class SessionOptions:
    intra_op_num_threads: int
    inter_op_num_threads: int
    execution_mode: ExecutionMode
    log_severity_level: int
    def __init__(self) -> None: ...
    def add_session_config_entry(self, arg0: str, arg1: str, /) -> None: ...

def get_available_providers() -> list[str]: ...

class InferenceSession:
    def __init__(
        self,
        path_or_bytes: str | bytes,
        sess_options: SessionOptions | None = None,
        providers: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
        provider_options: Sequence[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None: ...
    def run(self, output_names: Sequence[str] | None, input_feed: dict[str, Any], run_options: Any = None) -> list[np.ndarray]: ...
