"""Modulated deformable conv: native DeformConv and the GridSample decomposition vs numpy."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from tests.arch.edvr_numpy import conv2d
from tests.arch.edvr_numpy import modulated_deform_conv as np_deform
from vssr.arch.deform import DEFORM_MODES, deform_groups, modulated_deform_conv
from vssr.arch.ops import GraphBuilder


def _pack(rng: np.random.Generator, c: int, groups: int, offset_std: float) -> dict[str, np.ndarray]:
    return {
        "weight": rng.normal(0, 0.3, (c, c, 3, 3)).astype(np.float32),
        "bias": rng.normal(0, 0.1, c).astype(np.float32),
        "conv_offset.weight": rng.normal(0, offset_std, (27 * groups, c, 3, 3)).astype(np.float32),
        "conv_offset.bias": rng.normal(0, 0.5, 27 * groups).astype(np.float32),
    }


def _run(pack: dict[str, np.ndarray], mode: str, x: np.ndarray, feat: np.ndarray) -> np.ndarray:
    g = GraphBuilder("dcn")
    xi = g.input("x", None, shape=["N", x.shape[1], "H", "W"])
    fi = g.input("feat", None, shape=["N", feat.shape[1], "H", "W"])
    g.output(modulated_deform_conv(g, xi, fi, pack, "dcn", mode=mode), "out", x.shape[1])  # type: ignore[arg-type]
    session = ort.InferenceSession(g.model(scale=1).SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x, "feat": feat})[0]


def _reference(pack: dict[str, np.ndarray], x: np.ndarray, feat: np.ndarray) -> np.ndarray:
    outs = []
    for xb, fb in zip(x, feat, strict=True):
        o = conv2d(fb, pack["conv_offset.weight"], pack["conv_offset.bias"])
        n = o.shape[0] // 3
        outs.append(np_deform(xb, o[:2 * n], 1 / (1 + np.exp(-o[2 * n:])), pack["weight"], pack["bias"]))
    return np.stack(outs)


@pytest.mark.parametrize("mode", DEFORM_MODES)
@pytest.mark.parametrize(("c", "groups", "n", "h", "w", "offset_std"),
                         [(8, 8, 1, 9, 13, 0.3), (16, 8, 2, 12, 10, 1.0), (8, 2, 1, 7, 7, 2.0), (4, 1, 3, 5, 11, 0.5)])
def test_matches_numpy(mode: str, c: int, groups: int, n: int, h: int, w: int, offset_std: float) -> None:
    rng = np.random.default_rng(c * 100 + groups + h)
    pack = _pack(rng, c, groups, offset_std)
    x = rng.normal(0, 1, (n, c, h, w)).astype(np.float32)
    feat = rng.normal(0, 1, (n, c, h, w)).astype(np.float32)
    want = _reference(pack, x, feat)
    offsets = np.abs(conv2d(feat[0], pack["conv_offset.weight"], pack["conv_offset.bias"])[:18 * groups])
    assert offsets.max() > 2, "offsets should move samples by whole pixels and outside the image"
    got = _run(pack, mode, x, feat)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_decomposed_equals_native() -> None:
    rng = np.random.default_rng(7)
    pack = _pack(rng, 16, 8, 1.0)
    x = rng.normal(0, 1, (1, 16, 20, 24)).astype(np.float32)
    feat = rng.normal(0, 1, (1, 16, 20, 24)).astype(np.float32)
    native, decomposed = _run(pack, "native", x, feat), _run(pack, "decomposed", x, feat)
    assert np.abs(native - decomposed).max() <= 1e-4


def test_groups_from_weight_and_bad_mode() -> None:
    pack = _pack(np.random.default_rng(0), 8, 4, 0.1)
    assert deform_groups(pack["conv_offset.weight"]) == 4
    with pytest.raises(ValueError, match="deform mode"):
        modulated_deform_conv(GraphBuilder("x"), "x", "f", pack, "d", mode="fast")  # type: ignore[arg-type]
