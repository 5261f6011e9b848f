"""I/O retyping at the graph edge (vssr/onnxpasses/io_dtype.py), run by ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto

from tests import nets
from vssr.arch.ops import GraphBuilder
from vssr.onnxpasses.io_dtype import float32_io, retype_io


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]  # type: ignore[no-any-return]


def _types(model: onnx.ModelProto) -> list[int]:
    return [v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]]


def test_fp16_io_casts_at_the_edge_and_computes_as_before() -> None:
    model = nets.conv3x3()
    half = retype_io(model, {"input": np.float16}, {"output": np.float16})
    onnx.checker.check_model(half, full_check=True)
    assert _types(half) == [TensorProto.FLOAT16, TensorProto.FLOAT16]
    assert [n.op_type for n in half.graph.node] == ["Cast", *(n.op_type for n in model.graph.node), "Cast"]
    x = np.random.default_rng(0).random((1, 3, 8, 8), dtype=np.float32).astype(np.float16)
    want = _run(model, {"input": x.astype(np.float32)})
    np.testing.assert_array_equal(_run(half, {"input": x}), want.astype(np.float16))  # the fp32 result, rounded once


def test_nothing_to_change_returns_the_model_itself() -> None:
    model = nets.conv3x3()
    assert retype_io(model, {"input": np.float32}, {"output": np.float32}) is model
    assert float32_io(model) is model


def test_retyped_again_stays_valid() -> None:
    model = nets.conv3x3()
    once = retype_io(model, {"input": np.float16}, {"output": np.float16})
    twice = retype_io(once, {"input": np.float32}, {"output": np.float16})
    onnx.checker.check_model(twice, full_check=True)
    names = [o for n in twice.graph.node for o in n.output]
    assert len(names) == len(set(names))  # fresh names beside each new cast


def test_an_output_read_inside_the_graph_keeps_its_type_inside() -> None:
    g = GraphBuilder("reused")
    x = g.input("input", 1, 2, 2)
    first = g.op("Mul", [x, g.const(np.float32(2), "two")], "twice")
    plus = g.op("Add", [first, g.const(np.float32(1), "one")], "plus")
    g.output(first, first, 1)  # a graph output that the Add reads too
    g.output(plus, "second", 1)
    model = g.model(scale=1)
    retyped = retype_io(model, {}, {first: np.float16})
    onnx.checker.check_model(retyped, full_check=True)
    y = np.array([[[[0.5, 1.5], [3.0, -2.0]]]], np.float32)
    session = ort.InferenceSession(retyped.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input": y}), strict=True))
    assert outs[first].dtype == np.float16
    np.testing.assert_array_equal(outs[first], (2 * y).astype(np.float16))
    np.testing.assert_array_equal(outs["second"], 2 * y + 1)  # computed from the fp32 value, as before


def test_float32_io_casts_genuine_fp16_io_exactly() -> None:
    g = GraphBuilder("half")
    h = g.input("input", 1, 2, 2, dtype=TensorProto.FLOAT16)
    g.output(g.op("Mul", [h, g.const(np.float16(2), "two")], "twice"), "output", 1, dtype=TensorProto.FLOAT16)
    half = float32_io(g.model(scale=1))
    onnx.checker.check_model(half, full_check=True)
    assert _types(half) == [TensorProto.FLOAT, TensorProto.FLOAT]
    y = np.array([[[[0.5, 1.5], [3.0, -2.0]]]], np.float32)
    np.testing.assert_array_equal(_run(half, {"input": y}), 2 * y)
