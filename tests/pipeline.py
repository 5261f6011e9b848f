"""End-to-end plumbing shared by the tests: vspipe SCRIPT -c y4m - | ffmpeg, then ffprobe."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
VSPIPE = Path(sys.executable).with_name("vspipe")
TIMEOUT = 300  # seconds for one small encode; far above the few seconds it takes


def encode(script: Path, out: Path, **args: object) -> dict[str, object]:
    """vspipe SCRIPT -c y4m - | ffmpeg -> out; returns ffprobe's stream info."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    cmd = [str(VSPIPE), "-c", "y4m"]
    for k, v in args.items():
        cmd += ["-a", f"{k}={v}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # vspipe's log goes to a file, not a pipe nobody reads while ffmpeg runs (a full pipe would
    # block vspipe and with it ffmpeg); timeouts turn any hang into a failure with the log
    with tempfile.TemporaryFile() as log:
        vspipe = subprocess.Popen([*cmd, str(script), "-"], stdout=subprocess.PIPE, stderr=log, cwd=ROOT, env=env)
        try:
            ffmpeg = subprocess.run(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", "-", "-c:v", "ffv1", str(out)],
                stdin=vspipe.stdout, capture_output=True, check=False, timeout=TIMEOUT,
            )
            vspipe.stdout.close()  # type: ignore[union-attr]
            code = vspipe.wait(timeout=TIMEOUT)
        finally:
            if vspipe.poll() is None:
                vspipe.kill()
                vspipe.wait()
            log.seek(0)
            err = log.read().decode(errors="replace")
        assert code == 0, err
    assert ffmpeg.returncode == 0, ffmpeg.stderr.decode()
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=width,height,nb_read_frames,r_frame_rate", "-of", "json", str(out)],
        capture_output=True, check=True,
    )
    return json.loads(probe.stdout)["streams"][0]  # type: ignore[no-any-return]


def decode_gray(path: Path, width: int, height: int) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True, check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width)
