"""Network: an ONNX model plus what the generic inference path needs to know about it.

Graph builders in `vssr.arch` record their facts (scale, size multiple, tiling, fp32 islands) in the
model's `metadata_props` under `vssr.*`; for any other ONNX file they are read from the graph.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, shape_inference

from .errors import ModelError
from .files import sha256_bytes
from .types import SizeReq, TensorSpec

__all__ = ["IR_VERSION", "OPSET", "Network", "get_metadata", "set_metadata"]

OPSET = 19
"""ONNX opset of every graph vssr writes: newer defaults break ORT or TensorRT (GridSample-20)."""
IR_VERSION = 9

_DTYPES: dict[int, np.dtype[Any]] = {
    onnx.TensorProto.FLOAT: np.dtype(np.float32),
    onnx.TensorProto.FLOAT16: np.dtype(np.float16),
}
_PROBE = 64  # spatial size used to read the scale of a graph with dynamic shapes


def set_metadata(model: onnx.ModelProto, **values: object) -> None:
    """Record vssr facts in the model (`vssr.<key>` = str(value)), replacing older values."""
    props = {p.key: p.value for p in model.metadata_props}
    props.update({f"vssr.{k}": str(v) for k, v in values.items()})
    del model.metadata_props[:]
    for key, value in sorted(props.items()):
        model.metadata_props.add(key=key, value=value)


def get_metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key[5:]: p.value for p in model.metadata_props if p.key.startswith("vssr.")}


def _spec(value: onnx.ValueInfoProto) -> TensorSpec:
    tensor = value.type.tensor_type
    if tensor.elem_type not in _DTYPES:
        raise ModelError(
            f"tensor {value.name!r} has element type {onnx.TensorProto.DataType.Name(tensor.elem_type)}; "
            "vssr feeds float32 or float16 tensors"
        )
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
    return TensorSpec(value.name, _DTYPES[tensor.elem_type], shape)


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    initializers = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


@dataclass(frozen=True, slots=True)
class Network:
    """An ONNX model and its I/O specs, scale and size rules, read once when a filter is created."""

    model: onnx.ModelProto
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    scale: Fraction
    """Output size / input size of the first output, read from the graph (1.5 for QuickSRNet x1.5)."""
    output_scales: tuple[Fraction, ...] = ()
    """Output size / input size of every output (EDVR's feature pyramid has 1, 1/2, 1/4)."""
    size: SizeReq = SizeReq()  # noqa: RUF009 - SizeReq is a frozen dataclass: one shared default is safe
    tiling: bool = True
    """False for networks that must see whole frames (RIFE)."""
    name: str = "network"
    """Readable name used in cache file names."""
    fp32_nodes: tuple[str, ...] = ()
    """Nodes that must stay fp32 when a backend lowers precision (RIFE's grid arithmetic)."""
    digest: str = ""
    """sha256 of the serialized model; every cache keys on it."""

    @classmethod
    def load(
        cls, source: str | os.PathLike[str] | onnx.ModelProto, *, name: str | None = None
    ) -> Network:
        """Read an ONNX file or model; raises ModelError when it is unusable."""
        if isinstance(source, onnx.ModelProto):
            model = source
            default_name = model.graph.name or "network"
        else:
            path = Path(source)
            if not path.is_file():
                raise ModelError(f"model file {os.fspath(path)!r} does not exist")
            try:
                model = onnx.load_model(os.fspath(path))
            except Exception as err:  # onnx raises DecodeError, ValueError, ...
                raise ModelError(f"cannot read ONNX model {os.fspath(path)!r}: {err}") from err
            default_name = path.stem
        if not model.graph.output or not _graph_inputs(model):
            raise ModelError("the ONNX graph has no inputs or no outputs")
        meta = get_metadata(model)
        inputs = tuple(_spec(i) for i in _graph_inputs(model))
        outputs = tuple(_spec(o) for o in model.graph.output)
        data = model.SerializeToString()
        size = SizeReq(int(meta.get("multiple", 1)), int(meta.get("minimum", 0)))
        if "scales" in meta:
            scales = tuple(Fraction(v) for v in meta["scales"].split(","))
        elif "scale" in meta:
            scales = (Fraction(meta["scale"]),) * len(outputs)
        else:
            scales = _read_scales(model, inputs, outputs, size)
        return cls(
            model=model,
            inputs=inputs,
            outputs=outputs,
            scale=scales[0],
            output_scales=scales,
            size=size,
            tiling=meta.get("tiling", "True") == "True",
            name=name or meta.get("name", default_name),
            fp32_nodes=tuple(n for n in meta.get("fp32_nodes", "").split(",") if n),
            digest=sha256_bytes(data),
        )

    @property
    def image_inputs(self) -> tuple[TensorSpec, ...]:
        return tuple(s for s in self.inputs if s.is_image)

    def with_io_dtype(self, input_dtype: np.dtype, output_dtype: np.dtype) -> Network:
        """The same network with its image inputs/outputs retyped, casting at the graph edge.

        Compute precision is untouched: this only moves the conversion into the runtime, so fp16
        frames go in and out as fp16 tensors.
        """
        input_dtype, output_dtype = np.dtype(input_dtype), np.dtype(output_dtype)
        if all(s.dtype == input_dtype for s in self.image_inputs) and all(
            s.dtype == output_dtype for s in self.outputs
        ):
            return self
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        graph = model.graph
        to_elem = {v: k for k, v in _DTYPES.items()}
        taken = {o for n in graph.node for o in n.output} | {i.name for i in graph.input}

        def fresh(name: str) -> str:
            candidate, i = f"{name}__vssr_cast", 1
            while candidate in taken:  # a network retyped before already has one
                candidate, i = f"{name}__vssr_cast{i}", i + 1
            taken.add(candidate)
            return candidate

        casts_in: list[onnx.NodeProto] = []
        for value in graph.input:
            spec = next((s for s in self.image_inputs if s.name == value.name), None)
            if spec is None or spec.dtype == input_dtype:
                continue
            inner = fresh(value.name)
            for node in graph.node:
                node.input[:] = [inner if i == value.name else i for i in node.input]
            casts_in.append(helper.make_node("Cast", [value.name], [inner], to=to_elem[spec.dtype]))
            value.type.tensor_type.elem_type = to_elem[input_dtype]
        casts_out: list[onnx.NodeProto] = []
        for value in graph.output:
            spec = next(s for s in self.outputs if s.name == value.name)
            if spec.dtype == output_dtype:
                continue
            inner = fresh(value.name)
            for node in graph.node:
                node.output[:] = [inner if o == value.name else o for o in node.output]
            casts_out.append(helper.make_node("Cast", [inner], [value.name], to=to_elem[output_dtype]))
            value.type.tensor_type.elem_type = to_elem[output_dtype]
        nodes = [*casts_in, *graph.node, *casts_out]
        del graph.node[:]
        graph.node.extend(nodes)
        return dataclasses.replace(
            self,
            model=model,
            inputs=tuple(_spec(i) for i in _graph_inputs(model)),
            outputs=tuple(_spec(o) for o in graph.output),
            digest=sha256_bytes(model.SerializeToString()),
        )


def _read_scales(
    model: onnx.ModelProto, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...], size: SizeReq
) -> tuple[Fraction, ...]:
    """Output/input size ratios: from static shapes, else from shape inference at a probe size."""
    image_in = next((s for s in inputs if s.is_image), None)
    if image_in is None or any(len(o.shape) != 4 for o in outputs):
        raise ModelError("vssr needs a 4-D NCHW image input and 4-D outputs")
    if None not in image_in.shape[2:] and all(None not in o.shape[2:] for o in outputs):
        return tuple(Fraction(o.shape[3], image_in.shape[3]) for o in outputs)  # type: ignore[arg-type]
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    side = size.padded(_PROBE)
    for value in _graph_inputs(probe):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and not (dims[2].dim_value == 1 and dims[3].dim_value == 1):
            for i, d in enumerate(dims):
                if not d.HasField("dim_value"):
                    d.dim_value = 1 if i == 0 else side
    try:
        inferred = shape_inference.infer_shapes(probe, data_prop=True)
    except Exception as err:
        raise ModelError(f"cannot infer the output size of the network: {err}") from err
    scales = []
    for out in inferred.graph.output:
        dims = out.type.tensor_type.shape.dim
        if len(dims) != 4 or not dims[3].HasField("dim_value"):
            raise ModelError(
                "cannot read the network's scale from its graph (the output size is not inferable); "
                "pass scale= explicitly"
            )
        scales.append(Fraction(dims[3].dim_value, side))
    return tuple(scales)
