"""Plumbing for the render tests: tiny source clips with sound, `python -m vssr`, framemd5, probes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.pipeline import ROOT

SCRIPT = Path(__file__).with_name("model.vpy")
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
TIMEOUT = 600


def make_clip(path: Path, frames: int = 60, size: str = "64x48", rate: str = "30000/1001",
              matrix: str = "smpte170m") -> Path:
    """A lossless (ffv1) YUV420P8 testsrc clip with a sine sound track and BT.601 (or `matrix`) tags."""
    seconds = f"{frames * 1001 / 30000 + 0.5:.3f}"  # sound a little longer than the video: -t must cut it
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate},trim=end_frame={frames}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "ffv1", "-pix_fmt", "yuv420p", "-colorspace", matrix, "-color_primaries", matrix,
         "-color_trc", matrix, "-color_range", "tv", "-c:a", "flac", str(path)],
        check=True,
    )
    return path


def vssr(*argv: object, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`python -m vssr ARGV` with this checkout first on the path."""
    run = subprocess.run([sys.executable, "-m", "vssr", *map(str, argv)], capture_output=True, text=True,
                         env=ENV, cwd=ROOT, timeout=TIMEOUT, check=False)
    if check and run.returncode != 0:
        raise AssertionError(f"vssr {' '.join(map(str, argv))} exited {run.returncode}:\n{run.stderr}")
    return run


def start_vssr(*argv: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vssr", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)


def framemd5(path: Path) -> list[str]:
    """One md5 per decoded video frame (with its timestamp), as `ffmpeg -f framemd5` prints them."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line and not line.startswith("#")]


def streams(path: Path) -> list[dict[str, object]]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                          "stream=codec_type,duration,nb_frames,r_frame_rate:stream_tags=DURATION",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["streams"]  # type: ignore[no-any-return]


def duration(stream: dict[str, object]) -> float:
    """A stream's duration in seconds (matroska keeps it in a DURATION tag)."""
    if stream.get("duration") not in (None, "N/A"):
        return float(stream["duration"])  # type: ignore[arg-type]
    h, m, s = str(stream["tags"]["DURATION"]).split(":")  # type: ignore[index]
    return int(h) * 3600 + int(m) * 60 + float(s)


def wait_for_segments(work: Path, count: int, process: subprocess.Popen[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while len(list(work.glob("chunk-?????.mkv"))) < count:
        if process.poll() is not None:
            raise AssertionError(f"render ended before {count} chunks:\n{process.communicate()[1]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {count} chunks in {work} after {timeout} s")
        time.sleep(0.05)


def model_args(kind: str, model: Path, clip: Path, extra: Sequence[str] = ()) -> list[str]:
    return ["-a", f"input={clip}", "-a", f"kind={kind}", "-a", f"model={model}", *extra]
