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
from onnx import shape_inference

from .errors import ModelError
from .files import sha256_bytes
from .onnxpasses.io_dtype import retype_io
from .types import SizeReq, TensorSpec
from .validation import require_file
from .weights import onnxfile

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
    precision_sensitive: bool = False
    """True where a backend's default lowered precision (OpenVINO bf16) costs too much: errors that
    grow through warps (RIFE's flows, EDVR's deformable alignment), or an SR net measured under
    50 dB PSNR in bf16 against fp32 (QuickSRNet, RRDBNet). Session then computes in fp32 unless the backend
    config asks for less (`BackendConfig.with_fp32_default`). See docs/precision.md."""
    digest: str = ""
    """sha256 of the serialized model; every cache keys on it."""

    @classmethod
    def load(
        cls, source: str | os.PathLike[str] | onnx.ModelProto, *, name: str | None = None,
        scale: Fraction | None = None,
    ) -> Network:
        """Read an ONNX file or model; raises ModelError when it is unusable.

        `scale`: the output/input size ratio to assume when the graph does not tell it.
        """
        if isinstance(source, onnx.ModelProto):
            model = source
            default_name = model.graph.name or "network"
        else:
            path = Path(source)
            require_file("model file", path, "an ONNX file", error=ModelError)
            model = onnxfile.load_model(path)  # external data checked to stay in the model's folder
            default_name = path.stem
        if not model.graph.output or not _graph_inputs(model):
            where = "" if isinstance(source, onnx.ModelProto) else f"{os.fspath(source)}: "
            raise ModelError(f"{where}the ONNX graph has no inputs or no outputs (an empty or cut file?)")
        meta = get_metadata(model)
        inputs = tuple(_spec(i) for i in _graph_inputs(model))
        outputs = tuple(_spec(o) for o in model.graph.output)
        data = model.SerializeToString()
        try:
            size = SizeReq(int(meta.get("multiple", 1)), int(meta.get("minimum", 0)), meta.get("padding", "mirror"))
        except ValueError as err:
            raise ModelError(f"the model's vssr.padding metadata: {err}") from err
        if "scales" in meta:
            scales = tuple(Fraction(v) for v in meta["scales"].split(","))
        elif "scale" in meta:
            scales = (Fraction(meta["scale"]),) * len(outputs)
        else:
            try:
                scales = _read_scales(model, inputs, outputs, size)
            except ModelError:
                if scale is None:
                    raise
                scales = (Fraction(scale),) * len(outputs)
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
            precision_sensitive=meta.get("precision_sensitive", "False") == "True",
            digest=sha256_bytes(data),
        )

    @property
    def image_inputs(self) -> tuple[TensorSpec, ...]:
        return tuple(s for s in self.inputs if s.is_image)

    def with_io_dtype(self, input_dtype: np.dtype | type, output_dtype: np.dtype | type) -> Network:
        """The same network with its image inputs/outputs retyped, casting at the graph edge
        (`onnxpasses.io_dtype.retype_io`): fp16 frames go in and out as fp16 tensors, compute
        precision is untouched. Backends call it in `load(..., io_dtype=)` where they need it."""
        model = retype_io(
            self.model,
            {s.name: input_dtype for s in self.image_inputs},
            {s.name: output_dtype for s in self.outputs},
        )
        if model is self.model:
            return self
        return dataclasses.replace(
            self,
            model=model,
            inputs=tuple(_spec(i) for i in _graph_inputs(model)),
            outputs=tuple(_spec(o) for o in model.graph.output),
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
