"""vssr render's job handling on real vspipe and ffmpeg: interrupt (SIGINT, SIGKILL) and resume to
a byte-identical file, changed options refused, --partial, sound kept in sync, BT.601 kept, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.render.helpers import (
    ENV,
    SCRIPT,
    duration,
    framemd5,
    make_clip,
    model_args,
    start_vssr,
    streams,
    vssr,
    wait_for_segments,
)

FFV1 = ["--encoder", "-c:v ffv1"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, clip: Path, sr_onnx: Path) -> tuple[list[str], bytes]:
    """The render the interrupted ones must reproduce: its arguments and its bytes."""
    args = [SCRIPT, *model_args("realesrgan", sr_onnx, clip), *FFV1, "--chunk-frames", 15]
    out = tmp_path_factory.mktemp("reference") / "out.mkv"
    vssr("render", *args, "-o", out)
    return [str(a) for a in args], out.read_bytes()


@pytest.mark.slow  # ~30 s each: a dozen vspipe start-ups
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupt_and_resume(tmp_path: Path, reference: tuple[list[str], bytes], sig: signal.Signals) -> None:
    args, want = reference
    out = tmp_path / "out.mkv"
    work = tmp_path / "out.mkv.vssr-work"
    process = start_vssr("render", *args, "-o", out)
    wait_for_segments(work, 2, process)
    process.send_signal(sig)
    _, err = process.communicate(timeout=120)
    if sig == signal.SIGINT:
        assert process.returncode == 130, err
        assert "interrupted" in err and "to resume" in err
        assert not list(work.glob("*.part.mkv"))  # partial segments removed
    else:
        assert process.returncode == -signal.SIGKILL
    done = json.loads((work / "manifest.json").read_text())["chunks"]
    assert len(done) >= 2 and not out.exists()

    rerun = vssr("render", *args, "-o", out)
    assert f"{len(done)} resumed" in rerun.stderr or f"{len(done) + 1} resumed" in rerun.stderr
    assert out.read_bytes() == want
    assert not work.exists()  # cleaned after the join


@pytest.mark.slow  # ~35 s
def test_changed_option_refused_and_partial(tmp_path: Path, reference: tuple[list[str], bytes]) -> None:
    args, want = reference
    out = tmp_path / "out.mkv"
    process = start_vssr("render", *args, "-o", out)
    wait_for_segments(tmp_path / "out.mkv.vssr-work", 2, process)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)

    changed = [a if a != "-c:v ffv1" else "-c:v ffv1 -level 1" for a in args]
    refused = vssr("render", *changed, "-o", out, check=False)
    assert refused.returncode == 1
    assert "refusing to mix" in refused.stderr and "encoder" in refused.stderr and "--restart" in refused.stderr

    partial = vssr("render", *args, "-o", out, "--partial")
    assert "frames" in partial.stderr and not out.exists()
    frames = framemd5(tmp_path / "out.partial.mkv")
    assert 30 <= len(frames) < 60 and len(frames) % 15 == 0  # whole chunks from frame 0

    vssr("render", *args, "-o", out, "--resume")
    assert out.read_bytes() == want


@pytest.mark.slow  # ~25 s
def test_sound_follows_the_video(tmp_path: Path, clip: Path, rife_pkl: Path) -> None:
    """Upscale and 2x interpolation keep the sound track, cut to the video's duration."""
    up, fast = tmp_path / "up.mkv", tmp_path / "fast.mkv"
    vssr("upscale", clip, up, "--model", "quicksrnet", *FFV1, "--workers", 2)
    vssr("interpolate", clip, fast, "--model", rife_pkl, "--multi", 2, *FFV1, "--workers", 2)
    source_audio = next(s for s in streams(clip) if s["codec_type"] == "audio")
    assert duration(source_audio) > 2.4  # the source's sound runs 0.5 s past its video
    for path, frames, fps in ((up, 60, 30000 / 1001), (fast, 120, 60000 / 1001)):
        video, audio = (next(s for s in streams(path) if s["codec_type"] == kind) for kind in ("video", "audio"))
        assert len(framemd5(path)) == frames
        assert abs(duration(video) - frames / fps) <= 1 / fps
        assert abs(duration(audio) - duration(video)) <= 1 / fps, (duration(audio), duration(video))


def _mean_rgb(path: Path) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, 3).mean(axis=0)


def test_upscale_keeps_bt601(tmp_path: Path) -> None:
    """A flat BT.601 colour comes back as the same colour, tagged BT.601, with BT.601 props."""
    src = tmp_path / "flat.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=0xC03020:size=64x48:rate=25",
                    "-frames:v", "5", "-c:v", "ffv1", "-pix_fmt", "yuv420p", "-vf", "scale=out_color_matrix=bt601",
                    "-colorspace", "smpte170m", "-color_range", "tv", str(src)], check=True)
    out = tmp_path / "up.mkv"
    vssr("upscale", src, out, "--model", "quicksrnet", *FFV1, "--keep-chunks")
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=color_space,color_range,width",
                            "-of", "json", str(out)], capture_output=True, text=True, check=True).stdout
    tags = json.loads(probe)["streams"][0]
    assert (tags["color_space"], tags["color_range"], tags["width"]) == ("smpte170m", "tv", 128)
    assert np.abs(_mean_rgb(out) - _mean_rgb(src)).max() <= 2  # BT.709 would move red by ~20 levels
    (script,) = (tmp_path / "up.mkv.vssr-work").glob("upscale-*.vpy")
    code = (f"import runpy, vapoursynth as vs; runpy.run_path({str(script)!r}); "
            "p = vs.get_output(0).clip.get_frame(0).props; print(p['_Matrix'], int(p['_Range']))")
    props = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True).stdout
    assert props.split() == ["6", "0"]


def test_upscale_refuses_to_overwrite_its_input(tmp_path: Path, clip: Path) -> None:
    same = tmp_path / "same.mkv"
    same.write_bytes(clip.read_bytes())
    run = vssr("upscale", same, same, "--model", "quicksrnet", check=False)
    assert run.returncode == 2 and "would overwrite the input" in run.stderr
    assert same.read_bytes() == clip.read_bytes()


def test_errors(tmp_path: Path, clip: Path, sr_onnx: Path) -> None:
    broken = tmp_path / "broken.vpy"
    broken.write_text("import vapoursynth as vs\nraise vs.Error('no such plugin: foo')\n")
    run = vssr("render", broken, "-o", tmp_path / "a.mkv", check=False)
    assert run.returncode == 1 and "failed to evaluate" in run.stderr and "no such plugin: foo" in run.stderr

    args = [SCRIPT, *model_args("realesrgan", sr_onnx, clip)]
    run = vssr("render", *args, "-o", tmp_path / "b.mkv", "--output-index", 3, check=False)
    assert run.returncode == 1 and "no video output 3" in run.stderr and "outputs: 0" in run.stderr

    out = tmp_path / "c.mkv"
    run = vssr("render", *args, "-o", out, "--encoder", "-c:v ffv1 -no_such_option 1", check=False)
    assert run.returncode == 1 and "no_such_option" in run.stderr and "to resume" in run.stderr
    assert not out.exists()


def test_ray_missing_says_how_to_get_it(tmp_path: Path, clip: Path) -> None:
    code = ("import sys; sys.modules['ray'] = None; from vssr.cli import main; "
            f"sys.exit(main(['render', {str(SCRIPT)!r}, '-o', {str(tmp_path / 'o.mkv')!r}, '--ray', "
            f"'-a', 'input={clip}', '-a', 'kind=realesrgan', '-a', 'model=x']))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=False)
    assert run.returncode == 1 and 'pip install "vssr[ray]"' in run.stderr


def test_make_clip_has_bt601_tags(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "c.mkv", frames=3)
    video = next(s for s in streams(path) if s["codec_type"] == "video")
    assert video["r_frame_rate"] == "30000/1001" and len(framemd5(path)) == 3


def _children_running(name: str, needle: str) -> list[int]:
    """Pids of processes called `name` whose command line contains `needle` (read from /proc)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and argv and Path(argv[0].decode(errors="replace")).name == name \
                and needle.encode() in b" ".join(argv):
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow  # ~30 s
def test_local_worker_killed_is_retried(tmp_path: Path, reference: tuple[list[str], bytes]) -> None:
    args, want = reference
    out = tmp_path / "out.mkv"
    work = tmp_path / "out.mkv.vssr-work"
    process = start_vssr("render", *args, "-o", out)
    deadline = time.monotonic() + 300
    while not (victims := _children_running("ffmpeg", str(work))):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1]
        time.sleep(0.05)
    os.kill(victims[0], signal.SIGKILL)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "was killed" in err and "running it again" in err
    assert out.read_bytes() == want


def test_subtitles_and_x264_join(tmp_path: Path, clip: Path) -> None:
    """x264 segments join to every frame; subtitles go to mkv, and mp4 (no SubRip) keeps the sound."""
    srt = tmp_path / "sub.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,500\nhello\n")
    source = tmp_path / "with_subs.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-i", str(srt), "-map", "0", "-map", "1", "-c", "copy",
                    str(source)], check=True)
    script = tmp_path / "invert.vpy"
    script.write_text(f"import vapoursynth as vs\nsource = {str(source)!r}\n"
                      "vs.core.std.Invert(vs.core.bs.VideoSource(source)).set_output()\n")
    for out in (tmp_path / "out.mkv", tmp_path / "out.mp4"):
        run = vssr("render", script, "-o", out, "--chunk-frames", 9, "--workers", 2, "--encoder", "-c:v libx264 -crf 20")
        kinds = sorted(str(s["codec_type"]) for s in streams(out))
        assert len(framemd5(out)) == 60
        if out.suffix == ".mkv":
            assert kinds == ["audio", "subtitle", "video"]
        else:
            assert kinds == ["audio", "video"] and "subtitles" in run.stderr
