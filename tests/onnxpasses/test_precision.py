"""fp16 lowering: islands stay fp32, I/O types are as asked, outputs match fp32 within fp16 tolerance.

The reference is the unconverted fp32 graph run by ONNX Runtime (the conversion is ours; the
runtime and the fp32 graph are not).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, shape_inference

from tests import nets
from vssr.arch.ops import GraphBuilder
from vssr.errors import ModelError
from vssr.onnxpasses.precision import FRAGILE_OPS, lower_precision


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)  # type: ignore[no-any-return]


def _warp_net(seed: int = 0) -> tuple[onnx.ModelProto, list[str]]:
    """conv -> flow; grid = base + flow * k (declared fp32) -> GridSample; ReduceMean; conv out.

    The shape of RIFE's warp: the grid arithmetic is what must not be fp16.
    """
    rng = np.random.default_rng(seed)
    g = GraphBuilder("warp")
    x = g.input("input", 3, 16, 16)
    feat = g.leaky_relu(g.conv(x, rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), None, "c0"), 0.2)
    flow = g.conv(feat, rng.normal(0, 0.05, (2, 8, 3, 3)).astype(np.float32), None, "flow")
    flow = g.op("Transpose", [flow], "flow_nhwc", perm=[0, 2, 3, 1])
    ys, xs = np.meshgrid(np.linspace(-1, 1, 16), np.linspace(-1, 1, 16), indexing="ij")
    base = g.const(np.stack([xs, ys], -1)[None].astype(np.float32), "base")
    scaled = g.op("Mul", [flow, g.const(np.float32(2 / 15), "k")], "scaled")
    grid = g.op("Add", [base, scaled], "grid")
    warped = g.op("GridSample", [feat, grid], "warped", mode="bilinear", padding_mode="border", align_corners=1)
    mean = g.op("ReduceMean", [warped, g.const(np.array([2, 3], np.int64), "axes")], "mean", keepdims=1)
    y = g.op("Sub", [warped, mean], "centred")
    y = g.conv(y, rng.normal(0, 0.3, (3, 8, 3, 3)).astype(np.float32), np.zeros(3, np.float32), "c1")
    y = g.op("Sigmoid", [y], "sig")
    g.output(y, "output", 3)
    model = g.model(scale=1)
    declared = [n.name for n in model.graph.node if n.output[0] in (scaled, grid)]
    return model, declared


def _types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = shape_inference.infer_shapes(model, strict_mode=True)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.output, *graph.value_info]}
    types.update({i.name: i.data_type for i in graph.initializer})
    return types


@pytest.mark.parametrize("io", [(np.float32, np.float32), (np.float16, np.float32), (np.float16, np.float16)])
def test_fp16_matches_fp32_and_keeps_islands(io: tuple[type, type]) -> None:
    model, declared = _warp_net()
    low = lower_precision(model, fp32_nodes=declared, input_dtype=io[0], output_dtype=io[1])
    onnx.checker.check_model(low, full_check=True)
    types = _types(low)

    # I/O types as asked; casts at the edge
    assert low.graph.input[0].type.tensor_type.elem_type == onnx.helper.np_dtype_to_tensor_dtype(np.dtype(io[0]))
    assert low.graph.output[0].type.tensor_type.elem_type == onnx.helper.np_dtype_to_tensor_dtype(np.dtype(io[1]))
    # the declared nodes and the fragile ops compute in fp32: all their float inputs and outputs
    by_name = {n.name: n for n in low.graph.node}
    islands = [by_name[n] for n in declared] + [n for n in low.graph.node if n.op_type in FRAGILE_OPS]
    assert {n.op_type for n in islands} >= {"Mul", "Add", "GridSample", "ReduceMean"}
    for node in islands:
        for name in [*node.input, *node.output]:
            if name and types.get(name) in (TensorProto.FLOAT, TensorProto.FLOAT16):
                assert types[name] == TensorProto.FLOAT, f"{node.op_type} {node.name}: {name} is not fp32"
    # ...and the rest really is fp16: convs and their weights
    convs = [n for n in low.graph.node if n.op_type == "Conv"]
    assert convs and all(types[n.input[1]] == TensorProto.FLOAT16 for n in convs)
    assert all(types[n.output[0]] == TensorProto.FLOAT16 for n in convs)

    x = np.random.default_rng(3).random((1, 3, 16, 16), dtype=np.float32)
    (want,) = _run(model, {"input": x})
    (got,) = _run(low, {"input": x.astype(io[0])})
    assert got.dtype == np.dtype(io[1])
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=1e-2, atol=2e-3)


def test_islands_matter() -> None:
    """(x * 1000 + 0.3) - x * 1000 is 0.3 in fp32 and far off in fp16: declared, it stays exact.

    Run by onnx.reference (numpy, true fp16 arithmetic): ORT's CPU provider upcasts fp16 chains
    to fp32 on its own (InsertCastTransformer), which would hide the difference.
    """
    from onnx.reference import ReferenceEvaluator

    g = GraphBuilder("cancel")
    x = g.input("input", 1, 4, 4)
    big = g.op("Mul", [x, g.const(np.float32(1000.0), "k")], "big")
    shifted = g.op("Add", [big, g.const(np.float32(0.3), "c")], "shifted")
    g.output(g.op("Sub", [shifted, big], "diff"), "output", 1)
    model = g.model(scale=1)
    declared = [n.name for n in model.graph.node if n.op_type in ("Mul", "Add", "Sub")]
    x = np.random.default_rng(4).random((1, 1, 4, 4), dtype=np.float32) + 1
    (exact,) = ReferenceEvaluator(lower_precision(model, fp32_nodes=declared)).run(None, {"input": x})
    (lossy,) = ReferenceEvaluator(lower_precision(model)).run(None, {"input": x})
    np.testing.assert_allclose(exact, 0.3, atol=1e-3)
    assert np.abs(lossy - 0.3).max() > 0.05


def test_bf16_graph_is_well_formed() -> None:
    """bf16 Conv is outside the opset-19 type constraints (ONNX shape inference refuses it) but
    TensorRT parses it (tests/backends/test_trt_build.py builds one); check structure and types."""
    model = nets.conv3x3(layers=3)
    low = lower_precision(model, dtype="bfloat16")
    onnx.checker.check_model(low)
    inits = {i.name: i.data_type for i in low.graph.initializer}
    assert all(inits[n.input[1]] == TensorProto.BFLOAT16 for n in low.graph.node if n.op_type == "Conv")
    casts = [n for n in low.graph.node if n.op_type == "Cast"]
    assert [c.attribute[0].i for c in casts] == [TensorProto.BFLOAT16, TensorProto.FLOAT]  # in, out edge
    assert low.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT


def test_declared_node_must_exist() -> None:
    with pytest.raises(ModelError, match="not in the graph"):
        lower_precision(nets.conv3x3(), fp32_nodes=["nope"])
    with pytest.raises(ValueError, match="float16"):
        lower_precision(nets.conv3x3(), dtype="float8")


def size_arithmetic_net() -> onnx.ModelProto:
    """y = 2 * Resize(x, sizes) with the width computed as floor(float(W) * 1.0): the usual exported
    size arithmetic, with a dynamic width."""
    h = onnx.helper
    const = lambda name, array: h.make_node("Constant", [], [name], name=name, value=onnx.numpy_helper.from_array(array))
    nodes = [
        h.make_node("Shape", ["x"], ["shape"], name="shape"),
        const("i3", np.array(3, np.int64)),
        h.make_node("Gather", ["shape", "i3"], ["w"], name="w", axis=0),
        h.make_node("Cast", ["w"], ["wf"], name="wf", to=TensorProto.FLOAT),
        const("one", np.array(1.0, np.float32)),
        h.make_node("Mul", ["wf", "one"], ["ws"], name="ws"),
        h.make_node("Floor", ["ws"], ["wfl"], name="wfl"),
        h.make_node("Cast", ["wfl"], ["wi"], name="wi", to=TensorProto.INT64),
        const("ax0", np.array([0], np.int64)),
        h.make_node("Unsqueeze", ["wi", "ax0"], ["wi1"], name="wi1"),
        const("lead", np.array([1, 1, 2], np.int64)),
        h.make_node("Concat", ["lead", "wi1"], ["sizes"], name="sizes", axis=0),
        h.make_node("Resize", ["x", "", "", "sizes"], ["r"], name="resize", mode="nearest"),
        const("two", np.array(2.0, np.float32)),
        h.make_node("Mul", ["r", "two"], ["y"], name="y"),
    ]
    graph = h.make_graph(
        nodes, "sizes",
        [h.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, "W"])],
        [h.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 2, "W2"])],
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 19)], ir_version=9)


def test_size_arithmetic_stays_fp32() -> None:
    """fp16 holds integers exactly only up to 2048: a 2049-pixel width computed in fp16 becomes
    2048. The size chain (Cast to float, Mul, Floor, Cast back) stays fp32; the image path is lowered."""
    from onnx.reference import ReferenceEvaluator

    from vssr.onnxpasses.precision import fp32_node_names

    model = size_arithmetic_net()
    assert fp32_node_names(model) == {"wf", "ws", "wfl", "wi"}
    low = lower_precision(model, input_dtype=np.float16, output_dtype=np.float16)
    onnx.checker.check_model(low, full_check=True)
    x = np.random.default_rng(0).random((1, 1, 2, 2049)).astype(np.float16)
    (y,) = ReferenceEvaluator(low).run(None, {"x": x})
    assert y.shape == (1, 1, 2, 2049) and y.dtype == np.float16
    np.testing.assert_array_equal(y, x * np.float16(2))
    types = _types(low)
    assert types["r"] == TensorProto.FLOAT16 and types["wfl"] == TensorProto.FLOAT


def test_float_types_in_attributes_follow_the_node() -> None:
    """Constant value_float(s), ConstantOfShape's default float zero and EyeLike/RandomUniformLike
    dtypes are float32 written in attributes: lowered, the graph must type-check and run."""
    h = onnx.helper
    ints = lambda name, values: h.make_node("Constant", [], [name], name=name, value=onnx.numpy_helper.from_array(np.array(values, np.int64)))
    nodes = [
        h.make_node("Constant", [], ["half"], name="half", value_float=0.5),
        h.make_node("Constant", [], ["bias"], name="bias", value_floats=[1.0, 2.0, 3.0]),
        ints("bias_shape", [1, 3, 1, 1]),
        h.make_node("Reshape", ["bias", "bias_shape"], ["bias4"], name="bias4"),
        ints("full", [1, 3, 4, 4]),
        h.make_node("ConstantOfShape", ["full"], ["zeros"], name="zeros"),
        ints("square", [4, 4]),
        h.make_node("ConstantOfShape", ["square"], ["ones"], name="ones", value=onnx.numpy_helper.from_array(np.ones(1, np.float32))),
        h.make_node("EyeLike", ["ones"], ["eye"], name="eye", dtype=TensorProto.FLOAT),
        h.make_node("RandomUniformLike", ["x"], ["nothing"], name="nothing", dtype=TensorProto.FLOAT, low=0.0, high=0.0),
        h.make_node("Mul", ["x", "half"], ["a"], name="a"),
        h.make_node("Add", ["a", "bias4"], ["b"], name="b"),
        h.make_node("Add", ["b", "zeros"], ["c"], name="c"),
        h.make_node("Add", ["c", "eye"], ["d"], name="d"),
        h.make_node("Add", ["d", "nothing"], ["y"], name="y"),
    ]
    graph = h.make_graph(nodes, "attrs", [h.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                         [h.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 19)], ir_version=9)
    low = lower_precision(model)
    onnx.checker.check_model(low, full_check=True)
    types = _types(low)
    assert all(types[n] == TensorProto.FLOAT16 for n in ("half", "bias", "zeros", "eye", "nothing", "d"))
    x = np.random.default_rng(1).random((1, 3, 4, 4), dtype=np.float32)
    np.testing.assert_allclose(_run(low, {"x": x})[0], _run(model, {"x": x})[0], rtol=1e-2, atol=1e-2)


def test_integers_from_data_are_not_sizes() -> None:
    """Only values derived from shapes are size arithmetic: an 8-bit rounding of the image and a
    mask made from it are data, and the convolutions after them stay fp16."""
    from vssr.onnxpasses.precision import fp32_node_names

    h = onnx.helper
    rng = np.random.default_rng(0)
    w = onnx.numpy_helper.from_array(rng.normal(0, 0.3, (3, 3, 3, 3)).astype(np.float32), "w")
    k255 = onnx.numpy_helper.from_array(np.array(255.0, np.float32), "k255")
    half = onnx.numpy_helper.from_array(np.array(0.5, np.float32), "half")
    nodes = [
        h.make_node("Mul", ["x", "k255"], ["x255"], name="x255"),
        h.make_node("Cast", ["x255"], ["q"], name="q", to=TensorProto.UINT8),
        h.make_node("Cast", ["q"], ["qf"], name="qf", to=TensorProto.FLOAT),
        h.make_node("Div", ["qf", "k255"], ["deq"], name="deq"),
        h.make_node("Conv", ["deq", "w"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        h.make_node("Greater", ["x", "half"], ["gt"], name="gt"),
        h.make_node("Cast", ["gt"], ["mask"], name="mask", to=TensorProto.FLOAT),
        h.make_node("Mul", ["c1", "mask"], ["y"], name="y"),
    ]
    graph = h.make_graph(nodes, "data_ints", [h.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                         [h.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])], [w, k255, half])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 19)], ir_version=9)
    assert fp32_node_names(model) == set()
    types = _types(lower_precision(model))
    assert types["c1"] == types["deq"] == types["mask"] == TensorProto.FLOAT16


def test_constants_shaped_like_the_input_are_size_arithmetic_too() -> None:
    """ConstantOfShape(shape) * float(W): both factors come from shapes; in fp16 2049 would be 2048."""
    from onnx.reference import ReferenceEvaluator

    h = onnx.helper
    one = onnx.numpy_helper.from_array(np.ones(1, np.float32))
    nodes = [
        h.make_node("Shape", ["x"], ["shape"], name="shape"),
        h.make_node("Constant", [], ["i3"], name="i3", value=onnx.numpy_helper.from_array(np.array([3], np.int64))),
        h.make_node("Gather", ["shape", "i3"], ["w"], name="w", axis=0),
        h.make_node("ConstantOfShape", ["i3"], ["ones"], name="ones", value=one),  # shape [3]: three ones
        h.make_node("Cast", ["w"], ["wf"], name="wf", to=TensorProto.FLOAT),
        h.make_node("Mul", ["ones", "wf"], ["widths"], name="widths"),
        h.make_node("ReduceMax", ["widths"], ["wmax"], name="wmax", keepdims=1),
        h.make_node("Cast", ["wmax"], ["y"], name="y", to=TensorProto.INT64),
    ]
    graph = h.make_graph(nodes, "cos", [h.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 1, "W"])],
                         [h.make_tensor_value_info("y", TensorProto.INT64, [1])])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 19)], ir_version=9)
    low = lower_precision(model)
    (y,) = ReferenceEvaluator(low).run(None, {"x": np.zeros((1, 1, 1, 2049), np.float32)})
    assert y.tolist() == [2049]


def test_unnamed_nodes_are_named_and_kept_apart() -> None:
    """Precision is decided per node name: one unnamed fragile node must not keep every other
    unnamed node (an image Conv) in fp32. They are named as TensorRT's parser would name them."""
    model = nets.conv3x3(layers=2)
    for node in model.graph.node:
        node.name = ""
    mean = onnx.helper.make_node("ReduceMean", [model.graph.output[0].name], ["m"], keepdims=1)  # fragile, unnamed
    model.graph.node.append(mean)
    model.graph.output.append(onnx.helper.make_tensor_value_info("m", TensorProto.FLOAT, None))
    low = lower_precision(model)
    assert all(n.name for n in low.graph.node) and len({n.name for n in low.graph.node}) == len(low.graph.node)
    assert "node_of_m" in {n.name for n in low.graph.node}
    inits = {i.name: i.data_type for i in low.graph.initializer}
    convs = [n for n in low.graph.node if n.op_type == "Conv"]
    assert convs and all(inits[n.input[1]] == TensorProto.FLOAT16 for n in convs)
    with pytest.raises(ModelError, match="name every node"):
        from vssr.onnxpasses.precision import fp32_node_names

        fp32_node_names(model)
