"""Soak (slow tier): 10,000 frames of a tiny network through vspipe, after warm-up: its RSS and open
files stay flat.

vspipe is sampled from outside (/proc/<pid>/status, /proc/<pid>/fd) every 50 ms while it runs
40,000 frames of 160x120 (two 3x3 convolutions); the peak RSS and the descriptors of the last
10,000 frames are compared with those of the 10,000 before. Warm-up is long and is not a leak:
VapourSynth's frame cache (capped here at 64 MB; with its default limit of gigabytes RSS rises
~1 KB per frame for 30k+ frames, a bare std.Expr pipeline too), the allocators and OpenVINO's
buffers fill during the first ~25,000 frames (measured, OpenVINO, 100,000 frames: 189 MB at 2 s,
661 MB at 9 s, 681 MB from 14 s to the end at 45 s; ORT 320x240: 635 MB at 13 s, 639 MB at 67 s).
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
FRAMES = 40_000
"""20,000 frames of warm-up, then two windows of 10,000 compared."""
RSS_GROWTH_LIMIT = 6 << 20
"""Bytes between the peaks of the last two 10,000-frame windows: after warm-up the measured
difference is 0-2 MB; a leak of 600 bytes per frame or more fails."""


def _vspipe() -> str:
    candidate = Path(sys.executable).with_name("vspipe")
    found = str(candidate) if candidate.exists() else shutil.which("vspipe")
    if found is None:
        pytest.skip("vspipe is not installed")
    return found


def _sample(pid: int) -> tuple[int, int] | None:
    """(RSS bytes, open fds) of the process doing the work: pip's `vspipe` is a Python script that
    runs the real vspipe binary as its child, so follow the children down."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if not children:  # not started yet, or done: the wrapper's own numbers would mislead
            return None
        while children:
            pid = int(children[0])
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    if "VmRSS:" not in status:  # exiting
        return None
    return int(status.split("VmRSS:")[1].split()[0]) * 1024, fds


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["ORT(num_streams=2)", "OV(num_streams=2)"])
def test_rss_and_fds_flat_over_10k_frames_after_warm_up(backend: str, tmp_path: Path) -> None:
    if backend.startswith("OV"):
        pytest.importorskip("openvino")
    model_path = tmp_path / "conv.onnx"
    onnx.save_model(nets.conv3x3(layers=2), model_path)
    script = tmp_path / "soak.vpy"
    script.write_text(textwrap.dedent(f"""
        import vapoursynth as vs
        import vssr
        core = vs.core
        core.max_cache_size = 64  # MB; VapourSynth's own frame cache otherwise grows toward gigabytes
        clip = core.std.BlankClip(format=vs.RGBS, width=160, height=120, length={FRAMES}, color=[0.2, 0.5, 0.8])
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
    quarter = len(samples) // 4
    early, late = samples[2 * quarter:3 * quarter], samples[3 * quarter:]  # frames ~20k-30k and ~30k-40k
    rss_growth = max(s[1] for s in late) - max(s[1] for s in early)
    assert rss_growth < RSS_GROWTH_LIMIT, f"RSS grew {rss_growth / 2**20:.1f} MB over {FRAMES} frames"
    assert max(s[2] for s in late) <= max(s[2] for s in early), (early[-1], late[-1])
    print(f"{backend}: {len(samples)} samples over {samples[-1][0]:.1f} s, peak RSS {max(s[1] for s in early) / 2**20:.1f}"
          f" -> {max(s[1] for s in late) / 2**20:.1f} MB, fds {max(s[2] for s in early)} -> {max(s[2] for s in late)}")
