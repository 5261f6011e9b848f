"""RIFE frame interpolation as a recipe over Session: exact rates, scene cuts, random access.

Per output frame n (see `vssr.glue.timing`): source frames left/right and time t come from n
alone, so any frame can be asked for first and nothing grows with the clip's length. Frames at a
source time (t = 0, or held at the end) are picked straight from the source by std.FrameEval; only
the frames in between reach the inference streams, numbered k = 0, 1, ... (`Retime.
interpolated_frame`). Of those, frames across a scene cut are exact copies of the nearest source
frame and every other one is one flownet run.

The v4.7+ encoder runs once per source frame: its features go into a small single-flight LRU cache
(`glue.feature_cache`) shared by the streams (a source frame is the right frame of one pair and the
left frame of the next, and both pairs are usually in flight together). A bounded dict keyed by source frame is used rather
than feature planes as VapourSynth clips: VapourSynth frames hold at most 3 planes while the
features have 4 or 8 channels, and its frame cache gives no guarantee of reuse.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from fractions import Fraction

import numpy as np
import vapoursynth as vs

from .. import zoo
from ..arch import ifnet
from ..backends import BackendConfig
from ..glue import checks
from ..glue.checks import VssrError, check_clip
from ..glue.color import converts_color
from ..glue.feature_cache import FeatureCache
from ..glue.frames import copy_props, dtype_of, frame_to_array, write_frame
from ..glue.streams import parallel_frames
from ..glue.timing import Retime, rate_factor
from ..inference import Session
from ..validation import INT32_MAX

__all__ = ["RIFE", "scene_change_metric", "weight_paths"]

weight_paths = zoo.rife_candidates
"""Where `model="<version>"` looks (kept under its public name; the registry owns it)."""

logger = logging.getLogger(__name__)

SC_THRESHOLD = 0.1
"""Default cut threshold of `scene_change_metric` (RGB in [0, 1])."""

_SC_STRIDE, _SC_BLOCK = 2, 8


def _coarse(plane: np.ndarray) -> np.ndarray:
    """Means of 16x16-pixel blocks, read from every 2nd pixel: motion of a few pixels barely moves
    them, a new scene changes them all."""
    small = plane[::_SC_STRIDE, ::_SC_STRIDE]
    h, w = (small.shape[0] // _SC_BLOCK) * _SC_BLOCK, (small.shape[1] // _SC_BLOCK) * _SC_BLOCK
    if h == 0 or w == 0:
        return small.astype(np.float32)
    blocks = small[:h, :w].astype(np.float32).reshape(h // _SC_BLOCK, _SC_BLOCK, w // _SC_BLOCK, _SC_BLOCK)
    return blocks.mean(axis=(1, 3))


def scene_change_metric(left: vs.VideoFrame, right: vs.VideoFrame) -> float:
    """Mean absolute difference of block-averaged RGB (0 = same picture, ~0.3+ at a cut)."""
    planes: int = left.format.num_planes
    total = 0.0
    for p in range(planes):
        total += float(np.abs(_coarse(np.asarray(left[p])) - _coarse(np.asarray(right[p]))).mean())
    return total / planes


def _is_cut(left: vs.VideoFrame, right: vs.VideoFrame, threshold: float | None) -> bool:
    """Scene-change props win when present (misc.SCDetect, ...); else the built-in metric."""
    lp, rp = left.props, right.props
    if "_SceneChangeNext" in lp or "_SceneChangePrev" in rp:
        return bool(lp.get("_SceneChangeNext", 0)) or bool(rp.get("_SceneChangePrev", 0))
    return threshold is not None and scene_change_metric(left, right) > threshold


@converts_color()
def RIFE(
    clip: vs.VideoNode,
    multi: int | None = None,
    *,
    factor_num: int | None = None,
    factor_den: int = 1,
    fps_num: int | None = None,
    fps_den: int = 1,
    model: str | os.PathLike[str] | Mapping[str, np.ndarray] | None = None,
    version: str | None = None,
    scale: float = 1.0,
    ensemble: bool = False,
    sc: bool = True,
    sc_threshold: float | None = SC_THRESHOLD,
    backend: BackendConfig | None = None,
) -> vs.VideoNode:
    """Interpolate frames with RIFE v4.x to a higher (or any) frame rate.

    The output has floor(N x factor) frames at fps x factor for N input frames, i.e. the same
    duration; output frame n is at source time n / factor. Output frames at a source time are
    exact copies, and frames after the last source frame repeat it (no extrapolation).

    Args:
        clip: any constant format (YUV and integer clips are converted from their props and back; RGBS/RGBH
            run as they are, RGBH with fp16 tensors), at least 1 frame, any size (padded
            inside with zeros, right and bottom, as vs-rife does, to max(m, m / scale) with m =
            32, 64 or 128 by version, and cropped back).
        multi: integer rate factor (default 2 when no other rate is given).
        factor_num, factor_den: a fractional factor, e.g. 5/2.
        fps_num, fps_den: a target frame rate, e.g. 60000/1001 (the clip needs a constant fps).
        model: a version name ("4.22", "4.25-lite" or vs-rife's "4.25.lite": v4.0 .. v4.26)
            whose flownet_v<version>.pkl is in vssr's models/rife/ directory (`vssr download
            rife 4.22`), a Practical-RIFE / vs-rife flownet.pkl (the version is detected from its
            weights), a vs-mlrt RIFE ONNX (v1 11-channel or v2 7-channel), or a flownet state
            dict (docs/parameters.md, "model=: one rule").
        version: label for weights that fit several identical versions (4.25 and 4.26, ...).
        scale: flow resolution, one of 0.25, 0.5, 1, 2, 4 (0.5 for 4K).
        ensemble: the extra pass with the frames swapped (v4.0 .. v4.20; about 2x slower).
        sc: copy the nearest source frame instead of blending across scene changes.
        sc_threshold: cut threshold of the built-in metric (mean |difference| of RGB in [0,1])
            used when the frames carry no _SceneChangeNext/_SceneChangePrev props; None: props only.
        backend: a vssr.Backend.* config; default: the fastest CPU backend installed.

    Raises:
        VssrError: on any invalid argument or model file, when the script is evaluated.
    """
    func = RIFE
    check_clip(clip, func, families=(vs.RGB,))
    # positive ints (numpy ones made plain), so that Fractions and frame counts are exact
    multi, factor_num, fps_num = (
        checks.check_int(value, func, name, 1, INT32_MAX, optional=True)
        for name, value in (("multi", multi), ("factor_num", factor_num), ("fps_num", fps_num))
    )
    factor_den, fps_den = (
        checks.check_positive(value, func, name, INT32_MAX)
        for name, value in (("factor_den", factor_den), ("fps_den", fps_den))
    )
    try:
        factor = rate_factor(
            multi=multi if (multi is not None or factor_num is not None or fps_num is not None) else 2,
            factor=None if factor_num is None else Fraction(factor_num, factor_den),
            fps_in=clip.fps,
            fps_out=None if fps_num is None else Fraction(fps_num, fps_den),
        )
    except (ValueError, ZeroDivisionError) as err:
        raise VssrError(func, f"multi/factor_num/factor_den/fps_num/fps_den: {err}") from err
    rates = f"multi/factor_num/factor_den/fps_num/fps_den: {clip.num_frames} frames x {factor}"
    checks.check_frame_count(Retime(clip.num_frames, factor).num_frames, func, rates)
    checks.check_choice(scale, func, "scale", ifnet.SCALES)
    checks.check_real(sc_threshold, func, "sc_threshold", 0, 1, open_minimum=True, optional=True)
    checks.check_bool(ensemble, func, "ensemble")
    checks.check_bool(sc, func, "sc")
    if version is not None and (not isinstance(version, str) or ifnet.canonical_name(version) is None):
        raise VssrError(func, f"version must be one of {', '.join(ifnet.VERSIONS)} (or vs-rife's spelling, "
                              f"4.22.lite) or None, not {version!r}")
    checks.check_backend(backend, func)
    source = zoo.resolve("rife", model, func=func, version=version, scale=scale, ensemble=ensemble)
    flownet, encoder = source.networks["flownet"], source.networks.get("encoder")

    dtype = dtype_of(clip.format)
    session = Session.create(flownet, backend, width=clip.width, height=clip.height, dtype=dtype, func=func)
    streams = session.backend.num_streams
    pad = session.pad
    cache: FeatureCache[int, np.ndarray] | None = None
    if encoder is not None:
        # the flownet reads features of its padded frames: encode the frames padded as it pads them
        # (features of unpadded frames, padded afterwards, differ near every edge)
        enc_session = Session.create(encoder, session.backend.for_intermediate(), width=pad.padded_width,
                                     height=pad.padded_height, dtype=dtype, func=func)
        # in-flight pairs are consecutive: `streams` pairs touch streams + 1 source frames
        cache = FeatureCache[int, np.ndarray](capacity=streams + 2)

        def features(image: np.ndarray) -> np.ndarray:
            return enc_session.run({"img": pad.pad(image) if pad.needed else image})["feat"]

    plan = Retime(clip.num_frames, factor)
    fps_out = plan.fps(clip.fps)
    template = clip.std.BlankClip(length=plan.num_frames, fpsnum=fps_out.numerator, fpsden=fps_out.denominator,
                                  keep=True)
    logger.info("RIFE v%s: %d -> %d frames (x%s), %d interpolated", source.label, clip.num_frames,
                plan.num_frames, factor, plan.interpolated_frames)

    def process(k: int, frames: list[vs.VideoFrame], out: vs.VideoFrame) -> vs.VideoFrame:
        left, right = frames
        p = plan.position(plan.interpolated_frame(k))
        if sc and _is_cut(left, right, sc_threshold):
            return (left if p.nearest == p.left else right).copy()
        img0, img1 = frame_to_array(left)[None], frame_to_array(right)[None]
        feeds = {"img0": img0, "img1": img1, "timestep": np.full((1, 1, 1, 1), float(p.t), np.float32)}
        if cache is not None:
            feeds["feat0"] = cache.get(p.left, functools.partial(features, img0))  # padded only when computed
            feeds["feat1"] = cache.get(p.right, functools.partial(features, img1))
        session.run_with(feeds, lambda r: write_frame(r["output"][0], out))
        return copy_props(left, out)

    # Only the frames between two source frames go to the streams, so with multi=2 and 2 streams
    # both streams interpolate (all output frames round-robin would give one stream every copy).
    interpolated: vs.VideoNode | None = None
    if plan.interpolated_frames:
        work = clip.std.BlankClip(length=plan.interpolated_frames, keep=True)
        lefts = work.std.FrameEval(lambda n: clip[plan.position(plan.interpolated_frame(n)).left])
        rights = work.std.FrameEval(lambda n: clip[plan.position(plan.interpolated_frame(n)).right])
        interpolated = parallel_frames(work, [lefts, rights], process, streams)

    def select(n: int) -> vs.VideoNode:
        k = plan.interpolated_index(n)
        if k is None or interpolated is None:
            return clip[plan.position(n).left]  # a source time, or held at the end: an exact copy
        return interpolated[k]

    out = template.std.FrameEval(select)
    if fps_out:
        return out.std.AssumeFPS(fpsnum=fps_out.numerator, fpsden=fps_out.denominator)  # sets frame durations

    def durations(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        frame = f.copy()
        props = frame.props
        if "_DurationNum" in props and "_DurationDen" in props:
            num, den = int(props["_DurationNum"]), int(props["_DurationDen"])
            if num <= 0 or den <= 0:
                raise VssrError(func, f"clip: frame {n} has the duration {num}/{den} (_DurationNum/_DurationDen); "
                                      "durations must be positive: set them with core.std.AssumeFPS or fix the source")
            dur = Fraction(num, den) / factor
            props["_DurationNum"], props["_DurationDen"] = dur.numerator, dur.denominator
        return frame

    return out.std.ModifyFrame(out, durations)  # variable frame rate: each frame's duration / factor
