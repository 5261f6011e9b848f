"""Retype a graph's inputs and outputs (float32 <-> float16), casting at the graph edge.

Compute precision is untouched: only the conversion moves into the graph, so fp16 frames go in and
out as fp16 tensors. ONNX Runtime and OpenVINO run the retyped graph (`Network.with_io_dtype`);
TensorRT lowers the whole graph itself (`precision.lower_precision` sets the I/O types), so it only
needs `float32_io` for networks whose own I/O is fp16.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

__all__ = ["float32_io", "retype_io"]

_ELEM_TYPES: dict[np.dtype[Any], int] = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.float16): TensorProto.FLOAT16,
}
_SUFFIX = "__vssr_cast"
"""Names the tensor beside an edge cast (`<name>__vssr_cast`, then `...1`, `...2` when retyped
again). Private: nothing reads it back; engine and OpenVINO cache keys hash the graph, so
changing it rebuilds every cached fp16-I/O model once."""


def retype_io(
    model: onnx.ModelProto,
    inputs: Mapping[str, np.dtype[Any] | type],
    outputs: Mapping[str, np.dtype[Any] | type],
) -> onnx.ModelProto:
    """A copy of `model` whose graph inputs and outputs named in `inputs`/`outputs` have those
    element types (float32 or float16), each with a Cast to or from the type the graph computes
    in. Others keep their type. Returns `model` itself when no type changes."""
    try:
        want_in = {name: _ELEM_TYPES[np.dtype(d)] for name, d in inputs.items()}
        want_out = {name: _ELEM_TYPES[np.dtype(d)] for name, d in outputs.items()}
    except KeyError as err:
        raise ValueError(f"graph I/O must be float32 or float16, not {err}") from None
    graph = model.graph
    if all(v.type.tensor_type.elem_type == want_in.get(v.name, v.type.tensor_type.elem_type) for v in graph.input) and all(
        v.type.tensor_type.elem_type == want_out.get(v.name, v.type.tensor_type.elem_type) for v in graph.output
    ):
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    taken = {o for n in graph.node for o in n.output} | {i.name for i in graph.input}

    def fresh(name: str) -> str:
        candidate, i = f"{name}{_SUFFIX}", 1
        while candidate in taken:  # a graph retyped before already has one
            candidate, i = f"{name}{_SUFFIX}{i}", i + 1
        taken.add(candidate)
        return candidate

    casts_in: list[onnx.NodeProto] = []
    casts_out: list[onnx.NodeProto] = []
    edges = [*((v, want_in, True) for v in graph.input), *((v, want_out, False) for v in graph.output)]
    for value, wanted, is_input in edges:
        tensor = value.type.tensor_type
        if value.name not in wanted or tensor.elem_type == wanted[value.name]:
            continue
        inner = fresh(value.name)
        for node in graph.node:
            # an output the graph reads itself stays in the graph's type inside
            node.input[:] = [inner if i == value.name else i for i in node.input]
            if not is_input:
                node.output[:] = [inner if o == value.name else o for o in node.output]
        if is_input:
            casts_in.append(helper.make_node("Cast", [value.name], [inner], to=tensor.elem_type))
        else:
            casts_out.append(helper.make_node("Cast", [inner], [value.name], to=wanted[value.name]))
        tensor.elem_type = wanted[value.name]
    nodes = [*casts_in, *graph.node, *casts_out]
    del graph.node[:]
    graph.node.extend(nodes)
    return out


def float32_io(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same computation with float32 graph inputs and outputs: every fp16 input or output gets
    an exact fp16 <-> fp32 Cast (`precision.lower_precision` takes float32 I/O and then sets the
    I/O types it is asked for)."""
    initializers = {i.name for i in model.graph.initializer}
    half = TensorProto.FLOAT16
    return retype_io(
        model,
        {v.name: np.float32 for v in model.graph.input if v.type.tensor_type.elem_type == half and v.name not in initializers},
        {v.name: np.float32 for v in model.graph.output if v.type.tensor_type.elem_type == half},
    )
