"""vssr.arch.compact (SRVGGNetCompact) against a float64 numpy reference (tests/arch/sr_numpy.py).

Random weights over several hyperparameter sets; tolerance max |diff| <= 1e-4 (ORT fp32 vs float64).
The bicubic x2/x3 tail is checked against ncnn in tests/weights/test_ncnn.py.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from onnx import numpy_helper

from tests import nets
from tests.arch import sr_numpy
from tests.weights import torchsave
from vssr.arch import compact, registry
from vssr.errors import ModelError
from vssr.network import IR_VERSION, OPSET, Network, get_metadata
from vssr.weights import pth

TOLERANCE = 1e-4


def random_state(in_ch: int, feat: int, num_conv: int, scale: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = OrderedDict()
    chans = [in_ch] + [feat] * (num_conv + 1)
    for i in range(num_conv + 1):
        state[f"body.{2 * i}.weight"] = rng.normal(0, 0.15, (feat, chans[i], 3, 3)).astype(np.float32)
        state[f"body.{2 * i}.bias"] = rng.normal(0, 0.05, feat).astype(np.float32)
        state[f"body.{2 * i + 1}.weight"] = rng.uniform(0, 0.3, feat).astype(np.float32)
    last = 2 * num_conv + 2
    state[f"body.{last}.weight"] = rng.normal(0, 0.15, (in_ch * scale * scale, feat, 3, 3)).astype(np.float32)
    state[f"body.{last}.bias"] = rng.normal(0, 0.05, in_ch * scale * scale).astype(np.float32)
    return state


CONFIGS = [(3, 8, 2, 4), (1, 4, 1, 2), (3, 6, 0, 3), (4, 5, 3, 1)]


@pytest.mark.parametrize(("in_ch", "feat", "num_conv", "scale"), CONFIGS)
def test_matches_numpy(in_ch: int, feat: int, num_conv: int, scale: int) -> None:
    state = random_state(in_ch, feat, num_conv, scale, seed=in_ch + feat)
    params = compact.CompactParams.from_state(state)
    assert params == compact.CompactParams(in_ch, in_ch, feat, num_conv, scale)
    assert compact.detect(state) and registry.detect(state).id == "compact"
    model = compact.build(state)
    assert model.opset_import[0].version == OPSET and model.ir_version == IR_VERSION
    x = np.random.default_rng(5).random((1, in_ch, 11, 14), dtype=np.float32)
    got = nets.run_cpu(model, x)
    ref = sr_numpy.srvgg(state, x, scale)
    assert got.shape == ref.shape == (1, in_ch, 11 * scale, 14 * scale)
    assert np.abs(got - ref).max() <= TOLERANCE
    net = Network.load(model)
    assert net.scale == scale and net.size.multiple == 1
    assert get_metadata(model)["scale"] == str(scale)


def test_out_scale_metadata_and_shape() -> None:
    state = random_state(3, 4, 1, 4)
    model = compact.build(state, out_scale=2, name="tiny-x2")
    assert Network.load(model).scale == 2 and get_metadata(model)["name"] == "tiny-x2"
    assert nets.run_cpu(model, np.zeros((1, 3, 6, 10), np.float32)).shape == (1, 3, 12, 20)
    with pytest.raises(ModelError, match="out_scale"):
        compact.build(state, out_scale=5)


def test_pth_roundtrip_identical_initializers(tmp_path: Path) -> None:
    """An official-layout checkpoint ({"params": ..., "params_ema": ...}) -> the same weights in the graph."""
    state = random_state(3, 8, 2, 4, seed=9)
    decoy = {k: torchsave.Tensor.of(np.zeros_like(v)) for k, v in state.items()}
    path = torchsave.save_zip(
        {"params": decoy, "params_ema": OrderedDict((k, torchsave.Tensor.of(v)) for k, v in state.items())},
        tmp_path / "realesr-tiny.pth",
    )
    loaded = pth.load(path)
    model = registry.detect(loaded).build(loaded)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for key, value in state.items():
        np.testing.assert_array_equal(inits[key].reshape(value.shape), value)


def test_rejections() -> None:
    state = random_state(3, 4, 1, 4)
    no_prelu = {k: v for k, v in state.items() if k != "body.3.weight"}
    assert compact.detect(state)
    with pytest.raises(ModelError, match="PReLU"):
        compact.CompactParams.from_state(no_prelu)
    assert not compact.detect({**state, "conv_first.weight": state["body.0.weight"]})
    bad = dict(state)
    bad["body.4.weight"] = bad["body.4.weight"][:20]
    with pytest.raises(ModelError, match="scale"):
        compact.CompactParams.from_state(bad)


def test_matches_torch_written_checkpoint() -> None:
    """tests/data/torch_compact_x4.pth and its output were made by torch (tests/data/make_torch_fixtures.py)."""
    data = Path(__file__).resolve().parents[1] / "data"
    state = pth.load(data / "torch_compact_x4.pth")
    assert compact.CompactParams.from_state(state) == compact.CompactParams(3, 3, 8, 2, 4)
    expected = np.load(data / "torch_sr_outputs.npz")
    got = nets.run_cpu(registry.detect(state).build(state), expected["input"])
    assert np.abs(got - expected["torch_compact_x4"]).max() <= TOLERANCE
