"""A tiny int8 QDQ model made by onnxruntime.quantization.quantize_static (shared by the backend tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from tests import nets

SIZE = 16


def qdq_conv(tmp: Path, seed: int = 0) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """(float model, its int8 QDQ version): two 3x3 convs with LeakyReLU, static input 1x3x16x16."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    model = nets.conv3x3(layers=2, seed=seed)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value = SIZE
    dims[3].dim_value = SIZE
    float_path, qdq_path = tmp / "float.onnx", tmp / "qdq.onnx"
    onnx.save(model, float_path)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(seed)
            self.batches = iter([{"input": rng.random((1, 3, SIZE, SIZE), dtype=np.float32)} for _ in range(8)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    quantize_static(
        str(float_path), str(qdq_path), Reader(), quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
    )
    return model, onnx.load(qdq_path)


def is_qdq(model: onnx.ModelProto) -> bool:
    ops = {n.op_type for n in model.graph.node}
    return {"QuantizeLinear", "DequantizeLinear"} <= ops
