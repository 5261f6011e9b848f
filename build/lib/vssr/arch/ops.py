"""Small onnx.helper wrappers shared by the graph builders: a name-scoped GraphBuilder.

Builders add nodes in forward order; weights become float32 initializers. Every model is written
at opset 19 / IR 9 (see vssr.network.OPSET).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..network import IR_VERSION, OPSET, set_metadata

__all__ = ["GraphBuilder"]


class GraphBuilder:
    """Accumulates nodes and initializers; methods return the name of the tensor they produce."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._count: dict[str, int] = {}
        self._consts: dict[tuple[bytes, str, tuple[int, ...]], str] = {}

    # --- names and constants -------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        n = self._count.get(hint, 0)
        self._count[hint] = n + 1
        return f"{hint}_{n}" if n else hint

    def const(
        self, value: np.ndarray | np.generic | Sequence[float] | Sequence[int] | float, name: str = "const"
    ) -> str:
        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        key = (array.tobytes(), array.dtype.str, array.shape)
        if key in self._consts:
            return self._consts[key]
        tensor_name = self.fresh(name)
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C", copy=True), tensor_name))  # keeps 0-d
        self._consts[key] = tensor_name
        return tensor_name

    def weight(self, array: np.ndarray, name: str) -> str:
        """A float32 initializer named after its state-dict key (never deduplicated)."""
        tensor_name = self.fresh(name)
        self.initializers.append(numpy_helper.from_array(np.array(array, dtype=np.float32, order="C", copy=True), tensor_name))
        return tensor_name

    def op(self, op_type: str, inputs: Sequence[str], hint: str | None = None, n_out: int = 1, **attrs: Any) -> str:
        outs = [self.fresh(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=self.fresh(f"n_{outs[0]}"), **attrs))
        return outs[0] if n_out == 1 else ",".join(outs)

    def op_multi(self, op_type: str, inputs: Sequence[str], n_out: int, hint: str | None = None, **attrs: Any) -> list[str]:
        outs = [self.fresh(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=self.fresh(f"n_{outs[0]}"), **attrs))
        return outs

    # --- graph edges ---------------------------------------------------------------------------
    def input(self, name: str, channels: int | None, height: int | str = "H", width: int | str = "W",
              dtype: int = TensorProto.FLOAT, shape: Sequence[int | str] | None = None) -> str:
        dims = list(shape) if shape is not None else [1, channels, height, width]
        self.inputs.append(helper.make_tensor_value_info(name, dtype, dims))
        return name

    def output(self, tensor: str, name: str, channels: int | None = None, dtype: int = TensorProto.FLOAT,
               shape: Sequence[int | str | None] | None = None) -> str:
        if tensor != name:
            self.nodes.append(helper.make_node("Identity", [tensor], [name], name=self.fresh(f"n_{name}")))
        dims = list(shape) if shape is not None else [1, channels, None, None]
        self.outputs.append(helper.make_tensor_value_info(name, dtype, dims))
        return name

    def model(self, **metadata: object) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="vssr", ir_version=IR_VERSION
        )
        model.ir_version = IR_VERSION
        set_metadata(model, name=self.name, **metadata)
        onnx.checker.check_model(model)
        return model

    # --- layers --------------------------------------------------------------------------------
    def conv(self, x: str, weight: np.ndarray, bias: np.ndarray | None, name: str, *, stride: int = 1,
             pad: int | None = None, dilation: int = 1, group: int = 1) -> str:
        k = weight.shape[2:]
        p = (k[0] // 2) * dilation if pad is None else pad
        ins = [x, self.weight(weight, f"{name}.weight")]
        if bias is not None:
            ins.append(self.weight(bias, f"{name}.bias"))
        return self.op("Conv", ins, name, kernel_shape=list(k), strides=[stride, stride], pads=[p, p, p, p],
                       dilations=[dilation, dilation], group=group)

    def conv_transpose(self, x: str, weight: np.ndarray, bias: np.ndarray | None, name: str, *, stride: int = 2,
                       pad: int = 1) -> str:
        ins = [x, self.weight(weight, f"{name}.weight")]
        if bias is not None:
            ins.append(self.weight(bias, f"{name}.bias"))
        return self.op("ConvTranspose", ins, name, kernel_shape=list(weight.shape[2:]), strides=[stride, stride],
                       pads=[pad, pad, pad, pad])

    def leaky_relu(self, x: str, alpha: float) -> str:
        return self.op("LeakyRelu", [x], "lrelu", alpha=float(alpha))

    def relu(self, x: str) -> str:
        return self.op("Relu", [x], "relu")

    def prelu(self, x: str, slope: np.ndarray, name: str) -> str:
        return self.op("PRelu", [x, self.weight(slope.reshape(-1, 1, 1), f"{name}.weight")], name)

    def clip(self, x: str, lo: float = 0.0, hi: float = 1.0) -> str:
        return self.op("Clip", [x, self.const(np.float32(lo), "lo"), self.const(np.float32(hi), "hi")], "clip")

    def sigmoid(self, x: str) -> str:
        return self.op("Sigmoid", [x], "sigmoid")

    def add(self, a: str, b: str) -> str:
        return self.op("Add", [a, b], "add")

    def sub(self, a: str, b: str) -> str:
        return self.op("Sub", [a, b], "sub")

    def mul(self, a: str, b: str) -> str:
        return self.op("Mul", [a, b], "mul")

    def scale(self, x: str, factor: float) -> str:
        return self.op("Mul", [x, self.const(np.float32(factor), "k")], "scaled")

    def concat(self, xs: Sequence[str], axis: int = 1) -> str:
        return self.op("Concat", list(xs), "cat", axis=axis)

    def slice_channels(self, x: str, start: int, end: int) -> str:
        return self.op("Slice", [x, self.const(np.array([start], np.int64), "s"),
                                 self.const(np.array([end], np.int64), "e"),
                                 self.const(np.array([1], np.int64), "ax")], "slice")

    def depth_to_space(self, x: str, block: int) -> str:
        """torch.nn.PixelShuffle == DepthToSpace mode CRD."""
        return self.op("DepthToSpace", [x], "d2s", blocksize=block, mode="CRD")

    def pixel_unshuffle(self, x: str, channels: int, block: int) -> str:
        """torch pixel_unshuffle (channel c*s*s + sh*s + sw); ONNX SpaceToDepth orders channels differently."""
        shape = self.op("Shape", [x], "shape")
        h = self.op("Gather", [shape, self.const(np.array(2, np.int64), "i2")], "h")
        w = self.op("Gather", [shape, self.const(np.array(3, np.int64), "i3")], "w")
        s = self.const(np.array(block, np.int64), "blk")
        hs = self.op("Unsqueeze", [self.op("Div", [h, s], "hs"), self.const(np.array([0], np.int64), "ax0")], "hs1")
        ws = self.op("Unsqueeze", [self.op("Div", [w, s], "ws"), self.const(np.array([0], np.int64), "ax0")], "ws1")
        one_c = self.const(np.array([1, channels], np.int64), "nc")
        blk1 = self.const(np.array([block], np.int64), "blk1")
        shape6 = self.concat([one_c, hs, blk1, ws, blk1], axis=0)
        y = self.op("Reshape", [x, shape6], "r6")
        y = self.op("Transpose", [y], "t6", perm=[0, 1, 3, 5, 2, 4])
        shape4 = self.concat([self.const(np.array([1, channels * block * block], np.int64), "nc2"), hs, ws], axis=0)
        return self.op("Reshape", [y, shape4], "unshuffled")

    def resize(self, x: str, factor: float, mode: str = "nearest") -> str:
        """nearest: PyTorch nearest (asymmetric/floor); linear: bilinear, align_corners=False."""
        scales = self.const(np.array([1, 1, factor, factor], np.float32), "scales")
        if mode == "nearest":
            return self.op("Resize", [x, "", scales], "up", mode="nearest",
                           coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        return self.op("Resize", [x, "", scales], "up", mode="linear",
                       coordinate_transformation_mode="half_pixel")
