"""RIFE graphs from IFNet state dicts and from vs-mlrt's RIFE ONNX (no files read here).

* An IFNet state dict (Practical-RIFE / vs-rife `flownet.pkl`, read by `vssr.weights.rife`): the
  version is detected from key names and tensor shapes (`ifnet.candidates`: every vs-rife 5.7.0
  version, v4.0 .. v4.26 with lite and heavy). Versions with identical networks (4.25 and 4.26,
  4.13 .. 4.24, ...): the file name (vs-rife's `flownet_v4.25.lite.pkl`, or vssr's `4.25-lite`)
  decides the label when it can (`version_hint`), the graph is the same either way.
* vs-mlrt `rife_v4.x.onnx` (v1: one 11-channel input img0, img1, timestep, x/y grid planes and
  the 2/(W-1), 2/(H-1) planes) and `rife_v2/rife_v4.x.onnx` (v2: 7 channels, grid made inside) are
  wrapped into vssr's interface (img0, img1, timestep [1,1,1,1]): the extra planes are built
  inside the graph from the input shape, so nothing full-size is copied per frame.

Either becomes a `RifeModel`: a flownet graph, an optional encoder graph, and the version.
`vssr.zoo.rife_model(path)` reads the file and calls these.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import ModelError
from ..network import get_metadata, set_metadata
from ..types import StateDict
from . import ifnet

__all__ = ["RifeModel", "choose_version", "from_state", "version_hint", "wrap_vsmlrt"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RifeModel:
    """The graphs vssr.RIFE runs, ready for `Network.load`."""

    flownet: onnx.ModelProto
    encoder: onnx.ModelProto | None
    version: str
    """vssr's version name ("4.22", "4.25-lite"), or "vs-mlrt v1"/"vs-mlrt v2" for wrapped ONNX."""
    source: str


def version_hint(path: Path) -> str | None:
    """'4.26' from names such as flownet_v4.26.pkl, flownet_v4.25.lite.pkl, rife_v4.25_lite.onnx, 4_22-lite/flownet.pkl."""
    text = "/".join(path.parts[-2:]).lower()
    for m in re.finditer(r"4[._]\d+(?:[._-]?(?:lite|heavy))?", text):
        if name := ifnet.canonical_name(m.group(0)):
            return name
    return None


def choose_version(state: StateDict, source: str, hint: str | None, version: str | None) -> ifnet.IFNetVersion:
    if not ifnet.detect(state):
        sample = ", ".join(sorted(state)[:6])
        raise ModelError(
            f"{source} is not a RIFE IFNet checkpoint (no block0.conv0 / block0.lastconv keys; found {sample}, ...)"
        )
    try:
        found = ifnet.candidates(state)
    except ModelError as err:
        raise ModelError(f"{source}: {err}") from err
    names = [v.name for v in found]
    if version is not None:
        name = ifnet.canonical_name(version)
        if name is None:
            raise ValueError(f"version must be one of {', '.join(ifnet.VERSIONS)} (or vs-rife's 4.22.lite), not {version!r}")
        if name not in names:
            raise ModelError(f"{source}: the weights are RIFE {'/'.join(names)}, not {name}")
        return ifnet.VERSIONS[name]
    if len(found) > 1:
        # identical networks (e.g. 4.13 = 4.14 = ... = 4.24): the label is all that differs
        chosen = ifnet.VERSIONS[hint] if hint in names else found[-1]
        logger.info("%s: RIFE %s are one network; labelled %s", source, "/".join(names), chosen.name)
        return chosen
    if hint and hint != found[0].name:
        logger.warning("%s: the name says %s but the weights are RIFE %s; using %s", source, hint, found[0].name,
                       found[0].name)
    return found[0]


def from_state(state: StateDict, source: str, *, version: str | None = None, scale: float = 1.0,
               ensemble: bool = False, hint: str | None = None) -> RifeModel:
    """A RifeModel from an IFNet state dict (flownet.pkl keys without `module.`); `source` names it
    in messages, `hint` is the version its file name says (the label of identical networks)."""
    chosen = choose_version(state, source, hint, version)
    flownet = ifnet.build_flownet(state, chosen, scale=scale, ensemble=ensemble)
    encoder = ifnet.build_encoder(state, chosen) if chosen.encoder else None
    logger.info("%s: RIFE v%s, scale %s%s", source, chosen.name, scale, ", ensemble" if ensemble else "")
    return RifeModel(flownet, encoder, chosen.name, source)


# --- vs-mlrt ONNX -----------------------------------------------------------------------------


def _resize_scales(model: onnx.ModelProto) -> list[float]:
    """Constant spatial scales of the graph's Resize nodes (PyTorch exports use Constant nodes)."""
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    found = []
    for node in model.graph.node:
        if node.op_type == "Resize" and len(node.input) >= 3 and node.input[2] in consts:
            values = consts[node.input[2]].reshape(-1)
            if values.size == 4:
                found.append(float(values[2]))
    return found


def _multiple_v1(model: onnx.ModelProto, source: str, hint: str | None) -> int:
    scales = [s for s in _resize_scales(model) if 0 < s < 1]
    if scales:
        return max(32, round(4 / min(scales)))
    if hint in ifnet.VERSIONS:
        return max(32, ifnet.pad_multiple(ifnet.VERSIONS[hint]))
    logger.info("%s: cannot read the flow scales of the graph; padding to 128 (always enough)", source)
    return 128


def wrap_vsmlrt(model: onnx.ModelProto, source: str, hint: str | None = None) -> RifeModel:
    """Wrap a vs-mlrt RIFE ONNX (v1: 11 channels, v2: 7) into img0, img1, timestep inputs.

    `source` names the file in messages and the graph; `hint` is the version its name says (the
    padding of a v1 graph whose flow scales cannot be read)."""
    if get_metadata(model).get("rife_role") == "flownet":
        return RifeModel(model, None, get_metadata(model).get("rife_version", "?"), source)
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    dims = inputs[0].type.tensor_type.shape.dim if len(inputs) == 1 else []
    channels = dims[1].dim_value if len(dims) == 4 and dims[1].HasField("dim_value") else None
    if len(inputs) != 1 or channels not in (7, 11) or len(model.graph.output) != 1:
        shapes = [[d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim] for i in inputs]
        raise ModelError(
            f"{source} is not a vs-mlrt RIFE ONNX: expected one input of 11 (v1) or 7 (v2) channels, "
            f"found inputs {shapes}; vssr.RIFE also takes flownet.pkl checkpoints"
        )
    kind = "v1" if channels == 11 else "v2"
    multiple = _multiple_v1(model, source, hint) if kind == "v1" else 1
    wrapped, fp32 = _wrap(model, inputs[0], kind)
    # the same RIFE networks: padded with zeros as vs-rife does (vs-mlrt's v2 graphs pad inside with zeros;
    # its v1 graphs take only aligned frames)
    set_metadata(wrapped, scale=1, multiple=multiple, padding="zeros", tiling=False, fp32_nodes=",".join(fp32),
                 name=f"rife-vsmlrt-{kind}-{Path(source).stem}", rife_version=f"vs-mlrt {kind}", rife_role="flownet",
                 precision_sensitive=True)
    try:
        onnx.checker.check_model(wrapped)
    except onnx.checker.ValidationError as err:
        raise ModelError(f"{source}: the wrapped vs-mlrt graph is invalid: {err}") from err
    logger.info("%s: vs-mlrt RIFE %s ONNX, padding to a multiple of %d", source, kind, multiple)
    return RifeModel(wrapped, None, f"vs-mlrt {kind}", source)


def _wrap(model: onnx.ModelProto, inp: onnx.ValueInfoProto, kind: str) -> tuple[onnx.ModelProto, list[str]]:
    """New inputs img0, img1 (float32 [1,3,H,W]) and timestep [1,1,1,1] feeding the old input."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    fp32: list[str] = []

    def const(name: str, value: np.ndarray) -> str:
        if not any(i.name == f"vssr__{name}" for i in inits):
            inits.append(numpy_helper.from_array(value, f"vssr__{name}"))
        return f"vssr__{name}"

    def node(op: str, ins: list[str], out: str, keep_fp32: bool = False, **attrs: Any) -> str:
        name = f"vssr__{out}"
        nodes.append(helper.make_node(op, ins, [name], name=f"vssr__n_{out}", **attrs))
        if keep_fp32:
            fp32.append(f"vssr__n_{out}")
        return name

    shape = node("Shape", ["img0"], "shape")
    plane = node("Concat", [const("one_one", np.array([1, 1], np.int64)),
                            node("Slice", [shape, const("s2", np.array([2], np.int64)), const("s4", np.array([4], np.int64))], "hw")],
                 "plane_shape", axis=0)
    parts = ["img0", "img1", node("Expand", ["timestep", plane], "t_plane")]
    if kind == "v1":
        one = const("one", np.array(1.0, np.float32))
        two = const("two", np.array(2.0, np.float32))
        factors = []
        for axis, name, dims in ((3, "x", [1, 1, 1, -1]), (2, "y", [1, 1, -1, 1])):
            # horizontal = 2x/(W-1) - 1, vertical = 2y/(H-1) - 1 (vs-mlrt get_rife_input)
            n = node("Gather", [shape, const(f"ax{axis}", np.array(axis, np.int64))], f"n_{name}")
            rng = node("Range", [const("zero", np.array(0, np.int64)), n, const("step", np.array(1, np.int64))],
                       f"range_{name}", True)
            ramp = node("Reshape", [node("Cast", [rng], f"ramp_{name}", True, to=TensorProto.FLOAT),
                                    const(f"dims_{name}", np.array(dims, np.int64))], f"ramp4_{name}", True)
            size = node("Cast", [n], f"nf_{name}", True, to=TensorProto.FLOAT)
            k = node("Div", [two, node("Sub", [size, one], f"nm1_{name}", True)], f"k_{name}", True)
            coords = node("Sub", [node("Mul", [ramp, k], f"scaled_{name}", True), one], f"grid_{name}", True)
            parts.append(node("Expand", [coords, plane], f"grid_plane_{name}", True))
            factors.append(k)
        dims1 = const("dims1", np.array([1, 1, 1, 1], np.int64))
        for name, k in zip(("kx", "ky"), factors, strict=True):  # 2/(W-1), 2/(H-1) planes
            k4 = node("Reshape", [k, dims1], f"{name}4", True)
            parts.append(node("Expand", [k4, plane], f"{name}_plane", True))
    joined = node("Concat", parts, "input", axis=1)
    elem = inp.type.tensor_type.elem_type
    if elem != TensorProto.FLOAT:
        joined = node("Cast", [joined], "input_cast", to=elem)
    old = onnx.ModelProto()
    old.CopyFrom(model)
    graph = old.graph
    for n in graph.node:
        n.input[:] = [joined if i == inp.name else i for i in n.input]
    new_inputs = [
        helper.make_tensor_value_info("img0", TensorProto.FLOAT, [1, 3, "H", "W"]),
        helper.make_tensor_value_info("img1", TensorProto.FLOAT, [1, 3, "H", "W"]),
        helper.make_tensor_value_info("timestep", TensorProto.FLOAT, [1, 1, 1, 1]),
    ]
    kept_inputs = [i for i in graph.input if i.name != inp.name]
    all_nodes = [*nodes, *graph.node]
    del graph.node[:]
    graph.node.extend(all_nodes)
    del graph.input[:]
    graph.input.extend([*new_inputs, *kept_inputs])
    graph.initializer.extend(inits)
    return old, fp32
