"""vs-rife call sites run unchanged through vssr.compat.vsrife and equal the native vssr.RIFE calls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import vapoursynth as vs

import vssr
from tests.compat.test_vsmlrt import assert_same, source
from tests.filters.test_rife import pkl
from tests.test_download import Server, rife_bytes, serving
from vssr.compat import vsrife
from vssr.compat.vsrife import rife
from vssr.download import MIRROR_ENV


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


@pytest.fixture
def server() -> Iterator[Server]:
    """tests/test_download.py's local HTTP server, as the mirror auto_download fetches from."""
    with serving() as srv:
        yield srv


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


def test_auto_download_fetches_with_vssrs_downloader(vsrife_dir: Path, server: Server, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    """auto_download=True: a missing version comes from the mirror (a real HTTP server) into models/rife/."""
    weights = rife_bytes(tmp_path, "4.22")
    server.files["/flownet_v4.22.pkl"] = weights
    monkeypatch.setenv(MIRROR_ENV, server.url)
    clip = source(64, 32, n=3)
    with pytest.raises(vs.Error, match=r"pass auto_download=True, run `vssr download rife 4.22`"):
        rife(clip, model="4.22")  # without it: nothing is fetched
    assert server.requests == []
    out = rife(clip, model="4.22", auto_download=True)
    saved = tmp_path / "vssr-models" / "rife" / "flownet_v4.22.pkl"
    assert saved.read_bytes() == weights and server.requests == [("/flownet_v4.22.pkl", None)]
    assert_same(out, vssr.RIFE(clip, model=saved, multi=2, sc=False))
    rife(clip, model="4.22", auto_download=True)  # present now: no second request
    assert len(server.requests) == 1


def test_auto_download_failures_are_script_errors(vsrife_dir: Path, server: Server, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv(MIRROR_ENV, server.url)
    rife_dir = tmp_path / "vssr-models" / "rife"
    with pytest.raises(vs.Error, match=r"vsrife.rife: model='4.6', auto_download=True: .*404.*yourself"):
        rife(source(), model="4.6", auto_download=True)  # the mirror does not have it
    server.files["/flownet_v4.6.pkl"] = b"not a checkpoint"
    with pytest.raises(vs.Error, match=r"auto_download=True: the file does not load as rife weights.*removed"):
        rife(source(), model="4.6", auto_download=True)
    assert not rife_dir.exists() or list(rife_dir.iterdir()) == []  # nothing half-written or unverified is left
