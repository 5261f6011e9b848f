"""vssr's INFO records (build progress, backend choices) reach VapourSynth's message log.

VSScript hosts (vspipe, vspreview) install VapourSynth's logging bridge on the root logger; the
`vssr` logger has to let INFO through for it, since Python's default level is WARNING.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

import vssr
from vssr import cli

ROOT = Path(__file__).resolve().parents[2]


def test_import_lets_info_through() -> None:
    assert vssr.__name__ == "vssr" and logging.getLogger("vssr").getEffectiveLevel() == logging.INFO


def test_cli_quiet_by_default(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    logger = logging.getLogger("vssr")
    try:
        assert cli.main(["engines", "list", "--folder", str(tmp_path)]) == 0
        assert logger.level == logging.WARNING  # INFO would leak into the command's stderr otherwise
    finally:
        logger.setLevel(logging.INFO)


def test_tensorrt_build_progress_shows_in_vspipe(tmp_path: Path) -> None:
    """A script that builds an engine (TensorRT-RTX builds on the CPU): vspipe prints its progress, once."""
    pytest.importorskip("tensorrt_rtx")
    script = tmp_path / "build.vpy"
    script.write_text(
        "import vapoursynth as vs\n"
        "from tests import nets\n"
        "import vssr\n"
        "from vssr.types import ShapeProfile\n"
        f"backend = vssr.Backend.TRT_RTX(engine_folder={str(tmp_path)!r})\n"
        "backend.build_engine(vssr.Network.load(nets.conv3x3()), ShapeProfile.static(32, 32))\n"
        "vs.core.std.BlankClip(format=vs.GRAY8, width=16, height=16, length=1).set_output()\n"
    )
    vspipe = Path(sys.executable).with_name("vspipe")
    run = subprocess.run([str(vspipe), str(script), "--info"], capture_output=True, text=True, timeout=300, check=False,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert sum(line.startswith("Information: building TensorRT engine conv3x3x1.32x32") for line in lines) == 1
    assert any(line.startswith("Information: TensorRT build: Building engine (") for line in lines)
    assert any(line.startswith("Information: TensorRT build: Building engine 1/") for line in lines)
