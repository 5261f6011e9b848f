"""The generic VapourSynth path: formats, fp16 I/O, props, frame order, concurrency, errors."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest
import vapoursynth as vs

import vssr
from tests import nets
from vssr.backends.base import Runner
from vssr.backends.ort import ORT
from vssr.glue.frames import frame_to_array
from vssr.network import Network
from vssr.types import ShapeProfile, Tensors


def noise_clip(core: vs.Core, fmt: int = vs.RGBS, width: int = 37, height: int = 29, length: int = 6) -> vs.VideoNode:
    """Frames of seeded noise (a different picture per frame) with a per-frame property."""
    blank = core.std.BlankClip(format=fmt, width=width, height=height, length=length)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        rng = np.random.default_rng(n)
        for p in range(out.format.num_planes):
            plane = np.asarray(out[p])
            plane[...] = rng.random(plane.shape, dtype=np.float32)
        out.props["FrameNumber"] = n
        return out

    return core.std.ModifyFrame(blank, blank, fill)


@pytest.mark.parametrize("fmt", [vs.RGBS, vs.RGBH, vs.GRAYS, vs.GRAYH])
def test_matches_onnx_reference_per_format(core: vs.Core, fmt: int) -> None:
    from onnx.reference import ReferenceEvaluator

    channels = 3 if fmt in (vs.RGBS, vs.RGBH) else 1
    model = nets.pixel_shuffle_x2(channels)
    clip = noise_clip(core, fmt)
    out = vssr.inference(clip, model, vssr.Backend.ORT(threads=1))
    assert (out.width, out.height, out.num_frames) == (74, 58, 6)
    assert out.format.id == core.query_video_format(
        clip.format.color_family, vs.FLOAT, clip.format.bits_per_sample, 0, 0
    ).id
    ref = ReferenceEvaluator(model)
    for n in (0, 3, 5):
        x = frame_to_array(clip.get_frame(n))[None]
        (want,) = ref.run(None, {"input": x.astype(np.float32)})
        frame = out.get_frame(n)
        got = frame_to_array(frame)
        assert got.dtype == (np.float16 if fmt in (vs.RGBH, vs.GRAYH) else np.float32)
        tol = 2e-2 if got.dtype == np.float16 else 1e-5
        np.testing.assert_allclose(got.astype(np.float32), want[0], atol=tol, rtol=tol)
        assert frame.props["FrameNumber"] == n  # props carried over, frames in order


def test_two_clips_concatenate_planes(core: vs.Core) -> None:
    from onnx.reference import ReferenceEvaluator

    a = noise_clip(core, vs.RGBS)
    b = noise_clip(core, vs.GRAYS).std.Invert()
    model = nets.conv3x3(4, out_channels=3)
    out = vssr.inference([a, b], model, vssr.Backend.ORT(threads=1))
    assert out.format.id == vs.RGBS
    x = np.concatenate([frame_to_array(a.get_frame(2)), frame_to_array(b.get_frame(2))])[None]
    (want,) = ReferenceEvaluator(model).run(None, {"input": x})
    np.testing.assert_allclose(frame_to_array(out.get_frame(2)), want[0], atol=1e-5)
    with pytest.raises(vs.Error, match="output has 4 channels"):
        vssr.inference([a, b], nets.conv3x3(4))


def test_size_rule_padding_and_crop(core: vs.Core) -> None:
    from onnx.reference import ReferenceEvaluator

    model = nets.strided_x1(3)
    clip = noise_clip(core, vs.RGBS, width=33, height=21)
    out = vssr.inference(clip, model, vssr.Backend.ORT(threads=1))
    assert (out.width, out.height) == (33, 21)
    # reference: pad by reflection to 34x22, run, crop
    x = frame_to_array(clip.get_frame(1))[None]
    xp = np.pad(x, [(0, 0), (0, 0), (0, 1), (0, 1)], mode="reflect")
    (want,) = ReferenceEvaluator(model).run(None, {"input": xp})
    np.testing.assert_allclose(frame_to_array(out.get_frame(1)), want[0, :, :21, :33], atol=1e-5)


@dataclass(frozen=True, kw_only=True)
class _Recording(ORT):
    """ORT whose runners record how many inferences run at the same moment."""

    def load(self, network: Network, profile: ShapeProfile, io_dtype: np.dtype | None = None) -> list[Runner]:
        return [_RecordingRunner(r) for r in super().load(network, profile, io_dtype)]


class _RecordingRunner:
    active = 0
    peak = 0
    lock = threading.Lock()

    def __init__(self, inner: Runner) -> None:
        self.inner, self.inputs, self.outputs = inner, inner.inputs, inner.outputs

    def infer(self, feeds: Tensors) -> Tensors:
        cls = type(self)
        with cls.lock:
            cls.active += 1
            cls.peak = max(cls.peak, cls.active)
        try:
            time.sleep(0.05)  # a GIL-free wait standing in for a long inference
            return self.inner.infer(feeds)
        finally:
            with cls.lock:
                cls.active -= 1

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("streams", [1, 2, 3])
def test_frames_in_flight(core: vs.Core, streams: int) -> None:
    core.num_threads = 4
    _RecordingRunner.active = _RecordingRunner.peak = 0
    clip = noise_clip(core, vs.RGBS, length=12)
    out = vssr.inference(clip, nets.conv3x3(3), _Recording(num_streams=streams, threads=1))
    frames = list(out.frames())  # sequential request, as vspipe does
    assert [f.props["FrameNumber"] for f in frames] == list(range(12))
    assert _RecordingRunner.peak == streams


def test_output_fps_and_length_kept(core: vs.Core) -> None:
    clip = noise_clip(core, vs.RGBS, length=7).std.AssumeFPS(fpsnum=24000, fpsden=1001)
    out = vssr.inference(clip, nets.identity(3), vssr.Backend.ORT(num_streams=2, threads=1))
    assert out.num_frames == 7 and (out.fps_num, out.fps_den) == (24000, 1001)


# --- errors: raised at script evaluation, naming the parameter -------------------------------------


def test_untagged_yuv_is_refused_with_the_fix(core: vs.Core) -> None:
    # tagged YUV and integer clips are converted (tests/glue/test_color.py)
    clip = core.std.BlankClip(format=vs.YUV420P8, width=32, height=32)
    with pytest.raises(vs.Error, match=r"vssr.inference: clip is YUV420P8 and its frame 0 has no _Matrix prop"):
        vssr.inference(clip, nets.identity(3))


def test_rejects_variable_format_and_size(core: vs.Core) -> None:
    a = core.std.BlankClip(format=vs.RGBS, width=32, height=32, length=2)
    b = core.std.BlankClip(format=vs.RGBS, width=48, height=32, length=2)
    c = core.std.BlankClip(format=vs.GRAYS, width=32, height=32, length=2)
    with pytest.raises(vs.Error, match="constant frame size"):
        vssr.inference(core.std.Splice([a, b], mismatch=True), nets.identity(3))
    with pytest.raises(vs.Error, match="constant format"):
        vssr.inference(core.std.Splice([a, c], mismatch=True), nets.identity(3))


def test_rejects_wrong_channel_count(core: vs.Core) -> None:
    clip = core.std.BlankClip(format=vs.GRAYS, width=32, height=32)
    with pytest.raises(vs.Error, match="takes 3 input channels but the clips have 1 planes"):
        vssr.inference(clip, nets.identity(3))


def test_rejects_small_tiles(core: vs.Core) -> None:
    clip = core.std.BlankClip(format=vs.RGBS, width=64, height=64)
    with pytest.raises(vs.Error, match="tilesize width 16 must be larger than twice the overlap \\(8\\)"):
        vssr.inference(clip, nets.identity(3), tilesize=16, overlap=8)
    with pytest.raises(vs.Error, match="overlap must be >= 0"):
        vssr.inference(clip, nets.identity(3), tilesize=16, overlap=-1)
    with pytest.raises(vs.Error, match="overlap=4 without tilesize"):
        vssr.inference(clip, nets.identity(3), overlap=4)


def test_rejects_missing_and_corrupt_model(core: vs.Core, tmp_path) -> None:  # type: ignore[no-untyped-def]
    clip = core.std.BlankClip(format=vs.RGBS, width=32, height=32)
    with pytest.raises(vs.Error, match="does not exist"):
        vssr.inference(clip, tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(vs.Error, match="cannot read ONNX model"):
        vssr.inference(clip, bad)


def test_io_retyping_twice_stays_valid() -> None:
    import onnx

    net = Network.load(nets.conv3x3(3))
    twice = net.with_io_dtype(np.float16, np.float16).with_io_dtype(np.float32, np.float32).with_io_dtype(
        np.float16, np.float32
    )
    onnx.checker.check_model(twice.model)
    runner = ORT(num_streams=1, threads=1).load(twice, None)[0]  # type: ignore[arg-type]
    out = runner.infer({"input": np.ones((1, 3, 8, 8), np.float16)})["output"]
    assert out.dtype == np.float32 and out.shape == (1, 3, 8, 8)
