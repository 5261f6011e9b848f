"""vssr.QuickSRNet filter: RGB and GRAY output vs the numpy reference network, tiling, errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

from tests.arch.test_quicksrnet import reference
from vssr.arch import quicksrnet
from vssr.backends import Backend
from vssr.filters.quicksrnet import QuickSRNet, shipped_weights


def _clip(core: vs.Core, data: np.ndarray, fmt: int) -> vs.VideoNode:
    length, c, h, w = data.shape
    blank = core.std.BlankClip(width=w, height=h, format=fmt, length=length)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        f = f.copy()
        for p in range(c):
            np.asarray(f[p])[:] = data[n, p]
        return f

    return core.std.ModifyFrame(blank, blank, fill)


@pytest.fixture
def weights(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    state = quicksrnet.random_state("small", 2, seed=5, features=8, layers=1)
    path = tmp_path / "w.npz"
    np.savez(path, **state)
    return path, state


@pytest.mark.parametrize("tilesize", [None, 8])
def test_rgb_matches_reference(
    core: vs.Core, weights: tuple[Path, dict[str, np.ndarray]], tilesize: int | None
) -> None:
    path, state = weights
    data = np.random.default_rng(0).random((2, 3, 12, 16)).astype(np.float32)
    out = QuickSRNet(_clip(core, data, vs.RGBS), weights=path, backend=Backend.ORT(threads=1), tilesize=tilesize)
    assert (out.width, out.height, out.format.id) == (32, 24, vs.RGBS)
    for n in range(2):
        got = np.stack([np.asarray(out.get_frame(n)[p]) for p in range(3)])
        np.testing.assert_allclose(got, reference(state, data[n], Fraction(2)), atol=1e-5)


def test_gray_is_mean_of_rgb_net(core: vs.Core, weights: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, state = weights
    data = np.random.default_rng(1).random((1, 1, 10, 10)).astype(np.float32)
    out = QuickSRNet(_clip(core, data, vs.GRAYS), weights=path, backend=Backend.ORT(threads=1))
    assert out.format.id == vs.GRAYS
    want = reference(state, np.repeat(data[0], 3, axis=0), Fraction(2)).mean(axis=0)
    np.testing.assert_allclose(np.asarray(out.get_frame(0)[0]), want, atol=1e-5)


def test_errors(core: vs.Core, tmp_path: Path) -> None:
    rgb = core.std.BlankClip(width=8, height=8, format=vs.RGBS, length=1)
    with pytest.raises(vs.Error, match="vssr.QuickSRNet: size must be one of"):
        QuickSRNet(rgb, size="huge")
    with pytest.raises(vs.Error, match="scale must be one of"):
        QuickSRNet(rgb, scale=5)
    with pytest.raises(vs.Error, match="does not exist"):
        QuickSRNet(rgb, weights=tmp_path / "missing.npz")
    with pytest.raises(vs.Error, match="has no _Matrix prop"):
        QuickSRNet(core.std.BlankClip(format=vs.YUV420P8))
    if ("large", Fraction(4)) not in shipped_weights():
        with pytest.raises(vs.Error, match="no shipped weights for size='large' scale=4; available"):
            QuickSRNet(rgb, size="large", scale=4)


def test_int8_calibrated_on_the_clip(
    core: vs.Core, weights: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "models"))
    path, state = weights
    data = np.random.default_rng(4).random((3, 1, 16, 16)).astype(np.float32)
    clip = _clip(core, data, vs.GRAYS)
    out = QuickSRNet(clip, weights=path, int8="minmax", calibration_frames=2, backend=Backend.ORT(threads=1))
    assert len(list((tmp_path / "models" / "int8").glob("*_gray_int8u8_minmax_*.onnx"))) == 1
    want = reference(state, np.repeat(data[2], 3, axis=0), Fraction(2)).mean(axis=0)
    got = np.asarray(out.get_frame(2)[0])
    assert np.abs(got - want).mean() < 0.02  # int8: close, not equal
    with pytest.raises(vs.Error, match="int8 must be one of"):
        QuickSRNet(clip, weights=path, int8="kl")
