"""The probe's random-access check: chunks are exact only when the script's frames read out of order
equal a sequential read. A real BestSource source passes; a source that answers repeated requests
with other pictures (std.FrameEval on a counter, as a seeking decoder that lands elsewhere) is
refused with a message naming its filter and BestSource, unless --allow-inexact-source."""

from __future__ import annotations

from pathlib import Path

from tests.render.helpers import framemd5, vssr
from vssr.render.probe import probe_script

FFV1 = ["--encoder", "-c:v ffv1", "--chunk-frames", "7"]

SHAKY = """\
import itertools, types
import vapoursynth as vs
core = vs.core
base = core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length=20, fpsnum=25)
pictures = [core.std.BlankClip(base, color=[16 + 10 * i, 128, 128]) for i in range(7)]
requests = itertools.count()
# a stand-in for a source plugin whose seeking lands on other frames: each request another picture
shaky = types.SimpleNamespace(VideoSource=lambda: core.std.FrameEval(base, lambda n: pictures[next(requests) % 7]))
clip = shaky.VideoSource()
clip.std.Invert().set_output()
"""


def test_bestsource_passes_the_check(tmp_path: Path, clip: Path) -> None:
    script = tmp_path / "bs.vpy"
    script.write_text("import vapoursynth as vs\nsource = str(globals()['input'])\n"
                      "vs.core.std.Invert(vs.core.bs.VideoSource(source)).set_output()\n")
    info = probe_script(script, [("input", str(clip))], 0)
    assert info.access_problem is None and info.num_frames == 60
    out = tmp_path / "out.mkv"
    vssr("render", script, "-a", f"input={clip}", "-o", out, *FFV1)
    assert len(framemd5(out)) == 60


def test_shaky_source_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "shaky.vpy"
    script.write_text(SHAKY)
    out = tmp_path / "out.mkv"
    run = vssr("render", script, "-o", out, *FFV1, check=False)
    assert run.returncode == 1, run.stderr
    for words in ("output frame", "came out different when read again", "its source filter (shaky.VideoSource)",
                  "not frame-accurate", "BestSource (core.bs.VideoSource(path))", "--allow-inexact-source"):
        assert words in run.stderr, run.stderr
    assert not out.exists() and not out.with_name("out.mkv.vssr-work").exists()  # refused before any work
    run = vssr("render", script, "-o", out, *FFV1, "--allow-inexact-source")
    assert len(framemd5(out)) == 20  # rendered as asked (its frames are whatever the source gave)
