"""Soak (slow tier): 10,000 frames of a tiny network through vspipe; its RSS and open files stay flat.

vspipe is sampled from outside (/proc/<pid>/status, /proc/<pid>/fd) while it runs; the samples of
the last fifth of the run are compared with those right after warm-up (the first fifth), so a
per-frame leak of even a few hundred bytes (10,000 frames -> megabytes) or one descriptor shows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import onnx
import pytest

from tests import nets

ROOT = Path(__file__).resolve().parents[1]
FRAMES = 10_000
RSS_GROWTH_LIMIT = 8 << 20
"""Bytes: allocator noise over a run is ~1-2 MB; a leak of 1 KB per frame would be 8 MB by the end."""


def _vspipe() -> str:
    candidate = Path(sys.executable).with_name("vspipe")
    found = str(candidate) if candidate.exists() else shutil.which("vspipe")
    if found is None:
        pytest.skip("vspipe is not installed")
    return found


def _sample(pid: int) -> tuple[int, int] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    return int(status.split("VmRSS:")[1].split()[0]) * 1024, fds


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["ORT(num_streams=2)", "OV(num_streams=2)"])
def test_rss_and_fds_flat_over_10k_frames(backend: str, tmp_path: Path) -> None:
    if backend.startswith("OV"):
        pytest.importorskip("openvino")
    model_path = tmp_path / "conv.onnx"
    onnx.save_model(nets.conv3x3(layers=2), model_path)
    script = tmp_path / "soak.vpy"
    script.write_text(textwrap.dedent(f"""
        import vapoursynth as vs
        import vssr
        core = vs.core
        clip = core.std.BlankClip(format=vs.RGBS, width=64, height=48, length={FRAMES}, color=[0.2, 0.5, 0.8])
        clip = vssr.inference(clip, {str(model_path)!r}, vssr.Backend.{backend})
        clip.set_output()
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VSSR_ENGINE_DIR": str(tmp_path / "engines")}
    process = subprocess.Popen([_vspipe(), str(script), "/dev/null"], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[tuple[float, int, int]] = []
    start = time.monotonic()
    while process.poll() is None:
        if (sample := _sample(process.pid)) is not None:
            samples.append((time.monotonic() - start, *sample))
        time.sleep(0.05)
    _, stderr = process.communicate()
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert f"Output {FRAMES} frames" in stderr.decode()
    assert len(samples) >= 20, f"too few samples ({len(samples)}) to judge; the run took {time.monotonic() - start:.1f} s"
    fifth = len(samples) // 5
    early, late = samples[fifth:2 * fifth], samples[-fifth:]
    rss_growth = max(s[1] for s in late) - max(s[1] for s in early)
    assert rss_growth < RSS_GROWTH_LIMIT, f"RSS grew {rss_growth / 2**20:.1f} MB over {FRAMES} frames"
    assert max(s[2] for s in late) <= max(s[2] for s in early), (early[-1], late[-1])
    print(f"{backend}: {len(samples)} samples over {samples[-1][0]:.1f} s, RSS {early[-1][1] / 2**20:.1f} -> "
          f"{late[-1][1] / 2**20:.1f} MB (growth of the peak {rss_growth / 2**20:+.2f} MB), fds {early[-1][2]} -> "
          f"{late[-1][2]}")
