"""End to end: vspipe runs examples/*.vpy into ffmpeg; check frames, size, fps and picture."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pipeline import ROOT, decode_gray, encode


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
