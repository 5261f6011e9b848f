"""The `render`, `upscale` and `interpolate` subcommands (registered by vssr/cli.py)."""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shlex
import signal
import sys
from fractions import Fraction
from pathlib import Path

from ..files import atomic_write
from .errors import Interrupted, RenderError
from .job import DEFAULT_ENCODER, RenderOptions, render, work_folder
from .scripts import interpolate_script, upscale_script

__all__ = ["add_commands"]

logger = logging.getLogger(__name__)

EPILOG = """\
Chunks are segment files in OUT.vssr-work/ beside OUT, listed in its manifest.json. An interrupted
or failed job keeps its completed chunks: run the same command again (or add --resume) to go on;
--partial joins the chunks done so far. A changed script or option is refused (--restart discards
the old chunks). Chunked output equals a one-pipe render frame for frame when the script's source
is frame-accurate under random access (BestSource, core.bs.VideoSource, is)."""


def _name_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    return name, value


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {value}")
    return value


def _fraction(text: str) -> Fraction:
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError) as err:
        raise argparse.ArgumentTypeError(f"expected a rate like 60000/1001 or 59.94, got {text!r}") from err
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def _job_options(parser: argparse.ArgumentParser) -> None:
    job = parser.add_argument_group("job")
    job.add_argument("--encoder", default=shlex.join(DEFAULT_ENCODER),
                     help="ffmpeg output options for the video, one string (default: %(default)s); "
                          "a single option needs the = form: --encoder=-an")
    job.add_argument("--chunk-frames", type=_positive, default=None,
                     help="frames per chunk (default: 300, or fewer so that every worker gets one)")
    job.add_argument("--workers", type=_positive, default=1, help="chunks rendered at once on this machine")
    job.add_argument("--threads", type=int, default=None,
                     help="VapourSynth threads per worker (default: cores // workers; 0: VapourSynth's default)")
    job.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="run chunks as Ray tasks: on the cluster at ADDRESS (or 'auto'), or a local Ray")
    job.add_argument("--ray-cpus", type=float, default=1.0, help="Ray: CPUs per chunk task (default: 1)")
    job.add_argument("--ray-gpus", type=float, default=0.0, help="Ray: GPUs per chunk task (default: 0)")
    job.add_argument("--retries", type=int, default=2, help="runs again a chunk whose worker died (default: 2)")
    job.add_argument("--resume", action="store_true", help="only resume an interrupted job")
    job.add_argument("--restart", action="store_true", help="discard the chunks of an earlier job")
    job.add_argument("--partial", action="store_true", help="join the chunks done so far, render nothing")
    job.add_argument("--keep-chunks", action="store_true", help="keep the work folder after joining")
    job.add_argument("--allow-inexact-source", action="store_true",
                     help="skip the check that random access gives the same frames (chunk borders may differ)")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `render`, `upscale` and `interpolate` on vssr's subcommand parser."""
    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)

    p = add("render", "render a .vpy to a video file in chunks (resumable, with sound)")
    p.add_argument("script", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, dest="out")
    p.add_argument("-a", "--arg", type=_name_value, action="append", default=[], help="script argument name=value")
    p.add_argument("--output-index", type=int, default=0, help="the script's output to render (default: 0)")
    p.add_argument("--audio-from", default="auto",
                   help="copy sound and subtitles from this file; 'auto' (default): the script's global "
                        "`source` when it is a file; 'none'")
    _job_options(p)
    p.set_defaults(run=_render)

    p = add("upscale", "upscale a video with its sound (Real-ESRGAN or QuickSRNet)")
    p.add_argument("input", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--model", default="animevideov3-x2",
                   help="Real-ESRGAN zoo name or model file, or quicksrnet (default: %(default)s)")
    p.add_argument("--scale", type=float, default=None, help="output size / input size (default: the model's)")
    p.add_argument("--tilesize", type=_positive, default=None, help="tile size in pixels (default: whole frames)")
    p.add_argument("--frames", type=int, default=0, help="only the first N frames (a trial; default 0: all)")
    p.add_argument("--width", type=int, default=0, help="resize the source to this width first (default 0: keep)")
    p.add_argument("--backend", choices=["ov", "ort"], default=None, help="default: the fastest CPU backend")
    _job_options(p)
    p.set_defaults(run=_upscale)

    p = add("interpolate", "change a video's frame rate with RIFE, with its sound")
    p.add_argument("input", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--model", required=True,
                   help="a RIFE version (4.22, 4.25.lite, ...: `vssr download rife`), a flownet.pkl or a vs-mlrt RIFE ONNX")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--fps", type=_fraction, default=None, help="output frame rate, e.g. 60000/1001")
    rate.add_argument("--multi", type=_positive, default=None, help="integer rate factor (default: 2)")
    p.add_argument("--backend", choices=["ov", "ort"], default=None, help="default: the fastest CPU backend")
    _job_options(p)
    p.set_defaults(run=_interpolate)


def _options(args: argparse.Namespace, script: Path, audio_from: str | Path | None,
             extra: tuple[tuple[str, str], ...] = ()) -> RenderOptions:
    threads = args.threads if args.threads is not None else max(1, (os.cpu_count() or 1) // args.workers)
    return RenderOptions(
        script=script, out=args.out, args=extra, output_index=getattr(args, "output_index", 0),
        encoder=tuple(shlex.split(args.encoder)), chunk_frames=args.chunk_frames, workers=args.workers,
        threads=threads, ray=args.ray, ray_cpus=args.ray_cpus, ray_gpus=args.ray_gpus, retries=args.retries,
        audio_from=audio_from,
        resume=args.resume, restart=args.restart, partial=args.partial, keep_chunks=args.keep_chunks,
        allow_inexact_source=args.allow_inexact_source,
        command=shlex.join(["vssr", *sys.argv[1:]]) if sys.argv[0].endswith(("vssr", "__main__.py")) else "",
    )


def _run(opts: RenderOptions) -> int:
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops like Ctrl+C: completed chunks kept

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        render(opts)
    except Interrupted as err:
        print(f"vssr: {err}", file=sys.stderr)
        return 130
    except RenderError as err:
        print(f"vssr: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a full disk or a lost folder while the driver writes: chunks done stay done
        print(f"vssr: {err}\ncompleted chunks are kept in {work_folder(opts.out)}; after fixing the cause, "
              "rerun the same command to resume", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _render(args: argparse.Namespace) -> int:
    audio = None if args.audio_from == "none" else args.audio_from
    return _run(_options(args, args.script, audio, tuple(args.arg)))


def _generated(args: argparse.Namespace, name: str, text: str) -> Path:
    if not args.input.is_file():
        print(f"vssr {name}: {args.input}: no such file", file=sys.stderr)
        raise SystemExit(2)
    if args.out.resolve() == args.input.resolve():
        print(f"vssr {name}: the output would overwrite the input {args.input}; give another OUT", file=sys.stderr)
        raise SystemExit(2)
    # named by its content: a second command on the same OUT never rewrites a script that a running
    # job reads (its own script differs, so the manifest refuses to mix the two jobs)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    script = work_folder(args.out) / f"{name}-{digest}.vpy"
    if not script.exists():
        atomic_write(script, text.encode())
    return script


def _upscale(args: argparse.Namespace) -> int:
    text = upscale_script(args.input, model=args.model, scale=args.scale, tilesize=args.tilesize,
                          backend=args.backend, frames=args.frames or None, width=args.width or None)
    return _run(_options(args, _generated(args, "upscale", text), args.input))


def _interpolate(args: argparse.Namespace) -> int:
    text = interpolate_script(args.input, model=args.model, fps=args.fps, multi=args.multi, backend=args.backend)
    return _run(_options(args, _generated(args, "interpolate", text), args.input))
