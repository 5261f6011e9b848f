"""A user's mistake points at the user's line: no vssr frame below the script's in the traceback.

VapourSynth editors (vsview, vspreview) show the innermost frame of a failed script; vspipe prints
the whole traceback. Each case runs a real .vpy through vspipe with the bad call on a known line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import vapoursynth as vs

import vssr
from tests import nets

ROOT = Path(__file__).resolve().parents[2]
VSPIPE = Path(sys.executable).with_name("vspipe")
FRAME = re.compile(r'^  File "([^"]+)", line (\d+)', re.MULTILINE)

HEADER = (
    "import vapoursynth as vs\n"
    "import vssr\n"
    "from vssr.compat import vsmlrt, vsrife\n"
    "clip = vs.core.std.BlankClip(format=vs.RGBS, width=64, height=64, length=2)\n"
)
BAD_LINE = HEADER.count("\n") + 1  # the call below the header


def failed_script(tmp_path: Path, call: str, env: dict[str, str] | None = None) -> str:
    """vspipe --info on HEADER + `out = <call>`: the printed error (it must fail)."""
    script = tmp_path / "bad.vpy"
    script.write_text(f"{HEADER}out = {call}\nout.set_output()\n")
    run = subprocess.run(
        [str(VSPIPE), "--info", str(script)], capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    assert run.returncode != 0, run.stdout
    return run.stderr + run.stdout


def last_traceback_frames(output: str) -> list[tuple[str, int]]:
    """(file, line) of every frame of the last traceback printed (the raised error, after its causes)."""
    last = output.rsplit("Traceback (most recent call last):", 1)[1]
    return [(name, int(line)) for name, line in FRAME.findall(last)]


def assert_ends_at_script(output: str, message: str) -> None:
    assert message in output, output
    frames = last_traceback_frames(output)
    assert frames and frames[-1][0].endswith("bad.vpy") and frames[-1][1] == BAD_LINE, output
    assert not any("/vssr/" in name for name, _ in frames), output


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("vssr.RealESRGAN(clip, model=123)", "vssr.RealESRGAN: model must be a zoo name"),
        ("vssr.QuickSRNet(clip, scale=5)", "vssr.QuickSRNet: "),
        ("vssr.RealESRGAN(clip, backend=vssr.Backend.ORT(num_streams=-1))", "vssr.Backend.ORT: num_streams"),
        ("vssr.RealESRGAN(clip, backend=vssr.Backend.OV_CPU(num_streams=0))", "vssr.Backend.OV_CPU: "),
        ("vsmlrt.RealESRGAN(clip, model=999)", "vsmlrt.RealESRGAN"),  # compat over native: both cut
        ("vsrife.rife(clip, model='9.9')", "vssr.vsrife.rife: model must be one of"),
    ],
)
def test_user_error_points_at_the_script_line(tmp_path: Path, call: str, message: str) -> None:
    assert_ends_at_script(failed_script(tmp_path, call), message)


def test_lower_layer_error_keeps_its_cause(tmp_path: Path) -> None:
    """A damaged model file: the message says why, the cause's own traceback is printed above."""
    bad = tmp_path / "damaged.onnx"
    bad.write_bytes(b"not a protobuf")
    output = failed_script(tmp_path, f"vssr.RealESRGAN(clip, model={str(bad)!r})")
    assert_ends_at_script(output, f"vssr.RealESRGAN: cannot read ONNX model {str(bad)!r}")
    assert "The above exception was the direct cause" in output
    assert "vssr.errors.ModelError: cannot read ONNX model" in output  # the chained cause, with its frames
    assert re.search(r'File "[^"]*/vssr/weights/onnxfile.py"', output), output


def test_full_traceback_on_request(tmp_path: Path) -> None:
    output = failed_script(tmp_path, "vssr.RealESRGAN(clip, model=123)", env={"VSSR_TRACEBACK": "full"})
    frames = last_traceback_frames(output)
    assert frames[-1][0].endswith("vssr/glue/checks.py"), output  # where it was raised


def test_extract_tb_in_process() -> None:
    """traceback.extract_tb of the error raised by a public function ends at this test's call."""
    clip = vs.core.std.BlankClip(format=vs.RGBS, width=16, height=16, length=1)
    with pytest.raises(vssr.VssrError) as caught:
        vssr.RealESRGAN(clip, tilesize="big")  # the line the traceback must end at
    last = traceback.extract_tb(caught.value.__traceback__)[-1]
    assert last.filename == __file__ and last.line is not None and "tilesize=\"big\"" in last.line


def test_bugs_keep_their_frames() -> None:
    """Only VssrError (a user's mistake) is cut: any other exception keeps vssr's frames for its report."""
    from vssr.glue.checks import raised_at_caller

    def inner() -> None:
        raise RuntimeError("a bug")

    @raised_at_caller
    def public() -> None:
        inner()

    with pytest.raises(RuntimeError) as caught:
        public()
    assert traceback.extract_tb(caught.value.__traceback__)[-1].name == "inner"


def test_session_create_and_quantize_point_at_the_caller() -> None:
    for call in (lambda: vssr.Session.create(vssr.Network.load(nets.identity()), width=0, height=16),
                 lambda: vssr.quantize(nets.identity(), calibration=[], method="best")):
        with pytest.raises(vssr.VssrError) as caught:
            call()
        last = traceback.extract_tb(caught.value.__traceback__)[-1]
        assert last.filename == __file__, last
