"""IFNet graphs vs the independent numpy reference (tests/arch/ifnet_numpy.py), fp32, max |diff| <= 1e-4."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.arch import ifnet_numpy as ref
from vssr.arch import ifnet
from vssr.backends.ort import ORT
from vssr.errors import ModelError
from vssr.network import Network, get_metadata
from vssr.types import ShapeProfile

TOL = 1e-4


def state_for(version: ifnet.IFNetVersion, seed: int = 0) -> dict[str, np.ndarray]:
    return ref.random_state(version.channels, version.encoder, version.head, version.feat, seed)


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    net = Network.load(model)
    h, w = next(iter(feeds.values())).shape[2:]
    runner = ORT(threads=1).load(net, ShapeProfile.static(w, h))[0]
    return next(iter(runner.infer(feeds).values()))


def interpolate_onnx(state, version, img0, img1, t, *, scale=1.0, ensemble=False) -> np.ndarray:
    feeds = {"img0": img0[None], "img1": img1[None], "timestep": np.full((1, 1, 1, 1), t, np.float32)}
    if version.encoder:
        enc = ifnet.build_encoder(state, version)
        feeds["feat0"] = run(enc, {"img": img0[None]})
        feeds["feat1"] = run(enc, {"img": img1[None]})
    return run(ifnet.build_flownet(state, version, scale=scale, ensemble=ensemble), feeds)[0]


CASES = [
    ("4.6", 1.0, False, 64),
    ("4.6", 1.0, True, 64),
    ("4.6", 0.5, False, 64),
    ("4.22", 1.0, False, 64),
    ("4.22", 2.0, False, 32),
    ("4.22-lite", 1.0, False, 64),
    ("4.25", 1.0, False, 64),
    ("4.25-lite", 1.0, False, 128),
    ("4.26", 1.0, False, 64),
    ("4.26-heavy", 1.0, False, 64),
]


@pytest.mark.parametrize(("name", "scale", "ensemble", "size"), CASES)
def test_parity_with_numpy_reference(name: str, scale: float, ensemble: bool, size: int) -> None:
    version = ifnet.VERSIONS[name]
    assert size % ifnet.pad_multiple(version, scale) == 0
    state = state_for(version, seed=len(name))
    img0, img1 = ref.smooth_frames(size, size, seed=1, shift=3.0)
    img1[:, :4, :4] = 1.3  # out-of-range pixels exercise the input clamp
    t = 0.3
    got = interpolate_onnx(state, version, img0, img1, t, scale=scale, ensemble=ensemble)
    want = ref.ifnet(state, img0, img1, t, scales=ifnet.flow_scales(version, scale), encoder=bool(version.encoder),
                     accumulate_mask=version.accumulate_mask, ensemble=ensemble)
    assert got.shape == (3, size, size)
    diff = np.abs(got - want).max()
    assert diff <= TOL, f"v{name} scale={scale} ensemble={ensemble}: max |diff| {diff}"
    # the network really interpolates something frame-dependent (not a constant or one input)
    assert np.abs(got - img0).max() > 1e-3 and np.abs(got - img1).max() > 1e-3


def test_encoder_parity() -> None:
    version = ifnet.VERSIONS["4.22"]
    state = state_for(version)
    img, _ = ref.smooth_frames(32, 48, seed=3)
    got = run(ifnet.build_encoder(state, version), {"img": img[None]})[0]
    want = ref.encode(state, img)
    assert got.shape == (8, 32, 48)
    assert np.abs(got - want).max() <= TOL


@pytest.mark.parametrize("name", list(ifnet.VERSIONS))
def test_params_and_candidates_from_shapes(name: str) -> None:
    version = ifnet.VERSIONS[name]
    state = state_for(version)
    params = ifnet.IFNetParams.from_state(state)
    assert (params.channels, params.encoder, params.head) == (version.channels, version.encoder, version.head)
    names = [v.name for v in ifnet.candidates(state)]
    assert name in names
    # only versions with an identical architecture are ambiguous (4.25 / 4.26)
    assert all(ifnet.VERSIONS[n].signature() == version.signature() for n in names)


def test_metadata_declares_padding_fp32_and_no_tiling() -> None:
    version = ifnet.VERSIONS["4.25"]
    model = ifnet.build_flownet(state_for(version), version)
    net = Network.load(model)
    assert net.size.multiple == 64 and not net.tiling
    assert {s.name: s.shape for s in net.inputs}["timestep"] == (1, 1, 1, 1)
    nodes = {n.name: n.op_type for n in model.graph.node}
    assert set(net.fp32_nodes) <= set(nodes)
    kinds = {nodes[n] for n in net.fp32_nodes}
    assert {"GridSample", "Range", "Div"} <= kinds
    assert sum(1 for k in nodes.values() if k == "GridSample") == sum(1 for n in net.fp32_nodes if nodes[n] == "GridSample")
    for node in model.graph.node:
        if node.op_type == "GridSample":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            assert attrs == {"mode": b"bilinear", "padding_mode": b"border", "align_corners": 1}
    assert model.opset_import[0].version == 19
    assert get_metadata(model)["rife_version"] == "4.25"
    assert ifnet.pad_multiple(ifnet.VERSIONS["4.25-lite"]) == 128
    assert ifnet.pad_multiple(ifnet.VERSIONS["4.6"]) == 32
    assert ifnet.pad_multiple(ifnet.VERSIONS["4.6"], 0.5) == 64


def test_bad_arguments_and_weights() -> None:
    v46, v422 = ifnet.VERSIONS["4.6"], ifnet.VERSIONS["4.22"]
    state = state_for(v422)
    with pytest.raises(ValueError, match="ensemble"):
        ifnet.build_flownet(state, v422, ensemble=True)
    with pytest.raises(ValueError, match="scale"):
        ifnet.build_flownet(state, v422, scale=3.0)
    with pytest.raises(ModelError, match="block0.conv0.0.0.weight"):
        ifnet.build_flownet(state, v46)  # 4.22 weights for the 4.6 graph
    broken = dict(state)
    broken["block2.convblock.3.conv.weight"] = broken["block2.convblock.3.conv.weight"][:, :5]
    with pytest.raises(ModelError, match="block2.convblock.3"):
        ifnet.candidates(broken)
    with pytest.raises(ModelError, match="block"):
        ifnet.IFNetParams.from_state({"conv.weight": np.zeros((1, 1, 3, 3), np.float32)})


def test_fp16_lowering_keeps_the_warp_in_fp32() -> None:
    """What a strongly typed fp16 TensorRT engine gets: the declared fp32 islands survive lowering."""
    from vssr.backends.precision import lower_precision

    version = ifnet.VERSIONS["4.22-lite"]
    state = state_for(version)
    model = ifnet.build_flownet(state, version)
    net = Network.load(model)
    low = lower_precision(model, fp32_nodes=net.fp32_nodes)
    inferred = onnx.shape_inference.infer_shapes(low)
    types = {v.name: v.type.tensor_type.elem_type for v in (*inferred.graph.value_info, *inferred.graph.input)}
    convs = [n for n in low.graph.node if n.op_type == "Conv"]
    assert convs and all(types.get(n.output[0]) == onnx.TensorProto.FLOAT16 for n in convs)
    for node in low.graph.node:
        if node.op_type == "GridSample":
            assert types.get(node.input[1]) == onnx.TensorProto.FLOAT  # the grid
            assert types.get(node.output[0]) == onnx.TensorProto.FLOAT
    img0, img1 = ref.smooth_frames(64, 64, seed=1, shift=3.0)
    enc = ifnet.build_encoder(state, version)
    feeds = {"img0": img0[None], "img1": img1[None], "timestep": np.full((1, 1, 1, 1), 0.5, np.float32),
             "feat0": run(enc, {"img": img0[None]}), "feat1": run(enc, {"img": img1[None]})}
    full, half = run(model, feeds), run(low, feeds)
    assert np.abs(full - half).max() < 2e-2
