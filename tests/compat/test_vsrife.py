"""vs-rife call sites run unchanged through vssr.compat.vsrife and equal the native vssr.RIFE calls."""

from __future__ import annotations

from pathlib import Path

import pytest
import vapoursynth as vs

import vssr
from tests.compat.test_vsmlrt import assert_same, source
from tests.filters.test_rife import pkl
from vssr.compat import vsrife
from vssr.compat.vsrife import rife


@pytest.fixture
def vsrife_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """vs-rife's models folder, with vs-rife's file names (and a 0-byte placeholder, as vs-rife ships)."""
    folder = tmp_path / "vsrife-models"
    folder.mkdir()
    pkl(tmp_path, "4.25").rename(folder / "flownet_v4.25.pkl")
    pkl(tmp_path, "4.22-lite", seed=3).rename(folder / "flownet_v4.22.lite.pkl")
    (folder / "flownet_v4.26.pkl").write_bytes(b"")
    monkeypatch.setattr(vsrife, "model_dir", str(folder))
    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "vssr-models"))
    return folder


def test_readme_call(vsrife_dir: Path) -> None:
    """vs-rife's README: `ret = rife(clip)` (model 4.25, x2, no scene detection; default backends)."""
    clip = source(64, 32, n=3)
    out = rife(clip)
    native = vssr.RIFE(clip, model=vsrife_dir / "flownet_v4.25.pkl", multi=2, sc=False)
    assert out.num_frames == 6
    assert_same(out, native)


def test_lite_name_factor_and_fps(vsrife_dir: Path) -> None:
    clip = source(64, 32, n=3)
    weights = vsrife_dir / "flownet_v4.22.lite.pkl"
    assert_same(rife(clip, model="4.22.lite", factor_num=3, factor_den=1),
                vssr.RIFE(clip, model=weights, multi=3, sc=False))
    assert_same(rife(clip, model="4.22.lite", fps_num=50, fps_den=1, factor_num=7),  # fps overrides the factor
                vssr.RIFE(clip, model=weights, fps_num=50, fps_den=1, sc=False))
    # sc with props only (sc_threshold=None), as vs-rife documents for pre-detected cuts
    cut = vs.core.std.SetFrameProps(clip[0], _SceneChangeNext=1) + clip[1:]
    assert_same(rife(cut, model="4.22.lite", sc=True, sc_threshold=None),
                vssr.RIFE(cut, model=weights, multi=2, sc=True, sc_threshold=None))


def test_missing_unsupported_and_placeholder_models(vsrife_dir: Path) -> None:
    with pytest.raises(vs.Error, match=r"flownet_v4.26.pkl is not in .*python -m vsrife"):
        rife(source(), model="4.26")  # vs-rife's 0-byte placeholder is not a model
    with pytest.raises(vs.Error, match="model must be one of"):
        rife(source(), model="4.25-lite")
    with pytest.raises(vs.Error, match=r"flownet_v4.0.pkl is not in .*python -m vsrife"):
        rife(source(), model="4.0")  # every vs-rife version is built; this one is not downloaded
