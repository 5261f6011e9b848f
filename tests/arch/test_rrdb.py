"""vssr.arch.rrdb (RRDBNet) against a float64 numpy reference (tests/arch/sr_numpy.py).

Random weights over several hyperparameter sets (x4, x2 pixel-unshuffle, x1, 1-channel); tolerance
max |diff| <= 1e-4. Older ESRGAN key layouts must build the same graph.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tests import nets
from tests.arch import sr_numpy
from tests.weights import torchsave
from vssr.arch import registry, rrdb
from vssr.errors import ModelError
from vssr.network import Network
from vssr.weights import pth

TOLERANCE = 1e-4


def random_state(ch: int, feat: int, grow: int, blocks: int, scale: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = OrderedDict()

    def conv(key: str, out: int, inp: int) -> None:
        state[f"{key}.weight"] = rng.normal(0, 0.1, (out, inp, 3, 3)).astype(np.float32)
        state[f"{key}.bias"] = rng.normal(0, 0.05, out).astype(np.float32)

    conv("conv_first", feat, ch * {1: 16, 2: 4}.get(scale, 1))
    for b in range(blocks):
        for r in (1, 2, 3):
            for c in range(1, 5):
                conv(f"body.{b}.rdb{r}.conv{c}", grow, feat + (c - 1) * grow)
            conv(f"body.{b}.rdb{r}.conv5", feat, feat + 4 * grow)
    for key in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        conv(key, feat, feat)
    conv("conv_last", ch, feat)
    return state


CONFIGS = [(3, 8, 4, 1, 4), (3, 6, 3, 2, 2), (3, 4, 2, 1, 1), (1, 5, 3, 1, 4)]


@pytest.mark.parametrize(("ch", "feat", "grow", "blocks", "scale"), CONFIGS)
def test_matches_numpy(ch: int, feat: int, grow: int, blocks: int, scale: int) -> None:
    state = random_state(ch, feat, grow, blocks, scale, seed=feat)
    params = rrdb.RRDBParams.from_state(state)
    assert params == rrdb.RRDBParams(ch, ch, feat, grow, blocks, scale)
    assert registry.detect(state).id == "rrdb"
    model = rrdb.build(state)
    x = np.random.default_rng(3).random((1, ch, 8, 12), dtype=np.float32)
    got = nets.run_cpu(model, x)
    ref = sr_numpy.rrdbnet(state, x, scale, blocks)
    assert got.shape == ref.shape == (1, ch, 8 * scale, 12 * scale)
    assert np.abs(got - ref).max() <= TOLERANCE
    net = Network.load(model)
    assert net.scale == scale and net.size.multiple == params.unshuffle


def _esrgan_new_arch(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = {"conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2", "conv_hr": "HRconv"}
    out = {}
    for key, value in state.items():
        key = re.sub(r"^body\.(\d+)\.rdb(\d)", r"RRDB_trunk.\1.RDB\2", key)
        head, _, tail = key.partition(".")
        out[f"{names.get(head, head)}.{tail}"] = value
    return out


def _esrgan_old_arch(state: dict[str, np.ndarray], blocks: int) -> dict[str, np.ndarray]:
    top = {"conv_first": "0", "conv_up1": "3", "conv_up2": "6", "conv_hr": "8", "conv_last": "10"}
    out = {}
    for key, value in state.items():
        if m := re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)\.(weight|bias)", key):
            out[f"model.1.sub.{m[1]}.RDB{m[2]}.conv{m[3]}.0.{m[4]}"] = value
        elif key.startswith("conv_body."):
            out[f"model.1.sub.{blocks}.{key.split('.')[1]}"] = value
        else:
            head, _, tail = key.partition(".")
            out[f"model.{top[head]}.{tail}"] = value
    return out


def _initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def test_older_esrgan_layouts_build_the_same_graph() -> None:
    state = random_state(3, 4, 2, 2, 4, seed=1)
    reference = _initializers(rrdb.build(state))
    for legacy in (_esrgan_new_arch(state), _esrgan_old_arch(state, 2)):
        assert "body.0.rdb1.conv1.weight" not in legacy
        assert registry.detect(legacy).id == "rrdb"
        assert rrdb.RRDBParams.from_state(legacy) == rrdb.RRDBParams.from_state(state)
        got = _initializers(rrdb.build(legacy))
        assert got.keys() == reference.keys()
        for key in reference:
            np.testing.assert_array_equal(got[key], reference[key])


def test_pth_roundtrip_identical_initializers(tmp_path: Path) -> None:
    """x2plus-like checkpoint with a params_ema wrapper and module. prefix."""
    state = random_state(3, 6, 3, 1, 2, seed=4)
    path = torchsave.save_zip(
        {"params_ema": OrderedDict((f"module.{k}", torchsave.Tensor.of(v)) for k, v in state.items())},
        tmp_path / "RealESRGAN_tiny_x2.pth",
    )
    loaded = pth.load(path)
    assert rrdb.RRDBParams.from_state(loaded).scale == 2
    inits = _initializers(registry.detect(loaded).build(loaded))
    for key, value in state.items():
        np.testing.assert_array_equal(inits[key], value)


def test_detect_and_errors() -> None:
    state = random_state(3, 4, 2, 1, 4)
    with pytest.raises(ModelError, match="missing"):
        rrdb.RRDBParams.from_state({k: v for k, v in state.items() if not k.startswith("conv_hr")})
    with pytest.raises(ModelError, match=r"tried edvr, compact, rrdb"):
        registry.detect({"foo.weight": np.zeros((1, 1, 3, 3), np.float32)})
    gap = dict(state)
    for key in [k for k in state if k.startswith("body.0.")]:
        gap[key.replace("body.0.", "body.2.")] = gap[key]
    with pytest.raises(ModelError, match="contiguous"):
        rrdb.RRDBParams.from_state(gap)


@pytest.mark.parametrize(("name", "scale", "feat", "blocks"), [("torch_rrdb_x2", 2, 4, 2), ("torch_rrdb_x1", 1, 4, 1)])
def test_matches_torch_written_checkpoint(name: str, scale: int, feat: int, blocks: int) -> None:
    """Checkpoints and outputs made by torch (tests/data/make_torch_fixtures.py): F.pixel_unshuffle path."""
    data = Path(__file__).resolve().parents[1] / "data"
    state = pth.load(data / f"{name}.pth")
    assert rrdb.RRDBParams.from_state(state) == rrdb.RRDBParams(3, 3, feat, 2, blocks, scale)
    expected = np.load(data / "torch_sr_outputs.npz")
    got = nets.run_cpu(registry.detect(state).build(state), expected["input"])
    assert got.shape == expected[name].shape
    assert np.abs(got - expected[name]).max() <= TOLERANCE
