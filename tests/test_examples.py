"""End to end: vspipe runs examples/*.vpy into ffmpeg; check frames, size, fps and picture."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
VSPIPE = Path(sys.executable).with_name("vspipe")


def encode(script: Path, out: Path, **args: object) -> dict[str, object]:
    """vspipe SCRIPT -c y4m - | ffmpeg -> out; returns ffprobe's stream info."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    cmd = [str(VSPIPE), "-c", "y4m"]
    for k, v in args.items():
        cmd += ["-a", f"{k}={v}"]
    vspipe = subprocess.Popen([*cmd, str(script), "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    ffmpeg = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", "-", "-c:v", "ffv1", str(out)],
        stdin=vspipe.stdout, capture_output=True,
    )
    vspipe.stdout.close()  # type: ignore[union-attr]
    err = vspipe.stderr.read().decode()  # type: ignore[union-attr]
    assert vspipe.wait() == 0, err
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


@pytest.mark.parametrize("fp16", [0, 1])
def test_realesrgan_example_through_vspipe_and_ffmpeg(tmp_path: Path, fp16: int) -> None:
    out = tmp_path / "out.mkv"
    info = encode(ROOT / "examples" / "realesrgan.vpy", out, frames=3, width=96, model="animevideov3-x2", fp16=fp16)
    assert (info["width"], info["height"]) == (192, 108)
    assert int(info["nb_read_frames"]) == 3  # type: ignore[call-overload]
    assert info["r_frame_rate"] == "25/1"
    frames = decode_gray(out, 192, 108)
    assert frames.std() > 10  # a picture, not a blank frame


@pytest.mark.parametrize("extra", [{}, {"luma": 1, "int8": "minmax"}])
def test_quicksrnet_example_through_vspipe_and_ffmpeg(tmp_path: Path, extra: dict[str, object]) -> None:
    out = tmp_path / "out.mkv"
    info = encode(ROOT / "examples" / "quicksrnet.vpy", out, frames=3, width=96, **extra)
    assert (info["width"], info["height"]) == (192, 108)
    assert int(info["nb_read_frames"]) == 3  # type: ignore[call-overload]
    assert decode_gray(out, 192, 108).std() > 10
