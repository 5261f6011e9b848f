"""vssr render on this machine: `--workers 2` (one VapourSynth thread each) against one pipe with 2
threads, and the cost of a chunk (script + model load, encoder start), as inputs of the scaling
model in docs/render.md.

    python bench/render.py [--frames 48] [--size 320x180] [--model animevideov3-x2] [--repeats 2]

Source: ffmpeg's testsrc2 (moving), lossless. Script: what `vssr upscale` generates. Output: ffv1
(the encoder's cost is not what is measured). Prints a report and writes it to bench/render-results.txt.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vssr.render import RenderOptions, render
from vssr.render.chunk import WRAPPER, vspipe_command
from vssr.render.scripts import upscale_script

FILM_FRAMES = 2 * 3600 * 24  # a 2-hour film at 24 fps
FILM_PIXELS = 1920 * 1080


def timed(fn, repeats: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeats):
        t0 = time.monotonic()
        fn()
        out.append(time.monotonic() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--model", default="animevideov3-x2")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--backend", choices=["ov", "ort"], default=None, help="default: the fastest CPU backend")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "render-results.txt")
    args = parser.parse_args()
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    tmp = Path(tempfile.mkdtemp(prefix="vssr-bench-render-"))
    source = tmp / "src.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={args.size}:rate=24000/1001",
                    "-frames:v", str(args.frames), "-c:v", "ffv1", "-pix_fmt", "yuv420p", "-colorspace", "bt709",
                    str(source)], check=True)
    script = tmp / "upscale.vpy"
    script.write_text(upscale_script(source, model=args.model, scale=None, tilesize=None, backend=args.backend))
    load = load_avg()
    say(f"vssr render bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        f"load average before: {load}")
    say(f"clip: testsrc2 {args.size}, {args.frames} frames; script: vssr upscale --model {args.model} "
        f"(backend: {args.backend or 'default'}); output ffv1")

    def startup() -> None:  # what every chunk pays before its first frame: vspipe, vssr, the model
        cmd = [*vspipe_command(str(script), [], 1, 0), "--info", str(WRAPPER), "--"]
        subprocess.run(cmd, check=True, capture_output=True)

    startup()  # converts the model and fills the compiled-model cache: not timed
    start_s = statistics.median(timed(startup, 3))
    say(f"chunk start-up (vspipe + import vssr + script + model load, 1 thread): {start_s:.2f} s (median of 3)")

    def run(workers: int, threads: int, chunk: int) -> tuple[float, list[float]]:
        out = tmp / f"out-{workers}-{threads}-{chunk}.mkv"
        t0 = time.monotonic()
        result = render(RenderOptions(script=script, out=out, encoder=("-c:v", "ffv1"), chunk_frames=chunk,
                                      workers=workers, threads=threads, audio_from=None, restart=True),
                        stream=io.StringIO())
        return time.monotonic() - t0, result.chunk_seconds

    configs = {
        "one pipe, 2 threads (1 chunk)": (1, 2, args.frames),
        "one pipe, 2 threads (4 chunks, one after another)": (1, 2, args.frames // 4),
        "--workers 2, 1 thread each (2 chunks)": (2, 1, args.frames // 2),
        "--workers 2, 1 thread each (4 chunks)": (2, 1, args.frames // 4),
    }
    walls: dict[str, list[float]] = {k: [] for k in configs}
    chunks: dict[str, list[float]] = {k: [] for k in configs}
    for _ in range(args.repeats):  # round-robin: drifts of the shared machine hit every config alike
        for name, (w, t, c) in configs.items():
            wall, seconds = run(w, t, c)
            walls[name].append(wall)
            chunks[name] += seconds
    base = statistics.median(walls["one pipe, 2 threads (1 chunk)"])
    say("")
    say("| configuration | wall s (median) | fps | vs one pipe | chunk s (median) |")
    say("|---|---|---|---|---|")
    for name in configs:
        wall = statistics.median(walls[name])
        say(f"| {name} | {wall:.2f} | {args.frames / wall:.2f} | {base / wall:.2f}x | "
            f"{statistics.median(chunks[name]):.2f} |")
    # what a chunk costs beyond its frames: the same frames in 4 sequential chunks instead of 1
    chunk_cost = (statistics.median(walls["one pipe, 2 threads (4 chunks, one after another)"]) - base) / 3
    say("")
    say(f"cost per extra chunk (4 sequential chunks vs 1, same worker): {chunk_cost:.2f} s = "
        f"{chunk_cost / (base / args.frames):.1f} frames of work; chunking cost of the 4-chunk run: "
        f"{3 * chunk_cost / base:.1%}")
    # per-frame time of one worker with one thread, while another worker runs beside it
    two = configs["--workers 2, 1 thread each (2 chunks)"][2]
    per_frame = (statistics.median(chunks["--workers 2, 1 thread each (2 chunks)"]) - start_s) / two
    say(f"per frame, one worker of two (1 thread): {per_frame:.3f} s at {args.size}")
    cost = max(chunk_cost, start_s)
    w, h = (int(v) for v in args.size.split("x"))
    film_frame = per_frame * FILM_PIXELS / (w * h)
    say(f"model: 1080p frame ~ {film_frame:.1f} s per worker (scaled by pixels); 2-hour film = {FILM_FRAMES} frames")
    say("")
    say(f"chunk cost used: {cost:.2f} s")
    say("| workers | chunk frames | chunks | waves | chunk cost share | efficiency |")
    say("|---|---|---|---|---|---|")
    for workers in (8, 64):
        for size in (300, 1000):
            n = -(-FILM_FRAMES // size)
            waves = -(-n // workers)
            work = FILM_FRAMES * film_frame / workers
            wall = waves * (cost + size * film_frame) + 2 * cost  # + the driver's probe, + join (~ a chunk's cost)
            say(f"| {workers} | {size} | {n} | {waves} | {cost / (cost + size * film_frame):.4%} | "
                f"{work / wall:.1%} |")
    say(f"load average after: {load_avg()} (a machine shared with other jobs: figures are indicative)")
    args.out.write_text("\n".join(lines) + "\n")


def load_avg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    main()
