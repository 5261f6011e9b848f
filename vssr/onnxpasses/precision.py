"""Lower an ONNX graph to fp16 (or bf16) while keeping numerically fragile islands in fp32.

Strongly typed TensorRT (11.x, TensorRT-RTX) has no FP16 builder flag: the precision is whatever
the graph says. So vssr rewrites the graph itself, in pure onnx (no runtime import):

- every float32 tensor becomes fp16, except the outputs of *fp32 nodes*: the nodes the model
  declares (`Network.fp32_nodes`, from the `vssr.fp32_nodes` metadata, e.g. RIFE's flow/grid
  arithmetic) and the op types in `FRAGILE_OPS`;
- a Cast is inserted wherever a tensor meets a node of the other precision (one Cast per tensor and
  target type, shared by all consumers); weights are stored in the precision of their consumers;
- size arithmetic stays fp32: a Cast of integers to float and every node computing only on its
  results and constants (Shape -> Cast -> Mul -> Floor -> Cast(int64) -> Resize sizes): fp16 has
  11 bits of mantissa, so a 2049-pixel side would become 2048;
- inputs that an op needs in fp32 whatever T is (Resize scales) stay fp32;
- float types written in attributes (Constant value_float(s), ConstantOfShape's default value,
  EyeLike/Random* dtype, Cast to) follow their node's precision;
- the graph inputs and outputs get the I/O types asked for (fp16 in, fp32 out is fine): the casts
  sit at the graph edge;
- a BatchNormalization right after a Conv is folded into the Conv's weights first
  (`fold_batch_norm`), so it is no fp32 island between Casts (which would stop conv + BN fusion).

Not handled: a subgraph (If/Loop body) reading a float tensor of the enclosing graph that was
lowered gets no Cast inside (such nodes themselves stay fp32); vssr's models have no subgraphs.

Decisions on fragile ops: Range (pixel coordinates; TensorRT's Range takes no fp16 either), GridSample (the grid is a coordinate in pixels or [-1, 1]; fp16 has
~11 bits of mantissa, so at 1080p a normalised grid is off by up to half a pixel), reductions,
Softmax, Exp/Log/Pow (range) and normalisations stay fp32. Sigmoid does *not*: its output is
bounded in [0, 1] and fp16 keeps ~1e-3 relative accuracy there.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

from ..errors import ModelError

__all__ = [
    "FRAGILE_OPS",
    "fold_batch_norm",
    "fp32_node_names",
    "lower_precision",
    "name_nodes",
    "size_arithmetic_nodes",
]

FRAGILE_OPS = frozenset(
    {
        "GridSample",
        "Range",
        "ReduceMean",
        "ReduceSum",
        "ReduceSumSquare",
        "ReduceL1",
        "ReduceL2",
        "ReduceLogSum",
        "ReduceLogSumExp",
        "ReduceProd",
        "Softmax",
        "LogSoftmax",
        "Exp",
        "Log",
        "Pow",
        "InstanceNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "BatchNormalization",
    }
)
"""Op types computed in fp32 even when the rest of the graph is lowered."""

_ALWAYS_FP32_INPUTS: dict[str, frozenset[int]] = {
    "Resize": frozenset({1, 2}),  # roi, scales
    "Upsample": frozenset({1}),
}
_LOW = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16}
_SUBGRAPH_ATTRS = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)


def name_nodes(graph: onnx.GraphProto) -> None:
    """Give unnamed nodes unique names, in place: precision decisions are keyed by node name (and
    TensorRT's pins by the parser's `[ONNX Layer: <name>]`), so "" would merge every unnamed node.
    `node_of_<first output>` is what TensorRT's ONNX parser calls an unnamed node itself."""
    taken = {n.name for n in graph.node if n.name}
    for node in graph.node:
        if node.name:
            continue
        base = f"node_of_{node.output[0]}" if node.output else "node"
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        node.name = name
        taken.add(name)


def fp32_node_names(model: onnx.ModelProto, declared: Iterable[str] = ()) -> set[str]:
    """Names of the nodes kept in fp32: declared ones, fragile op types, nodes with subgraphs and
    size arithmetic (`size_arithmetic_nodes`)."""
    declared = set(declared)
    names = {n.name for n in model.graph.node}
    missing = sorted(declared - names)
    if missing:
        raise ModelError(f"fp32 nodes {missing} are not in the graph (node names must be unique and set)")
    if any(not n.name for n in model.graph.node):
        raise ModelError("fp32 islands are found by node name: name every node first (name_nodes)")
    keep = set(declared)
    for node in model.graph.node:
        if node.op_type in FRAGILE_OPS or any(a.type in _SUBGRAPH_ATTRS for a in node.attribute):
            keep.add(node.name)
    return keep | size_arithmetic_nodes(model, _tensor_types(model))


def size_arithmetic_nodes(model: onnx.ModelProto, types: dict[str, int]) -> set[str]:
    """Nodes computing in float on values derived from tensor *shapes*, never from their data.

    Each tensor is classed by where its values come from: `const` (initializers, Constants),
    `shape` (Shape/Size outputs, and whatever computes on them and constants: Gather, Cast to
    float, Mul, Floor, ConstantOfShape, Range, ...) or `data` (anything a graph input's values
    reach). The nodes with a `shape` result and a float input or output are size arithmetic: pixel
    counts and coordinates that fp16 would round (2049 -> 2048). Image data never enters them, so
    keeping them fp32 costs nothing; integers computed from data (an 8-bit rounding, a mask) are
    not sizes and stay in the low precision.
    """
    graph = model.graph
    origin = {i.name: "const" for i in graph.initializer}
    for value in graph.input:
        origin.setdefault(value.name, "data")
    names: set[str] = set()
    for node in graph.node:  # topological order, as ONNX requires
        if node.op_type in ("Shape", "Size"):
            result = "shape"
        else:
            # names from an enclosing graph (subgraphs) are unknown here: counted as data
            kinds = {origin.get(i, "data") for i in node.input if i}
            result = "data" if "data" in kinds else "shape" if "shape" in kinds else "const"
        for name in node.output:
            origin[name] = result
        touches_float = any(types.get(t) == TensorProto.FLOAT for t in (*node.input, *node.output) if t)
        if result == "shape" and node.op_type not in ("Shape", "Size") and touches_float:
            names.add(node.name)
    return names


def _tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor in the graph (inputs, initializers, node outputs)."""
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as err:
        raise ModelError(f"cannot infer tensor types to lower precision: {err}") from err
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.output, *graph.value_info]}
    types.update({i.name: i.data_type for i in graph.initializer})
    for node in graph.node:  # Constant outputs are not always in value_info
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
                    types[node.output[0]] = attr.t.data_type
                elif attr.name in ("value_float", "value_floats"):
                    types[node.output[0]] = TensorProto.FLOAT
    return {name: t for name, t in types.items() if t != TensorProto.UNDEFINED}


def _to_low(array: np.ndarray, low: int) -> onnx.TensorProto:
    if low == TensorProto.FLOAT:
        return numpy_helper.from_array(array.astype(np.float32))
    if low == TensorProto.FLOAT16:
        return numpy_helper.from_array(array.astype(np.float16))
    tensor = helper.make_tensor("", TensorProto.BFLOAT16, array.shape, array.astype(np.float32).ravel().tolist())
    return tensor


_DTYPE_ATTR_OPS = frozenset({"EyeLike", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike"})


def _retype_attributes(node: onnx.NodeProto, low: int) -> None:
    """Make the float32 types a low-precision node writes in its attributes `low`."""
    for index, attr in enumerate(list(node.attribute)):
        if (node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT) or (node.op_type in _DTYPE_ATTR_OPS and attr.name == "dtype" and attr.i == TensorProto.FLOAT):
            node.attribute[index].i = low
        elif attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
            node.attribute[index].t.CopyFrom(_to_low(numpy_helper.to_array(attr.t), low))
        elif node.op_type == "Constant" and attr.name in ("value_float", "value_floats"):
            values = np.array(attr.f if attr.name == "value_float" else list(attr.floats), np.float32)
            node.attribute[index].CopyFrom(helper.make_attribute("value", _to_low(values, low)))
    if node.op_type == "ConstantOfShape" and not any(a.name == "value" for a in node.attribute):
        # its default value is a float32 zero
        node.attribute.append(helper.make_attribute("value", _to_low(np.zeros(1, np.float32), low)))


def fold_batch_norm(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` where each inference BatchNormalization right after a Conv is folded into
    the Conv's weights and bias (computed in float64, stored as the weights were).

    BatchNormalization is a fragile op kept in fp32 when the graph is lowered; after a Conv that
    island would sit between two Casts and stop TensorRT from fusing conv + BN, the one place it
    costs. Folded, the Conv computes the same values (to fp32 rounding) in the low precision. A BN
    whose input is not such a Conv's only use, or whose parameters are not initializers, is left.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {i.name: i for i in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    outputs = {o.name for o in graph.output}
    producers = {o: n for n in graph.node for o in n.output}
    folded: set[int] = set()
    for bn in graph.node:
        conv = producers.get(bn.input[0]) if bn.op_type == "BatchNormalization" and bn.input else None
        if conv is None or conv.op_type != "Conv" or len(bn.output) != 1 or uses.get(bn.input[0]) != 1:
            continue
        if bn.input[0] in outputs or not all(n in inits for n in [*bn.input[1:5], *conv.input[1:3]]):
            continue
        if any(a.name == "training_mode" and a.i for a in bn.attribute):
            continue
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        gamma, beta, mean, var = (numpy_helper.to_array(inits[n]).astype(np.float64) for n in bn.input[1:5])
        weight_init = inits[conv.input[1]]
        weight = numpy_helper.to_array(weight_init)
        scale = gamma / np.sqrt(var + eps)
        bias = numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64) if len(conv.input) > 2 and conv.input[2] else 0.0
        new_weight = weight.astype(np.float64) * scale.reshape(-1, *([1] * (weight.ndim - 1)))
        new_bias = (bias - mean) * scale + beta
        weight_name, bias_name = f"{conv.name or conv.output[0]}__bn_weight", f"{conv.name or conv.output[0]}__bn_bias"
        graph.initializer.extend([numpy_helper.from_array(new_weight.astype(weight.dtype), weight_name),
                                  numpy_helper.from_array(new_bias.astype(weight.dtype), bias_name)])
        conv.input[1:] = [weight_name, bias_name]
        conv.output[0] = bn.output[0]
        folded.add(id(bn))
    if folded:
        kept = [n for n in graph.node if id(n) not in folded]
        del graph.node[:]
        graph.node.extend(kept)
        used = {name for n in graph.node for name in n.input}
        listed = {v.name for v in (*graph.output, *graph.input)}
        unused = [i for i in graph.initializer if i.name not in used and i.name not in listed]
        for init in unused:
            graph.initializer.remove(init)
        del graph.value_info[:]
    return out


def lower_precision(
    model: onnx.ModelProto,
    *,
    fp32_nodes: Iterable[str] = (),
    dtype: str = "float16",
    input_dtype: np.dtype | type | dict[str, np.dtype] = np.float32,
    output_dtype: np.dtype | type = np.float32,
) -> onnx.ModelProto:
    """Return a copy of `model` computing in `dtype` ("float16" or "bfloat16") outside fp32 islands.

    With dtype "float32" only the I/O types change (casts at the edge). The model's own I/O must
    be float32: pass it through `io_dtype.float32_io` first when it may not be.

    Args:
        model: an fp32 ONNX model (opset >= 13).
        fp32_nodes: node names to keep in fp32 besides `FRAGILE_OPS`.
        dtype: the low precision.
        input_dtype: element type of the float graph inputs (float32 or float16), or a dict
            input name -> type (inputs not named stay float32).
        output_dtype: element type of the float graph outputs (float32 or float16).

    Raises:
        ModelError: a declared fp32 node is missing or types cannot be inferred.
    """
    if dtype not in _LOW:
        raise ValueError(f"dtype must be 'float32', 'float16' or 'bfloat16', not {dtype!r}")
    low = _LOW[dtype]
    io_type = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float16): TensorProto.FLOAT16}
    try:
        out_type = io_type[np.dtype(output_dtype)]
        if isinstance(input_dtype, dict):
            in_types = {name: io_type[np.dtype(d)] for name, d in input_dtype.items()}
            default_in = TensorProto.FLOAT
        else:
            in_types, default_in = {}, io_type[np.dtype(input_dtype)]
    except KeyError as err:
        raise ValueError(f"graph I/O must be float32 or float16, not {err}") from None

    out = fold_batch_norm(model)
    graph = out.graph
    name_nodes(graph)
    floats = {name for name, t in _tensor_types(out).items() if t == TensorProto.FLOAT}
    keep = fp32_node_names(out, fp32_nodes)

    # --- where each float tensor lives now: its precision as produced --------------------------
    initializers = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name:
                consumers.setdefault(name, []).append((node, index))

    def wanted(node: onnx.NodeProto, index: int) -> int:
        if node.name in keep or index in _ALWAYS_FP32_INPUTS.get(node.op_type, ()):
            return TensorProto.FLOAT
        return low

    produced: dict[str, int] = {}
    graph_inputs = {i.name for i in graph.input} - set(initializers)
    for value in graph.input:
        if value.name in graph_inputs and value.name in floats:
            in_type = in_types.get(value.name, default_in)
            value.type.tensor_type.elem_type = in_type
            produced[value.name] = in_type
    for name, init in initializers.items():
        if name not in floats:
            continue
        wants = {wanted(n, i) for n, i in consumers.get(name, [])}
        if wants == {low}:  # stored in the consumers' precision: no Cast, half the size
            init.CopyFrom(_to_low(numpy_helper.to_array(init), low))
            init.name = name
            produced[name] = low
            for value in graph.input:  # IR < 4 lists initializers as inputs too
                if value.name == name:
                    value.type.tensor_type.elem_type = low
        else:
            produced[name] = TensorProto.FLOAT

    # --- retype low nodes, then insert casts where precisions meet -----------------------------
    nodes: list[onnx.NodeProto] = []
    casts: dict[tuple[str, int], str] = {}

    def cast(name: str, to: int) -> str:
        key = (name, to)
        if key not in casts:
            casts[key] = f"{name}__to_{TensorProto.DataType.Name(to).lower()}"
            nodes.append(helper.make_node("Cast", [name], [casts[key]], to=to, name=f"{casts[key]}_cast"))
        return casts[key]

    for node in graph.node:
        node_type = TensorProto.FLOAT if node.name in keep else low
        if node_type == low:
            _retype_attributes(node, low)
        for index, name in enumerate(node.input):
            if name in floats and name in produced:
                need = wanted(node, index)
                if produced[name] != need:
                    node.input[index] = cast(name, need)
        for name in node.output:
            if name in floats:
                produced[name] = node_type
        nodes.append(node)

    # --- graph outputs get the asked type, by a Cast at the edge -------------------------------
    for value in graph.output:
        if value.name not in floats:
            continue
        have = produced.get(value.name, TensorProto.FLOAT)
        value.type.tensor_type.elem_type = out_type
        if have != out_type:
            inner = f"{value.name}__inner"
            for node in nodes:
                node.output[:] = [inner if o == value.name else o for o in node.output]
                node.input[:] = [inner if i == value.name else i for i in node.input]
            nodes.append(helper.make_node("Cast", [inner], [value.name], to=out_type, name=f"{value.name}_edge_cast"))

    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    return out
