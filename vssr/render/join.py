"""Join segments with ffmpeg's concat demuxer (no re-encoding) and copy sound and subtitles from
a source file, trimmed to the video's duration."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from .chunk import BITEXACT
from .errors import RenderError

__all__ = ["join_segments"]

logger = logging.getLogger(__name__)


def _concat_line(path: Path) -> str:
    quoted = str(path.resolve()).replace("'", "'\\''")  # the concat demuxer's quoting
    return f"file '{quoted}'\n"


def join_segments(segments: Sequence[Path], out: Path, *, frames: int, fps: Fraction,
                  audio_from: Path | None = None) -> None:
    """Write `out` (through a temporary name) from the segments in order, plus the audio and
    subtitle streams of `audio_from` cut at the video's duration (frames / fps).

    Raises:
        RenderError: ffmpeg failed (its message is included).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    listing = out.with_name(f".{out.name}.concat.txt")
    partial = out.with_name(f".{out.stem}.vssr-partial{out.suffix or '.mkv'}")
    listing.write_text("".join(_concat_line(p) for p in segments))
    # -t cuts every stream at the video's end: sound follows the frames, never runs past them
    ending = ["-c", "copy", "-t", f"{float(frames / fps):.6f}", "-strict", "experimental", *BITEXACT, str(partial)]
    concat = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
              "-f", "concat", "-safe", "0", "-i", str(listing)]
    if audio_from is None:
        attempts = [[*concat, "-map", "0:v", *ending]]
    else:
        with_source = [*concat, "-i", str(audio_from), "-map", "0:v", "-map", "1:a?"]
        # a container that cannot hold the source's subtitles (mp4 and SubRip) still gets the sound
        attempts = [[*with_source, "-map", "1:s?", *ending], [*with_source, *ending]]
    try:
        for number, cmd in enumerate(attempts):
            run = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if run.returncode == 0:
                if number:
                    logger.warning("%s cannot hold the subtitles of %s; they were left out", out.name, audio_from)
                os.replace(partial, out)
                return
        raise RenderError(f"joining the segments into {out} failed:\n{run.stderr.strip()}")
    finally:
        partial.unlink(missing_ok=True)
        listing.unlink(missing_ok=True)
