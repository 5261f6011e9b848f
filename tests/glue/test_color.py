"""YUV and integer clips through the model functions (vssr/glue/color.py): round trips through an
identity net keep format, props and colours; missing props are errors; float RGB is untouched."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

import vssr
from tests import nets
from tests.filters.test_edvr import STATE as EDVR_STATE
from tests.filters.test_rife import pkl
from vssr.arch import quicksrnet
from vssr.backends import Backend

ORT = Backend.ORT(threads=1)
_HI, _LO = 0.75, 0.1
BARS = [(_HI, _HI, _HI), (_HI, _HI, _LO), (_LO, _HI, _HI), (_LO, _HI, _LO), (_HI, _LO, _HI), (_HI, _LO, _LO),
        (_LO, _LO, _HI), (_LO, _LO, _LO)]
"""Colour bars kept off 0 and 1 (a bar at 0 comes back from quantised YUV slightly below it, and the
clamp to [0, 1] would move it)."""
BAR = 48
COLOR_PROPS = ("_Matrix", "_Range", "_Transfer", "_Primaries", "_ChromaLocation")


def rgb_bars(core: vs.Core, height: int = 16) -> vs.VideoNode:
    bars = [core.std.BlankClip(width=BAR, height=height, format=vs.RGBS, color=list(c), length=2) for c in BARS]
    return core.std.StackHorizontal(bars)


def tagged(clip: vs.VideoNode, fmt: int, matrix: int, transfer: int, primaries: int, full: bool) -> vs.VideoNode:
    out = vs.core.resize.Bicubic(clip, format=fmt, matrix=matrix, range=int(full))
    return vs.core.std.SetFrameProps(out, _Transfer=transfer, _Primaries=primaries)


def planes(frame: vs.VideoFrame) -> list[np.ndarray]:
    return [np.asarray(frame[p]).astype(np.int64) for p in range(frame.format.num_planes)]


def away_from_edges(width: int, step: int, margin: int) -> np.ndarray:
    """Columns at least `margin` from every bar edge (chroma is resampled across the edges)."""
    x = np.arange(width) % step
    return (x >= margin) & (x < step - margin)


CASES = {
    "YUV420P8 BT.601 limited": (vs.YUV420P8, 6, 6, 6, False),
    "YUV420P10 BT.709 limited": (vs.YUV420P10, 1, 1, 1, False),
    "YUV420P10 BT.2020 full": (vs.YUV420P10, 9, 14, 9, True),
    "YUV444P16 BT.709": (vs.YUV444P16, 1, 1, 1, False),
}


@pytest.mark.parametrize("case", CASES)
def test_yuv_round_trip_through_identity(core: vs.Core, case: str) -> None:
    fmt, matrix, transfer, primaries, full = CASES[case]
    for source, margin in (
        (core.std.BlankClip(width=64, height=16, format=vs.RGBS, color=[0.5, 0.5, 0.5], length=2), 0),
        (rgb_bars(core), 12),  # chroma resampling rings up to 5 chroma samples from an edge
    ):
        yuv = tagged(source, fmt, matrix, transfer, primaries, full)
        out = vssr.inference(yuv, nets.identity(), backend=ORT)
        assert out.format.id == yuv.format.id and (out.width, out.height) == (yuv.width, yuv.height)
        got, want = out.get_frame(1), yuv.get_frame(1)
        for prop in COLOR_PROPS:
            assert got.props.get(prop) == want.props.get(prop), prop
        sub = yuv.format.subsampling_w
        for p, (a, b) in enumerate(zip(planes(got), planes(want), strict=True)):
            step, edge = (BAR, margin) if p == 0 else (BAR >> sub, margin >> sub)
            keep = away_from_edges(a.shape[1], step, edge)
            assert np.abs(a - b)[:, keep].max() <= 1, (case, p)


def test_integer_rgb_and_gray_round_trip_exactly(core: vs.Core) -> None:
    rgb = core.resize.Point(rgb_bars(core), format=vs.RGB24)
    out = vssr.inference(rgb, nets.identity(), backend=ORT)
    assert out.format.id == vs.RGB24
    assert all((a == b).all() for a, b in zip(planes(out.get_frame(0)), planes(rgb.get_frame(0)), strict=True))
    gray = core.std.BlankClip(width=16, height=8, format=vs.GRAY10, color=[700])
    out = vssr.inference(gray, nets.identity(1), backend=ORT)
    assert out.format.id == vs.GRAY10 and int(np.asarray(out.get_frame(0)[0]).max()) == 700


def test_float_rgb_path_is_unchanged_and_unclamped(core: vs.Core) -> None:
    clip = core.std.BlankClip(width=16, height=8, format=vs.RGBS, color=[1.5, -0.25, 0.5])
    out = vssr.inference(clip, nets.identity(), backend=ORT)
    assert out.format.id == vs.RGBS
    assert [float(np.asarray(out.get_frame(0)[p])[0, 0]) for p in range(3)] == [1.5, -0.25, 0.5]


def test_output_is_clamped_before_integer_conversion(core: vs.Core) -> None:
    # an out-of-gamut YUV colour becomes RGB outside [0, 1]: clamped, as the converted clip would be
    blank = core.std.BlankClip(width=16, height=8, format=vs.YUV444P8, color=[128, 20, 235])
    clip = core.std.SetFrameProps(blank, _Matrix=1)
    out = vssr.inference(clip, nets.identity(), backend=ORT, format=vs.RGBS)
    values = np.stack(planes_f(out.get_frame(0)))
    assert values.min() == 0.0 and values.max() == 1.0


def planes_f(frame: vs.VideoFrame) -> list[np.ndarray]:
    return [np.asarray(frame[p]).astype(np.float32) for p in range(frame.format.num_planes)]


def test_format_asks_for_another_output(core: vs.Core, tmp_path: Path) -> None:
    yuv = tagged(rgb_bars(core), vs.YUV420P8, 1, 1, 1, False)
    out = vssr.inference(yuv, nets.identity(), backend=ORT, format=vs.YUV444P16)
    assert out.format.id == vs.YUV444P16 and out.get_frame(0).props["_Matrix"] == 1
    with pytest.raises(vs.Error, match="format=YUV420P8: the RGBS input has no YUV matrix"):
        vssr.inference(rgb_bars(core), nets.identity(), backend=ORT, format=vs.YUV420P8)
    with pytest.raises(vs.Error, match="format must be a vs.PresetVideoFormat"):
        vssr.inference(yuv, nets.identity(), backend=ORT, format="yuv")
    with pytest.raises(vs.Error, match="4:4:4 format"):
        np.savez(tmp_path / "x1.5.npz", **quicksrnet.random_state("small", 1.5, seed=1, features=8, layers=1))
        vssr.QuickSRNet(yuv.std.Crop(right=2), weights=tmp_path / "x1.5.npz", backend=ORT)  # 382 x 1.5: odd


def test_missing_props_are_errors_naming_them(core: vs.Core) -> None:
    yuv = core.std.BlankClip(width=720, height=480, format=vs.YUV420P8)
    with pytest.raises(vs.Error, match=r"vssr.RealESRGAN: clip is YUV420P8 and its frame 0 has no _Matrix prop.*"
                                       r"SetFrameProps\(clip, _Matrix=1\).*usually 6"):
        vssr.RealESRGAN(yuv, backend=ORT)
    with pytest.raises(vs.Error, match=r"_Matrix=2 \(unspecified\)"):
        vssr.inference(core.std.SetFrameProps(yuv, _Matrix=2), nets.identity(), backend=ORT)
    with pytest.raises(vs.Error, match="needs the _Transfer prop"):
        vssr.inference(core.std.SetFrameProps(yuv, _Matrix=10), nets.identity(), backend=ORT)


def test_missing_range_means_limited_for_yuv(core: vs.Core) -> None:
    yuv = tagged(rgb_bars(core), vs.YUV444P8, 1, 1, 1, False).std.RemoveFrameProps("_Range")
    out = vssr.inference(yuv, nets.identity(), backend=ORT)
    assert out.get_frame(0).props["_Range"] == 0
    assert np.abs(np.stack(planes(out.get_frame(0))) - np.stack(planes(yuv.get_frame(0)))).max() <= 1


def _models(tmp: Path) -> dict[str, Callable[[vs.VideoNode], vs.VideoNode]]:
    state = quicksrnet.random_state("small", 2, seed=5, features=8, layers=1)
    np.savez(tmp / "q.npz", **state)
    rife = pkl(tmp, "4.6")
    return {
        "RealESRGAN": lambda c, **k: vssr.RealESRGAN(c, model=nets_path(tmp), backend=ORT, **k),
        "QuickSRNet": lambda c, **k: vssr.QuickSRNet(c, weights=tmp / "q.npz", backend=ORT, **k),
        "RIFE": lambda c, **k: vssr.RIFE(c, model=rife, sc=False, backend=ORT, **k),
        "EDVR": lambda c, **k: vssr.EDVR(c, EDVR_STATE, backend=ORT, **k),
        "inference": lambda c, **k: vssr.inference(c, nets.pixel_shuffle_x2(), backend=ORT, **k),
    }


def nets_path(tmp: Path) -> Path:
    import onnx

    path = tmp / "x2.onnx"
    onnx.save(nets.pixel_shuffle_x2(), path)
    return path


@pytest.mark.parametrize("name", ["RealESRGAN", "QuickSRNet", "RIFE", "EDVR", "inference"])
def test_every_model_function_takes_yuv(core: vs.Core, tmp_path: Path, name: str) -> None:
    """model(yuv) equals the model on the RGB conversion, clamped and converted back."""
    model = _models(tmp_path)[name]
    assert "format" in inspect.signature(getattr(vssr, name)).parameters
    yuv = tagged(rgb_bars(core, height=32)[:2].std.Crop(right=3 * BAR), vs.YUV420P10, 1, 1, 1, False)
    yuv = core.std.SetFrameProps(yuv, _ChromaLocation=2)
    out = model(yuv)
    rgb = core.resize.Bicubic(yuv, format=vs.RGBS, matrix_in=1)
    want = core.resize.Bicubic(core.std.Limiter(model(rgb), 0.0, 1.0), format=vs.YUV420P10, matrix=1, range=0,
                               chromaloc=2)
    assert out.format.id == vs.YUV420P10 and (out.width, out.height, out.num_frames) == (
        want.width, want.height, want.num_frames)
    got, ref = out.get_frame(1), want.get_frame(1)
    assert got.props["_ChromaLocation"] == 2 and got.props["_Matrix"] == 1
    for a, b in zip(planes(got), planes(ref), strict=True):
        assert np.abs(a - b).max() <= 1


def test_only_the_clips_that_need_it_are_converted(core: vs.Core) -> None:
    """inference() with a float RGB clip and an integer GRAY one: the output stays unclamped RGBS."""
    rgb = core.std.BlankClip(width=16, height=8, format=vs.RGBS, color=[1.5, 0.25, 0.5])
    gray = core.std.BlankClip(width=16, height=8, format=vs.GRAY8, color=[235])
    out = vssr.inference([rgb, gray], nets.conv3x3(channels=4, out_channels=3), backend=ORT)
    want = vssr.inference([rgb, core.resize.Point(gray, format=vs.GRAYS)], nets.conv3x3(channels=4, out_channels=3),
                          backend=ORT)
    assert out.format.id == vs.RGBS
    np.testing.assert_array_equal(np.stack(planes_f(out.get_frame(0))), np.stack(planes_f(want.get_frame(0))))


@pytest.mark.parametrize("fmt", [vs.YUV444PS, vs.YUV444PH])
def test_float_yuv_is_converted_too(core: vs.Core, fmt: int) -> None:
    rgb = core.std.BlankClip(width=16, height=16, format=vs.RGBS, color=[0.5, 0.3, 0.2], length=1)
    yuv = core.resize.Bicubic(rgb, format=fmt, matrix=1)
    out = vssr.inference(yuv, nets.identity(), ORT)
    assert out.format.id == fmt
    back = core.resize.Bicubic(out, format=vs.RGBS, matrix_in=1).get_frame(0)
    np.testing.assert_allclose([float(np.asarray(back[p]).mean()) for p in range(3)], [0.5, 0.3, 0.2], atol=2e-3)


def test_a_gray_output_format_uses_the_sources_matrix(core: vs.Core) -> None:
    yuv = core.std.BlankClip(width=16, height=16, format=vs.YUV420P8, color=[120, 128, 128], length=1)
    yuv = core.std.SetFrameProps(yuv, _Matrix=1)
    out = vssr.inference(yuv, nets.identity(), ORT, format=vs.GRAY8)
    assert out.format.id == vs.GRAY8 and abs(int(np.asarray(out.get_frame(0)[0]).mean()) - 120) <= 1
    rgb = core.std.BlankClip(width=16, height=16, format=vs.RGBS, length=1)
    with pytest.raises(vs.Error, match="format=Gray8: the RGBS input has no YUV matrix"):
        vssr.inference(rgb, nets.identity(), ORT, format=vs.GRAY8)


def test_errors_name_the_callers_func_and_lists_share_one_precision(core: vs.Core) -> None:
    untagged = core.std.BlankClip(width=16, height=16, format=vs.YUV420P8, length=1)
    with pytest.raises(vs.Error, match=r"MyFilter: clip is YUV420P8"):
        vssr.inference(untagged, nets.identity(), ORT, func="MyFilter")
    half = core.std.BlankClip(width=16, height=16, format=vs.RGBH, length=1)
    tagged8 = core.std.SetFrameProps(untagged, _Matrix=1)
    out = vssr.inference([half, tagged8], nets.conv3x3(channels=6, out_channels=3), ORT)  # YUV goes to RGBH like the first clip
    assert out.format.id == vs.RGBH


def test_vsmlrt_aliases_return_the_public_configs() -> None:
    config = vssr.Backend.OV_CPU(bf16=True)
    assert isinstance(config, vssr.Backend.OV) and config.precision == "bf16"
    with pytest.raises(vs.Error, match="num_streams"):
        dataclasses.replace(config, num_streams=0)
