"""QuickSRNet graph vs an independent numpy forward pass (tolerance 1e-5), several configurations."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from vssr import data
from vssr.arch import quicksrnet
from vssr.errors import ModelError
from vssr.network import Network, get_metadata

TOL = 1e-5


def np_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 1) -> np.ndarray:
    """x [C, H, W], w [O, C, k, k] -> [O, H', W'] (cross-correlation, zero padding), float64."""
    _, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (pad, pad), (pad, pad)))
    ho = (h + 2 * pad - k) // stride + 1
    wo = (wd + 2 * pad - k) // stride + 1
    out = np.zeros((o, ho, wo))
    for dy in range(k):
        for dx in range(k):
            patch = xp[:, dy : dy + stride * ho : stride, dx : dx + stride * wo : stride]  # [C, ho, wo]
            out += np.einsum("oc,chw->ohw", w[:, :, dy, dx].astype(np.float64), patch)
    return out + b.astype(np.float64)[:, None, None]


def np_pixel_shuffle(x: np.ndarray, s: int) -> np.ndarray:
    """PyTorch PixelShuffle: out[c, h*s+i, w*s+j] = in[c*s*s + i*s + j, h, w]."""
    cs, h, w = x.shape
    c = cs // (s * s)
    out = np.empty((c, h * s, w * s), x.dtype)
    for ch in range(c):
        for i in range(s):
            for j in range(s):
                out[ch, i::s, j::s] = x[ch * s * s + i * s + j]
    return out


def np_pixel_unshuffle(x: np.ndarray, s: int) -> np.ndarray:
    """PyTorch pixel_unshuffle: out[c*s*s + i*s + j, h, w] = in[c, h*s+i, w*s+j]."""
    c, h, w = x.shape
    out = np.empty((c * s * s, h // s, w // s), x.dtype)
    for ch in range(c):
        for i in range(s):
            for j in range(s):
                out[ch * s * s + i * s + j] = x[ch, i::s, j::s]
    return out


def reference(state: dict[str, np.ndarray], x: np.ndarray, scale: Fraction) -> np.ndarray:
    h = x
    i = 0
    while f"cnn.{i}.weight" in state:
        h = np.clip(np_conv2d(h, state[f"cnn.{i}.weight"], state[f"cnn.{i}.bias"]), 0, 1)
        i += 2
    if scale == Fraction(3, 2):
        y = np_conv2d(np_pixel_unshuffle(h, 2), state["conv_last.weight"], state["conv_last.bias"], pad=0)
        if "anchor.net.weight" in state:
            y = y + np_conv2d(x, state["anchor.net.weight"], state["anchor.net.bias"], stride=2, pad=1)
        block = 3
    else:
        y = np_conv2d(h, state["conv_last.weight"], state["conv_last.bias"])
        if "anchor.net.weight" in state:
            y = y + np_conv2d(x, state["anchor.net.weight"], state["anchor.net.bias"], pad=0)
        block = int(scale)
    return np_pixel_shuffle(np.clip(y, 0, 1), block)


def run(model, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x[None].astype(np.float32)})[0][0]


CONFIGS = [
    # (size, scale, features, layers): features/layers shrunk for speed where the size allows
    ("small", 2, None, None),
    ("small", 3, None, None),
    ("small", 4, 8, 1),
    ("small", 1.5, None, None),
    ("medium", 2, 8, None),
    ("large", 2, 8, 2),
    ("large", 1.5, 8, 2),
    ("large", 4, 8, 0),
]


@pytest.mark.parametrize(("size", "scale", "features", "layers"), CONFIGS)
def test_graph_matches_numpy(size: str, scale: float, features: int | None, layers: int | None) -> None:
    state = quicksrnet.random_state(size, scale, seed=7, features=features, layers=layers)
    params = quicksrnet.QuickSRNetParams.from_state(state)
    f, m, anchor = quicksrnet.SIZES[size]
    assert params.features == (features or f)
    assert params.layers == (layers if layers is not None else m)
    assert params.anchor == anchor
    assert params.scale == Fraction(scale).limit_denominator(4)

    rng = np.random.default_rng(1)
    x = rng.random((3, 10, 14)).astype(np.float32)
    model = quicksrnet.build(state)
    got = run(model, x)
    want = reference(state, x, params.scale)
    assert got.shape == (3, int(10 * scale), int(14 * scale))
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
    # the data must exercise both clip bounds, or the test would not see a wrong clip
    assert (want == 0).any() or (want == 1).any() or quicksrnet.SIZES[size][2]


@pytest.mark.parametrize("scale", [2, 1.5])
def test_network_facts(scale: float) -> None:
    net = Network.load(quicksrnet.build(quicksrnet.random_state("small", scale)))
    assert net.scale == Fraction(scale).limit_denominator(4)
    assert net.size.multiple == (2 if scale == 1.5 else 1)
    exclude = get_metadata(net.model)["quant_exclude"].split(",")
    names = {n.name: n.op_type for n in net.model.graph.node}
    assert [names[e] for e in exclude] == ["Clip", "DepthToSpace"]
    assert sum(op == "Clip" for op in names.values()) == 4  # 3 ReLU1 + the final clip


def test_detect_and_errors() -> None:
    state = quicksrnet.random_state("small", 2)
    assert quicksrnet.detect(state)
    assert not quicksrnet.detect({"body.0.weight": np.zeros((1, 1, 3, 3), np.float32)})
    bad = dict(state)
    bad["conv_last.weight"] = np.zeros((5, 32, 3, 3), np.float32)
    with pytest.raises(ModelError, match="matches no scale"):
        quicksrnet.QuickSRNetParams.from_state(bad)
    with pytest.raises(ModelError, match="missing 'cnn.0.weight'"):
        quicksrnet.QuickSRNetParams.from_state({"conv_last.weight": state["conv_last.weight"]})


@pytest.mark.parametrize(("size", "scale"), [("small", 2), ("large", 1.5)])
def test_gray_graph_is_rgb_net_on_replicated_grey(size: str, scale: float) -> None:
    state = quicksrnet.random_state(size, scale, seed=3, features=8, layers=1)
    x = np.random.default_rng(2).random((1, 8, 12)).astype(np.float32)
    got = run(quicksrnet.build(state, channels=1), x)
    want = reference(state, np.repeat(x, 3, axis=0), Fraction(scale).limit_denominator(4)).mean(axis=0, keepdims=True)
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
    with pytest.raises(ModelError, match="1 \\(grey\\) or 3"):
        quicksrnet.build(state, channels=2)


def _card_claims() -> list[tuple[str, int, float]]:
    """(file, scale, Set5 PSNR) for each `<file>.npz Set5 PSNR (xN, Y): P dB` line of MODEL_CARD.md."""
    import re

    card = data.path("quicksrnet", "MODEL_CARD.md")
    if not card.is_file():
        return []
    pattern = r"(\w+\.npz) Set5 PSNR \(x(\d), Y\): ([\d.]+) dB"
    return [(f, int(s), float(p)) for f, s, p in re.findall(pattern, card.read_text())]


@pytest.mark.parametrize(("name", "scale", "stated"), _card_claims())
def test_shipped_weights_reproduce_model_card(shared_data: Path, name: str, scale: int, stated: float) -> None:
    """Each shipped weights file scores the Set5 PSNR its MODEL_CARD.md states, within 0.01 dB."""
    from vssr import metrics

    path = data.path("quicksrnet", name)
    if not path.is_file():
        pytest.skip(f"vssr/data/quicksrnet/{name} is not present")
    model = quicksrnet.build(dict(np.load(path)))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    def upscale(lr: np.ndarray) -> np.ndarray:
        x = lr.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        return sess.run(None, {"input": x})[0][0].transpose(1, 2, 0)

    psnr = metrics.score_sr_set(upscale, metrics.load_sr_set(shared_data / "sr-bench" / "Set5", scale), scale)[0]
    assert abs(psnr - stated) <= 0.01


@pytest.mark.parametrize(
    ("size", "scale", "channels"), [("small", 2, 3), ("small", 3, 1), ("large", 2, 3), ("small", 1.5, 3)]
)
def test_split_identity_is_the_same_function(size: str, scale: float, channels: int) -> None:
    state = quicksrnet.random_state(size, scale, seed=9, features=8, layers=2)
    state["cnn.2.weight"][5, 5, 1, 1] = 0.2  # a channel whose identity tap faded: not split
    x = np.random.default_rng(3).random((channels, 8, 10)).astype(np.float32)
    plain = run(quicksrnet.build(state, channels=channels), x)
    model = quicksrnet.build(state, channels=channels, split_identity=True)
    np.testing.assert_allclose(run(model, x), plain, atol=TOL, rtol=0)
    assert any(n.op_type == "Add" for n in model.graph.node)
