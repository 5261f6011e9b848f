"""`vssr render`: plan the chunks, run them on local workers or Ray, show one progress bar, keep
the manifest, join. Interrupted or failed jobs keep every completed chunk for the next run."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import errno
import hashlib
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..files import file_lock
from . import progress as progress_files
from .chunk import ChunkResult, ChunkSpec, chunk_ranges, disk_full
from .errors import ChunkError, Interrupted, RenderError
from .join import join_segments
from .manifest import Manifest, describe_changes
from .probe import ScriptInfo, probe_script
from .schedulers import LocalScheduler, RayScheduler, Scheduler, require_ray

__all__ = ["DEFAULT_ENCODER", "RenderOptions", "RenderResult", "render", "work_folder"]

logger = logging.getLogger(__name__)

DEFAULT_ENCODER = ("-c:v", "libx264", "-crf", "16", "-preset", "medium")
DEFAULT_CHUNK_FRAMES = 300  # ~10-12 s of video: small next to a film, large next to a chunk's start-up


@dataclass(frozen=True, slots=True)
class RenderOptions:
    script: Path
    out: Path
    args: tuple[tuple[str, str], ...] = ()
    output_index: int = 0
    encoder: tuple[str, ...] = DEFAULT_ENCODER
    chunk_frames: int | None = None  # None: DEFAULT_CHUNK_FRAMES, at least one chunk per worker
    workers: int = 1
    threads: int = 1  # VapourSynth threads per worker; 0: VapourSynth's default (all cores)
    ray: str | None = None  # None: local workers; "" or "auto": ray.init() locally; else an address
    ray_cpus: float = 1.0  # Ray: CPUs reserved per chunk task
    ray_gpus: float = 0.0  # Ray: GPUs reserved per chunk task (TensorRT workers)
    retries: int = 2  # a chunk whose worker dies is run again this many times
    audio_from: Path | str | None = "auto"  # a file, "auto" (the script's `source`), or None
    resume: bool = False  # only resume: refuse to start a new job
    restart: bool = False  # discard the chunks of an earlier job
    partial: bool = False  # join the completed chunks from the start; render nothing
    keep_chunks: bool = False
    allow_inexact_source: bool = False  # render even when the probe's random-access check fails
    command: str = ""  # how the user ran us, for the "to resume" message


@dataclass(slots=True)
class RenderResult:
    out: Path | None
    frames: int
    seconds: float
    chunks: int
    resumed: int
    chunk_seconds: list[float] = field(default_factory=list)  # wall time of each chunk rendered in this run


def work_folder(out: Path) -> Path:
    return out.with_name(f"{out.name}.vssr-work")


def _fingerprint(opts: RenderOptions, info: ScriptInfo) -> dict[str, Any]:
    return {
        "script": str(opts.script.resolve()),
        "script_sha256": hashlib.sha256(opts.script.read_bytes()).hexdigest(),
        "args": {k: v for k, v in opts.args},
        "output_index": opts.output_index,
        "encoder": list(opts.encoder),
        "frames": info.num_frames,
        "fps": str(info.fps),
        "size": f"{info.width}x{info.height}",
        "format": info.format,
    }


def _plan(opts: RenderOptions, info: ScriptInfo, old: Manifest | None) -> list[tuple[int, int]]:
    asked = None if opts.chunk_frames is None else chunk_ranges(info.num_frames, opts.chunk_frames)
    if old is not None and (asked is None or old.ranges == asked):
        return old.ranges  # a resumed job keeps its chunks whatever --workers says now
    if old is not None:
        raise RenderError(f"--chunk-frames {opts.chunk_frames} differs from the chunks of the job in "
                          f"{work_folder(opts.out)}; rerun without --chunk-frames to resume, or add --restart")
    size = opts.chunk_frames or min(DEFAULT_CHUNK_FRAMES, math.ceil(info.num_frames / max(opts.workers, 1)))
    return chunk_ranges(info.num_frames, size)


def _open_manifest(opts: RenderOptions, info: ScriptInfo, work: Path) -> tuple[Manifest, int]:
    """The job's manifest (new or resumed) and how many verified chunks it already has."""
    fingerprint = _fingerprint(opts, info)
    old = None if opts.restart else _load(work)
    if old is not None and old.fingerprint != fingerprint:
        changes = "\n  ".join(describe_changes(old.fingerprint, fingerprint))
        raise RenderError(
            f"{work} holds chunks of a different job; refusing to mix them into one output:\n  {changes}\n"
            f"add --restart to discard them, or run the original command again to resume it")
    if old is None and opts.resume:
        raise RenderError(f"--resume: there is no job to resume in {work}")
    if opts.restart or old is None:
        for stale in work.glob("chunk-*"):
            stale.unlink()
    manifest = Manifest(fingerprint, _plan(opts, info, old), old.verified(work) if old else {})
    _remove_partials(work)
    if old is not None:
        lost = set(old.done) - set(manifest.done)
        if lost:
            logger.warning("%d completed chunk(s) failed verification and will be rendered again", len(lost))
    manifest.save(work)
    return manifest, len(manifest.done)


def _remove_partials(work: Path) -> None:
    """Temp segments, progress and log files of attempts that will never finish (killed runs)."""
    for stale in work.glob("chunk-*.*.*"):
        stale.unlink(missing_ok=True)


def _load(work: Path) -> Manifest | None:
    try:
        return Manifest.load(work)
    except (ValueError, KeyError, TypeError) as err:
        raise RenderError(f"{work / 'manifest.json'} is unreadable ({err}); add --restart to start over") from err


def _audio_source(opts: RenderOptions, info: ScriptInfo) -> Path | None:
    if opts.audio_from is None or opts.audio_from == "none":
        return None
    if opts.audio_from == "auto":
        return Path(info.source) if info.source and Path(info.source).is_file() else None
    path = Path(opts.audio_from)
    if not path.is_file():
        raise RenderError(f"--audio-from {path}: no such file")
    return path


def _scheduler(opts: RenderOptions) -> Scheduler:
    if opts.ray is None:
        return LocalScheduler(opts.workers)
    return RayScheduler(opts.ray, num_cpus=opts.ray_cpus, num_gpus=opts.ray_gpus, max_retries=opts.retries)


def _resume_hint(opts: RenderOptions) -> str:
    again = opts.command or "the same command"
    return f"rerun {again} to resume (or add --partial to join what is done)"


def render(opts: RenderOptions, stream: TextIO = sys.stderr) -> RenderResult:
    """Render a script to opts.out in chunks. See `vssr render --help`.

    Raises:
        RenderError: a failure with a message for the user; completed chunks stay in the work folder.
        KeyboardInterrupt: after stopping the workers and removing partial files.
    """
    t0 = time.monotonic()
    if opts.ray is not None:
        require_ray()  # before the probe, which may take long: say at once what is missing
    info = probe_script(opts.script, opts.args, opts.output_index, check_access=not opts.allow_inexact_source)
    if info.access_problem is not None:
        raise RenderError(info.access_problem)
    if info.fps <= 0:
        raise RenderError("the output has a variable frame rate; chunks need a constant one (AssumeFPS)")
    if info.inexact_source:
        logger.warning("the script reads its source with ffms2/lsmas: their seeking is not frame-exact on every "
                       "file, so chunk borders may repeat or skip frames; core.bs.VideoSource (BestSource) is")
    work = work_folder(opts.out)
    work.mkdir(parents=True, exist_ok=True)
    audio = _audio_source(opts, info)
    try:
        with file_lock(work / "job", on_wait=lambda: logger.warning("another render is using %s; waiting", work)):
            manifest, resumed = _open_manifest(opts, info, work)
            resumed_frames = manifest.frames_done()
            if not opts.partial:
                _run_chunks(opts, info, manifest, work, stream)
            return _finish(opts, info, manifest, work, audio, (resumed, resumed_frames), time.monotonic() - t0, stream)
    except OSError as err:  # the driver's own writes (manifest, join); the chunks' ffmpeg says it in its log
        if err.errno != errno.ENOSPC:
            raise
        raise RenderError(f"{err}: {disk_full(work)}; completed chunks are kept") from None


def _finish(opts: RenderOptions, info: ScriptInfo, manifest: Manifest, work: Path, audio: Path | None,
            resumed_chunks: tuple[int, int], seconds: float, stream: TextIO) -> RenderResult:
    done = manifest.done
    prefix = []
    for index in range(len(manifest.ranges)):
        if index not in done:
            break
        prefix.append(index)
    frames = sum(done[i].frames for i in prefix)
    if not prefix:
        raise RenderError(f"no completed chunk from frame 0 in {work}: nothing to join")
    complete = len(prefix) == len(manifest.ranges)
    if not complete and not opts.partial:
        raise RenderError(f"{len(manifest.ranges) - len(done)} chunk(s) are missing in {work}")
    out = opts.out if complete else opts.out.with_name(f"{opts.out.stem}.partial{opts.out.suffix}")
    join_segments([work / done[i].file for i in prefix], out, frames=frames, fps=info.fps, audio_from=audio)
    resumed, resumed_frames = resumed_chunks
    rendered = manifest.frames_done() - resumed_frames  # in this run
    print(f"vssr render: {out}: {frames} of {info.num_frames} frames ({len(prefix)} of {len(manifest.ranges)} "
          f"chunks, {resumed} resumed) in {seconds:.1f} s, {_fps(rendered, seconds)} rendered"
          f"{', sound from ' + str(audio) if audio else ''}", file=stream)
    if complete and not opts.keep_chunks:
        for path in work.iterdir():
            path.unlink()
        with contextlib.suppress(OSError):
            work.rmdir()
    return RenderResult(out, frames, seconds, len(manifest.ranges), resumed,
                        [r.seconds for _, r in sorted(done.items()) if r.seconds > 0])


def _fps(frames: int, seconds: float) -> str:
    return f"{frames / seconds:.2f} fps" if seconds > 0 else "-"


@contextlib.contextmanager
def _bar(total: int, initial: int, stream: TextIO) -> Iterator[Callable[[int, str], None]]:
    from tqdm import tqdm  # quiet (disabled) when the stream is not a terminal

    bar = tqdm(total=total, initial=initial, unit="frame", file=stream, dynamic_ncols=True, smoothing=0.1,
               disable=not stream.isatty())
    last = initial

    def update(frames: int, status: str) -> None:
        nonlocal last
        if frames > last:
            bar.update(frames - last)
            last = frames
        bar.set_postfix_str(status, refresh=False)
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def _run_chunks(opts: RenderOptions, info: ScriptInfo, manifest: Manifest, work: Path, stream: TextIO) -> None:
    todo = [ChunkSpec(i, a, b, str(work.resolve()), str(opts.script.resolve()), opts.args, opts.output_index,
                      opts.threads, (*opts.encoder, *info.colour_options()), info.y4m)
            for i, (a, b) in enumerate(manifest.ranges) if i not in manifest.done]
    if not todo:
        return
    scheduler = _scheduler(opts)
    failures: list[str] = []
    attempts = dict.fromkeys((s.index for s in todo), 0)
    running: dict[cf.Future[ChunkResult], ChunkSpec] = {}
    pending = list(todo)
    total = len(manifest.ranges)
    try:
        with _bar(info.num_frames, manifest.frames_done(), stream) as update:
            while running or (pending and not failures):  # after a failure: only wait for those running
                while pending and not failures and len(running) < scheduler.slots:
                    spec = pending.pop(0)
                    running[scheduler.submit(spec)] = spec
                finished, _ = cf.wait(running, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                for future in finished:
                    spec = running.pop(future)
                    try:
                        result = future.result()
                    except Exception as err:
                        attempts[spec.index] += 1
                        lost = isinstance(err, ChunkError) and err.killed and not scheduler.retries_itself
                        if lost and attempts[spec.index] <= opts.retries:
                            logger.warning("%s; running it again", err)
                            pending.insert(0, spec)
                        else:
                            failures.append(scheduler.explain(spec, err))
                        continue
                    manifest.done[spec.index] = result
                    manifest.save(work)
                in_flight = sum(progress_files.frames(work, s.index) for s in running.values())
                update(manifest.frames_done() + in_flight,
                       f"chunks {len(manifest.done)}/{total} done, {len(running)} running, {len(failures)} failed")
    except KeyboardInterrupt:
        scheduler.stop()
        _remove_partials(work)
        manifest.save(work)
        raise Interrupted(f"interrupted: {len(manifest.done)} of {total} chunks are complete in {work}; "
                          f"{_resume_hint(opts)}") from None
    finally:
        scheduler.close()
    if failures:
        raise RenderError("\n".join(failures) + f"\n{len(manifest.done)} of {total} chunks are complete in {work}; "
                          f"after fixing the cause, {_resume_hint(opts)}")

