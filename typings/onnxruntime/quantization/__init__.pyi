"""onnxruntime.quantization as vssr's int8 pass uses it (signature of quantize_static from onnxruntime 1.32)."""

from collections.abc import Sequence
from os import PathLike
from typing import Any, ClassVar

import numpy as np
import onnx

class CalibrationDataReader:
    def get_next(self) -> dict[str, np.ndarray] | None: ...

class CalibrationMethod:
    MinMax: ClassVar[CalibrationMethod]
    Entropy: ClassVar[CalibrationMethod]
    Percentile: ClassVar[CalibrationMethod]
    Distribution: ClassVar[CalibrationMethod]

class QuantFormat:
    QOperator: ClassVar[QuantFormat]
    QDQ: ClassVar[QuantFormat]

class QuantType:
    QInt8: ClassVar[QuantType]
    QUInt8: ClassVar[QuantType]

def quantize_static(
    model_input: str | PathLike[str] | onnx.ModelProto,
    model_output: str | PathLike[str],
    calibration_data_reader: CalibrationDataReader | None = None,
    quant_format: QuantFormat = ...,
    op_types_to_quantize: Sequence[str] | None = None,
    per_channel: bool = False,
    reduce_range: bool = False,
    activation_type: QuantType = ...,
    weight_type: QuantType = ...,
    nodes_to_quantize: Sequence[str] | None = None,
    nodes_to_exclude: Sequence[str] | None = None,
    use_external_data_format: bool = False,
    calibrate_method: CalibrationMethod = ...,
    calibration_providers: Sequence[str] | None = None,
    extra_options: dict[str, Any] | None = None,
    calibration_cache_path: str | PathLike[str] | None = None,
) -> None: ...
