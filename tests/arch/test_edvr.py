"""EDVR graphs vs the independent numpy EDVR (tests/arch/edvr_numpy.py) on random BasicSR weights."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from tests.arch import edvr_numpy as ref
from tests.weights.torchsave import Tensor, save_zip
from vssr.arch.edvr import ARCH, EDVRParams, build, build_aligner, build_extractor, detect
from vssr.errors import ModelError
from vssr.network import Network, get_metadata
from vssr.weights import pth

TOL = 1e-4


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _frames(t: int, h: int, w: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((t, 3, h, w)).astype(np.float32)


CONFIGS = {
    "sr_t5": {"num_feat": 16, "groups": 8, "num_frame": 5, "extract": 2, "reconstruct": 2},
    "sr_t7_g4": {"num_feat": 8, "groups": 4, "num_frame": 7, "extract": 1, "reconstruct": 1},
    "no_tsa_t3": {"num_feat": 8, "groups": 8, "num_frame": 3, "tsa": False},
    "predeblur_x4": {"num_feat": 16, "groups": 8, "predeblur": True},
    "deblur_hr_in": {"num_feat": 16, "groups": 8, "predeblur": True, "hr_in": True},
}


@pytest.mark.parametrize("deform", ["native", "decomposed"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_monolithic_matches_numpy(config: str, deform: str) -> None:
    kw = CONFIGS[config]
    state = ref.random_state(**kw, seed=len(config))  # type: ignore[arg-type]
    params = EDVRParams.from_state(state)
    h, w = (32, 48) if params.hr_in else (16, 20)
    frames = _frames(params.num_frame, h, w)
    want = ref.edvr(state, frames)
    # the test is only meaningful if the network's residual and the deformation are not negligible
    base = frames[params.center] if params.hr_in else ref.upsample(frames[params.center].astype(np.float64), 4)
    assert np.abs(want - base).std() > 0.02
    got = _session(build(state, deform=deform)).run(None, {"input": frames.reshape(1, -1, h, w)})[0]
    assert got.shape == (1, 3, h * params.scale, w * params.scale)
    assert np.abs(got[0] - want).max() <= TOL


def test_params_from_state() -> None:
    state = ref.random_state(num_feat=8, groups=4, num_frame=7, extract=3, reconstruct=2)
    p = EDVRParams.from_state(state)
    assert (p.num_feat, p.num_frame, p.groups, p.extract, p.reconstruct) == (8, 7, 4, 3, 2)
    assert (p.predeblur, p.hr_in, p.tsa, p.center, p.scale, p.multiple) == (False, False, True, 3, 4, 4)
    deblur = EDVRParams.from_state(ref.random_state(num_feat=8, predeblur=True, hr_in=True))
    assert (deblur.predeblur, deblur.hr_in, deblur.scale, deblur.multiple, deblur.splittable) == (True, True, 1, 16, False)
    assert detect(state) and not detect({"conv_first.weight": state["conv_first.weight"]})
    assert ARCH.id == "edvr" and ARCH.detect is detect
    with pytest.raises(ModelError, match="not an EDVR state dict"):
        EDVRParams.from_state({"conv_first.weight": state["conv_first.weight"]})


def test_network_facts() -> None:
    state = ref.random_state(num_feat=8, groups=8)
    net = Network.load(build(state, deform="decomposed"))
    assert (net.scale, net.size.multiple, net.inputs[0].channels) == (4, 4, 15)
    assert get_metadata(net.model)["deform"] == "decomposed"
    assert not any(n.op_type == "DeformConv" for n in net.model.graph.node)
    # the sampling grid (pixel coordinates -> [-1, 1]) must stay fp32 under fp16/bf16 lowering
    kept = {n.op_type for n in net.model.graph.node if n.name in set(net.fp32_nodes)}
    assert {"GridSample", "Range", "Div"} <= kept and "Conv" not in kept
    assert Network.load(build(state)).fp32_nodes == ()
    native = build(state)
    assert sum(n.op_type == "DeformConv" for n in native.graph.node) == 4 * 5  # 4 packs, once per frame
    # ... on weights stored once: the initializers hold no more values than the state dict
    stored = sum(int(np.prod(i.dims)) for i in native.graph.initializer if i.data_type == onnx.TensorProto.FLOAT)
    assert stored <= sum(v.size for v in state.values()) + 1000
    assert Network.load(build_extractor(state)).scale == 1


@pytest.mark.parametrize("deform", ["native", "decomposed"])
def test_split_equals_monolithic(deform: str) -> None:
    state = ref.random_state(num_feat=16, groups=8, extract=2, seed=3)
    h, w = 12, 16
    frames = _frames(5, h, w, seed=5)
    mono = _session(build(state, deform=deform)).run(None, {"input": frames.reshape(1, -1, h, w)})[0]
    extractor, aligner = _session(build_extractor(state)), _session(build_aligner(state, deform=deform))
    feats = [extractor.run(None, {"input": f[None]})[0] for f in frames]
    assert feats[0].shape == (1, 16, h, w)
    split = aligner.run(None, {**{f"l1_{t}": feats[t] for t in range(5)}, "center": frames[2][None]})[0]
    assert np.abs(split - mono).max() <= 1e-5


def test_split_refused_for_hr_in() -> None:
    state = ref.random_state(num_feat=8, predeblur=True, hr_in=True)
    with pytest.raises(ModelError, match="hr_in"):
        build_aligner(state)


def test_basicsr_checkpoint_round_trip(tmp_path: Path) -> None:
    """A BasicSR-style {'params': state_dict} .pth read with vssr.weights.pth builds the same graph."""
    state = ref.random_state(num_feat=8, groups=8, seed=9)
    path = save_zip({"params": OrderedDict((k, Tensor.of(v, parameter=True)) for k, v in state.items())},
                    tmp_path / "EDVR_tiny.pth")
    loaded = pth.load(path)
    assert set(loaded) == set(state)
    frames = _frames(5, 8, 12)
    want = ref.edvr(state, frames)
    got = _session(build(loaded)).run(None, {"input": frames.reshape(1, -1, 8, 12)})[0]
    assert np.abs(got[0] - want).max() <= TOL


def test_decomposition_runs_on_openvino() -> None:
    """OpenVINO's ONNX frontend has no DeformConv; the decomposed graph runs there and matches numpy."""
    from vssr.backends import ov
    from vssr.types import ShapeProfile

    if not ov.available():
        pytest.skip("openvino is not importable here")
    state = ref.random_state(num_feat=8, groups=8, seed=13)
    h, w = 12, 16
    frames = _frames(5, h, w, seed=2)
    want = ref.edvr(state, frames)
    backend = ov.OV(precision="f32", num_streams=1, cache=False)
    runner = backend.load(Network.load(build(state, deform="decomposed")), ShapeProfile.static(w, h))[0]
    got = runner.infer({"input": frames.reshape(1, -1, h, w)})["output"]
    runner.close()
    assert np.abs(got[0] - want).max() <= TOL


@pytest.mark.slow
@pytest.mark.parametrize("deform", ["native", "decomposed"])
def test_edvr_m_shapes_match_numpy(deform: str) -> None:
    """The real EDVR-M configuration (64 features, 8 groups of 8 channels, 5 + 10 blocks) on a small frame."""
    state = ref.random_state(num_feat=64, groups=8, num_frame=5, extract=5, reconstruct=10, seed=21)
    params = EDVRParams.from_state(state)
    assert (params.num_feat, params.extract, params.reconstruct, params.name) == (64, 5, 10, "edvr_M_x4_t5")
    frames = _frames(5, 16, 24, seed=8)
    want = ref.edvr(state, frames)
    got = _session(build(state, deform=deform)).run(None, {"input": frames.reshape(1, -1, 16, 24)})[0]
    assert np.abs(got[0] - want).max() <= TOL
