"""A chunked render equals a one-pipe render frame for frame (ffmpeg framemd5 of lossless ffv1),
for spatial (tiled Real-ESRGAN) and temporal filters (RIFE at 2x and 5/2, EDVR's 5-frame window)
with 7 chunks whose borders fall on odd frames."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.render.helpers import SCRIPT, framemd5, model_args, vssr


def odd_chunk_frames(frames: int, chunks: int = 7) -> int:
    """The smallest odd chunk size that cuts `frames` into `chunks` chunks (the last one shorter)."""
    size = next(c for c in range(1, frames + 1) if c % 2 and math.ceil(frames / c) == chunks)
    return size


def render_twice(tmp: Path, args: list[str], frames: int) -> None:
    one, seven = tmp / "one.mkv", tmp / "seven.mkv"
    common = ["--encoder", "-c:v ffv1", "--audio-from", "none"]
    vssr("render", SCRIPT, "-o", one, *args, *common, "--chunk-frames", frames)
    size = odd_chunk_frames(frames)
    vssr("render", SCRIPT, "-o", seven, *args, *common, "--chunk-frames", size, "--workers", 2, "--keep-chunks")
    ranges = json.loads((tmp / "seven.mkv.vssr-work" / "manifest.json").read_text())["ranges"]
    assert len(ranges) == 7 and ranges[0] == [0, size] and ranges[-1][1] == frames
    assert len({b - a for a, b in ranges}) == 2  # a shorter last chunk
    want = framemd5(one)
    assert len(want) == frames
    assert framemd5(seven) == want


def test_realesrgan_tiles(tmp_path: Path, clip: Path, sr_onnx: Path) -> None:
    render_twice(tmp_path, model_args("realesrgan", sr_onnx, clip, ["-a", "tilesize=32"]), 60)


@pytest.mark.slow  # ~30 s each
@pytest.mark.parametrize(("factor", "frames"), [("2", 120), ("5/2", 150)])
def test_rife(tmp_path: Path, clip: Path, rife_pkl: Path, factor: str, frames: int) -> None:
    render_twice(tmp_path, model_args("rife", rife_pkl, clip, ["-a", f"factor={factor}"]), frames)


@pytest.mark.slow  # ~45 s
def test_edvr(tmp_path: Path, clip: Path, edvr_pth: Path) -> None:
    render_twice(tmp_path, model_args("edvr", edvr_pth, clip), 60)
