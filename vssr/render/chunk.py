"""One chunk: output frames [start, end) of a script, `vspipe -s -e | ffmpeg`, to a segment file.

This module is all a worker needs (a local thread or a Ray task): it evaluates nothing itself,
it runs vspipe on the user's script through wrapper.py and ffmpeg on vspipe's output. The
segment is written under a temporary name and renamed only after its frame count is checked, so
a segment file that exists is complete.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..files import sha256_file
from .errors import ChunkError

__all__ = [
    "WRAPPER",
    "ChunkResult",
    "ChunkSpec",
    "chunk_ranges",
    "disk_full",
    "run_chunk",
    "segment_name",
    "vspipe_command",
    "vspipe_path",
]

WRAPPER = Path(__file__).with_name("wrapper.py")
# muxers write no random ids or dates, so the same frames give the same bytes (resume is checkable)
BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact"]


@dataclass(frozen=True, slots=True)
class ChunkSpec:
    """Everything a worker needs to render one chunk; picklable (sent to Ray workers)."""

    index: int
    start: int  # first output frame
    end: int  # one past the last output frame
    work: str  # the work folder (shared storage for Ray)
    script: str
    args: tuple[tuple[str, str], ...]
    output_index: int
    threads: int  # VapourSynth core threads in the worker (0: VapourSynth's default)
    encoder: tuple[str, ...]  # ffmpeg output options for the video
    y4m: bool  # vspipe -c y4m (YUV/GRAY integer) or -c mkv

    @property
    def frames(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class ChunkResult:
    index: int
    file: str  # segment file name inside the work folder
    frames: int
    size: int
    sha256: str
    seconds: float = field(default=0.0, compare=False)


def chunk_ranges(num_frames: int, chunk_frames: int) -> list[tuple[int, int]]:
    """[start, end) ranges of at most chunk_frames frames covering 0..num_frames."""
    if num_frames <= 0 or chunk_frames <= 0:
        raise ValueError(f"need frames > 0 and chunk frames > 0, got {num_frames} and {chunk_frames}")
    return [(a, min(a + chunk_frames, num_frames)) for a in range(0, num_frames, chunk_frames)]


def segment_name(index: int) -> str:
    return f"chunk-{index:05d}.mkv"


def vspipe_path() -> str:
    """vspipe beside this Python (a venv), else on PATH; VSSR_VSPIPE overrides."""
    if os.environ.get("VSSR_VSPIPE"):
        return os.environ["VSSR_VSPIPE"]
    beside = Path(sys.executable).with_name("vspipe")
    if beside.exists():
        return str(beside)
    found = shutil.which("vspipe")
    if found is None:
        raise ChunkError("vspipe was not found beside Python nor on PATH (set VSSR_VSPIPE to its path)")
    return found


def vspipe_command(script: str, args: Sequence[tuple[str, str]], threads: int, output_index: int) -> list[str]:
    """vspipe's options that evaluate `script` through the wrapper (no range, no output file)."""
    cmd = [vspipe_path(), "-o", str(output_index), "-a", f"vssr_script={script}", "-a", f"vssr_threads={threads}"]
    for name, value in args:
        cmd += ["-a", f"{name}={value}"]
    return cmd


def _prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: children may outlive a killed worker
        return None


_PRCTL = _prctl()  # resolved here, not in the forked child (no dlopen between fork and exec)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # a worker that dies (Ray kills it, the driver gets SIGKILL) takes its vspipe and ffmpeg with
    # it: orphans would go on writing a segment nobody will rename
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(line for line in text.splitlines()[-lines:] if line.strip())


def count_packets(path: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
         "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=False,
    )
    return int(out.stdout.strip().rstrip(",")) if out.returncode == 0 and out.stdout.strip() else -1


def _remove_stale(work: Path, index: int) -> None:
    """Temp and progress files an earlier attempt at this chunk left (a killed worker cannot clean)."""
    for path in work.glob(f"chunk-{index:05d}.*.part.mkv"):
        path.unlink(missing_ok=True)
    for path in work.glob(f"chunk-{index:05d}.*.progress"):
        path.unlink(missing_ok=True)


def run_chunk(spec: ChunkSpec, started: Callable[[list[subprocess.Popen[bytes]]], None] | None = None,
              stop: threading.Event | None = None) -> ChunkResult:
    """Render one chunk to `<work>/chunk-NNNNN.mkv`; returns its frame count, size and sha256.

    `started` receives the two processes (the caller may kill them to stop); `stop` set by the
    caller means a failure that follows is a cancellation, not an error.

    Raises:
        ChunkError: vspipe or ffmpeg failed (with the end of their log), or the segment is short.
    """
    t0 = time.monotonic()
    work = Path(spec.work)
    stem = f"chunk-{spec.index:05d}.{os.getpid()}"
    _remove_stale(work, spec.index)
    part, progress, log = work / f"{stem}.part.mkv", work / f"{stem}.progress", work / f"{stem}.log"
    vspipe = [*vspipe_command(spec.script, spec.args, spec.threads, spec.output_index),
              "-c", "y4m" if spec.y4m else "mkv", "-s", str(spec.start), "-e", str(spec.end - 1), str(WRAPPER), "-"]
    ffmpeg = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
              "-f", "yuv4mpegpipe" if spec.y4m else "matroska", "-i", "-", "-map", "0:v",
              *spec.encoder, *BITEXACT, "-progress", str(progress), "-stats_period", "0.5", "-f", "matroska", str(part)]
    try:
        with open(log, "wb") as log_file:
            # vspipe's log goes to the file, never a pipe nobody reads while ffmpeg runs
            # preexec_fn only calls prctl, resolved before the fork: safe with the driver's threads
            source = subprocess.Popen(vspipe, stdout=subprocess.PIPE, stderr=log_file,
                                      preexec_fn=_die_with_parent, process_group=0)
            try:
                encoder = subprocess.Popen(ffmpeg, stdin=source.stdout, stderr=subprocess.PIPE,
                                           preexec_fn=_die_with_parent, process_group=0)
            finally:
                source.stdout.close()  # type: ignore[union-attr]  # ffmpeg holds the read end
            if started is not None:
                started([source, encoder])
            _, ffmpeg_err = encoder.communicate()
            source.wait()
        if stop is not None and stop.is_set():
            raise ChunkError(f"chunk {spec.index} stopped")
        _check_exit(spec, source.returncode, encoder.returncode, ffmpeg_err.decode(errors="replace"), log)
        frames = count_packets(part)
        if frames != spec.frames:
            raise ChunkError(f"chunk {spec.index} (frames {spec.start}-{spec.end - 1}): the segment has {frames} "
                             f"frames, not {spec.frames}; vspipe said:\n{_tail(log)}")
        final = work / segment_name(spec.index)
        digest, size = sha256_file(part), part.stat().st_size
        os.replace(part, final)
        return ChunkResult(spec.index, final.name, frames, size, digest, time.monotonic() - t0)
    finally:
        part.unlink(missing_ok=True)
        progress.unlink(missing_ok=True)
        log.unlink(missing_ok=True)


def disk_full(work: str | Path) -> str:
    return f"the disk holding {work} is full: free space and rerun the same command to resume"


def _check_exit(spec: ChunkSpec, vspipe_code: int | None, ffmpeg_code: int | None, ffmpeg_err: str, log: Path) -> None:
    where = f"chunk {spec.index} (frames {spec.start}-{spec.end - 1})"
    if (ffmpeg_code or 0) < 0 or ((vspipe_code or 0) < 0 and not ffmpeg_code):
        raise ChunkError(f"{where}: a process was killed (signal {-(ffmpeg_code or vspipe_code or 0)})", killed=True)
    if "No space left on device" in ffmpeg_err:  # also when only the trailer failed: ffmpeg then exits 0
        raise ChunkError(f"{where}: ffmpeg could not write the segment:\n{ffmpeg_err.strip()}\n{disk_full(spec.work)}")
    if ffmpeg_code:
        hint = ""
        if any(m in ffmpeg_err for m in ("Unrecognized option", "Error setting option", "Unknown encoder")):
            hint = "\nffmpeg rejected the encoder options (--encoder): " + " ".join(spec.encoder)
        raise ChunkError(f"{where}: ffmpeg failed (exit {ffmpeg_code}):\n{ffmpeg_err.strip()}{hint}")
    if vspipe_code:
        raise ChunkError(f"{where}: vspipe failed (exit {vspipe_code}):\n{_tail(log)}")
