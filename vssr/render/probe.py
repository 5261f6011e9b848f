"""What the driver learns from evaluating the script once: its outputs and its source file."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from .chunk import WRAPPER, vspipe_command
from .errors import RenderError

__all__ = ["ScriptInfo", "probe_script"]

UNSPECIFIED = 2  # H.273's "unspecified" matrix/transfer/primaries
# source filters whose random access is not frame-exact on every file (seeking by timestamps)
INEXACT_SOURCES = re.compile(r"\b(ffms2|lsmas)\s*\.\s*\w*Source|\bcore\s*\.\s*(ffms2|lsmas)\b")
SOURCE_CALLS = re.compile(r"\b(\w+)\s*\.\s*(\w*Source)\s*\(")
"""`bs.VideoSource(`, `ffms2.Source(`, `lsmas.LWLibavSource(`: how the script names its source filter."""


@dataclass(frozen=True, slots=True)
class ScriptInfo:
    num_frames: int
    fps: Fraction
    width: int
    height: int
    format: str
    y4m: bool  # vspipe can write it as y4m (YUV or GRAY integer)
    source: str | None  # the script's global `source`, when it is a file path
    inexact_source: bool  # the script text names ffms2/lsmas: random access may not be frame-exact
    colour: dict[str, int]  # _Matrix, _Transfer, _Primaries, _Range of the first output frame
    access_problem: str | None = None  # the random-access check failed: why, and what to do

    def colour_options(self) -> list[str]:
        """ffmpeg options tagging the file with the output's colour props (y4m cannot carry them);
        VapourSynth's matrix/transfer/primaries codes are the ones ffmpeg uses (ITU-T H.273)."""
        options = []
        tags = (("_Matrix", "-colorspace"), ("_Transfer", "-color_trc"), ("_Primaries", "-color_primaries"))
        for key, option in tags:
            value = self.colour.get(key, UNSPECIFIED)
            if value not in (UNSPECIFIED, 0 if key == "_Matrix" else UNSPECIFIED):  # 0: RGB, not a YUV matrix
                options += [option, str(value)]
        if "_Range" in self.colour:
            options += ["-color_range", "pc" if self.colour["_Range"] == 1 else "tv"]
        return options


def probe_script(script: Path, args: Sequence[tuple[str, str]], output_index: int, *,
                 check_access: bool = True) -> ScriptInfo:
    """Evaluate the script once through vspipe (as every worker will) and describe output `output_index`.

    check_access: also read output frames 0, last, 0, last (the first read of 0 sequential, the
    others after seeks, each computed again) and compare the two reads of each: chunks are exact
    only when random access gives the pictures a sequential read does.

    Raises:
        RenderError: the script fails to evaluate, or has no video output at that index.
    """
    if not script.is_file():
        raise RenderError(f"script {script} does not exist")
    script = script.resolve()
    with tempfile.TemporaryDirectory(prefix="vssr-probe-") as tmp:
        found = Path(tmp) / "info.json"
        probe_args = [*args, ("vssr_probe", f"{output_index}:{found}"), ("vssr_access_check", str(int(check_access)))]
        cmd = [*vspipe_command(str(script), probe_args, 0, output_index),
               "--info", str(WRAPPER), "--"]
        # vssr_probe goes through -a too, but the wrapper reads it as its own option
        run = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if not found.exists():
            raise RenderError(f"the script {script} failed to evaluate:\n{_python_error(run.stderr)}")
        info = json.loads(found.read_text())
    outputs = info["outputs"]
    chosen = outputs.get(str(output_index))
    if chosen is None or not chosen["video"]:
        video = sorted(int(k) for k, v in outputs.items() if v["video"])
        raise RenderError(f"the script {script} has no video output {output_index}; "
                          f"its video outputs: {', '.join(map(str, video)) or 'none (call clip.set_output())'}")
    if chosen["num_frames"] <= 0:
        raise RenderError(f"output {output_index} of {script} has no frames")
    text = script.read_text(errors="replace")
    return ScriptInfo(
        num_frames=chosen["num_frames"], fps=Fraction(chosen["fps_num"], chosen["fps_den"] or 1),
        width=chosen["width"], height=chosen["height"], format=chosen["format"], y4m=chosen["y4m"],
        source=info["source"], inexact_source=bool(INEXACT_SOURCES.search(text)), colour=chosen["colour"],
        access_problem=_access_problem(info.get("access_reads"), text),
    )


def _access_problem(reads: list[list[object]] | None, text: str) -> str | None:
    """Why the output is not the same under random access (a frame read twice came out different), or None."""
    first: dict[object, object] = {}
    for frame, digest in reads or ():
        if first.setdefault(frame, digest) != digest:
            order = ", ".join(str(n) for n, _ in reads or ())
            names = sorted({f"{plugin}.{call}" for plugin, call in SOURCE_CALLS.findall(text)} - {"bs.VideoSource"})
            filters = f"its source filter ({', '.join(names)})" if names else "its source filter"
            return (f"the script's output frame {frame} came out different when read again (frames read in the "
                    f"order {order}, as chunks read them): {filters} is not frame-accurate under random access, "
                    f"so chunk borders would repeat, skip or change frames. Read the source with BestSource "
                    f"(core.bs.VideoSource(path)), which is; or pass --allow-inexact-source to render anyway")
    return None


def _python_error(stderr: str) -> str:
    """vspipe's report without its own preamble: the Python traceback and the error."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return "\n".join(lines[-15:])
