"""EDVR video restoration (BasicSR checkpoints): temporal windows, per-frame feature cache, deform choice.

Frame n of the output is the restored centre of the window n - T//2 .. n + T//2. Window indices
outside the clip follow `edge`:

- "mirror" (default): reflect about the first/last frame without repeating it (-1 -> 1, L -> L-2),
  BasicSR's "reflection" padding;
- "replicate": repeat the first/last frame (BasicSR's "replicate", used by its deblur tests).

Indices that are still outside (clips shorter than the window) are clamped. Frame count and frame
properties (those of the centre frame) are unchanged; any frame can be requested in any order.

With `split` (the default where the model allows it), each source frame's level-1 features are
computed once by an extractor network and kept in a small cache shared by all streams; the aligner
network then runs per output frame on the T cached features. The cache holds whole-frame features
(tiling, if any, happens inside each network's Session), so tiles need no cache of their own.
Without `split`, one monolithic network takes the T frames as 3T channels (vs-mlrt's convention).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

import numpy as np
import vapoursynth as vs

from .. import zoo
from ..arch import edvr as arch
from ..arch.deform import DeformMode
from ..backends import BackendConfig, default_backend
from ..glue import checks
from ..glue.checks import VssrError, check_clip, user_errors
from ..glue.color import converts_color
from ..glue.feature_cache import FeatureCache
from ..glue.frames import copy_props, dtype_of, frame_to_array, frames_to_array, write_frame
from ..glue.padding import PadPlan
from ..glue.streams import parallel_frames
from ..inference import Session
from ..types import SizeReq

__all__ = ["EDGES", "EDVR", "window_indices"]

EDGES = ("mirror", "replicate")
_DEFORMS = ("auto", "native", "decomposed")


def window_indices(n: int, length: int, num_frame: int, edge: str) -> list[int]:
    """Source frames of output frame n's window, after the edge policy (see the module docstring)."""
    last, r = length - 1, num_frame // 2
    out = []
    for i in range(n - r, n + r + 1):
        if edge == "mirror":
            i = -i if i < 0 else 2 * last - i if i > last else i
        out.append(min(max(i, 0), last))
    return out


def _resolve_deform(deform: str, backend: BackendConfig) -> DeformMode:
    native = backend.supports_op("DeformConv")
    if deform == "native" and not native:
        raise VssrError(
            EDVR,
            f"deform='native': {backend.runtime_name} cannot run ONNX DeformConv here (ONNX Runtime needs "
            "onnxruntime>=1.25: pip install -U 'onnxruntime>=1.25'; OpenVINO has no DeformConv); "
            "use deform='decomposed' (runs on every backend) or 'auto'",
        )
    if deform == "auto":
        # measured on CPU: ORT's DeformConv beats the GridSample decomposition (bench/edvr.py)
        return "native" if native else "decomposed"
    return deform  # type: ignore[return-value]


def _shifted(clip: vs.VideoNode, offset: int, num_frame: int, edge: str) -> vs.VideoNode:
    """Clip whose frame n is source frame window_indices(n)[r + offset], built from runs of Trims."""
    length, r = clip.num_frames, num_frame // 2
    indices = [n + offset if r <= n < length - r else window_indices(n, length, num_frame, edge)[r + offset]
               for n in range(length)]
    runs: list[vs.VideoNode] = []
    start = 0
    for i in range(1, length + 1):
        if i == length or indices[i] != indices[i - 1] + 1:
            runs.append(clip[indices[start]: indices[i - 1] + 1])
            start = i
    return runs[0] if len(runs) == 1 else vs.core.std.Splice(runs)


@converts_color()
def EDVR(
    clip: vs.VideoNode,
    model: str | os.PathLike[str] | Mapping[str, np.ndarray],
    *,
    num_frame: int | None = None,
    backend: BackendConfig | None = None,
    tilesize: int | tuple[int, int] | None = None,
    overlap: int | tuple[int, int] | None = None,
    split: bool | None = None,
    edge: str = "mirror",
    deform: str = "auto",
) -> vs.VideoNode:
    """Video super-resolution / deblurring with EDVR (BasicSR checkpoints).

    Args:
        clip: any constant format (YUV and integer clips are converted from their props and back; RGBS/RGBH
            run as they are). x4 SR models output 4x the size; deblur (hr_in) models the same size.
        model: a name `vssr download edvr` fetches ("m-x4-reds", "l-x4-vimeo90k", ...), the path
            of a BasicSR EDVR checkpoint (.pth with `params`/`params_ema`), e.g.
            EDVR_M_x4_SR_REDS_official-32075921.pth, or a state dict with BasicSR keys
            (docs/parameters.md, "model=: one rule"). The
            configuration (M/L, frames, predeblur, hr_in) is read from the weights.
        num_frame: window length; only checked against the model's (5 or 7), which decides.
        backend: a vssr.Backend.* config; default: the fastest CPU backend installed.
        tilesize: tile size (int or (width, height)); None runs whole frames.
        overlap: context pixels per tile side, only with tilesize (default 64 there, EDVR's
            receptive field).
        split: cache per-frame features and run only alignment, fusion and reconstruction per
            output frame (about T times less feature extraction). None: on, except for hr_in
            models (deblur), whose features are at 1/4 size and which always run monolithic.
        edge: window frames beyond the clip ends: "mirror" or "replicate".
        deform: deformable convolution as "native" ONNX DeformConv (onnxruntime>=1.25, TensorRT
            plugin), "decomposed" into GridSample + Conv (every backend, e.g. OpenVINO), or "auto"
            (native where the backend supports it).

    Raises:
        VssrError: on invalid arguments or an unusable checkpoint, when the script is evaluated.
    """
    check_clip(clip, EDVR, families=(vs.RGB,))
    checks.check_choice(edge, EDVR, "edge", EDGES)
    checks.check_choice(deform, EDVR, "deform", _DEFORMS)
    num_frame = checks.check_int(num_frame, EDVR, "num_frame", 1, optional=True)
    checks.check_bool(split, EDVR, "split", optional=True)
    checks.check_backend(backend, EDVR)
    overlap = checks.tile_overlap(tilesize, overlap, EDVR, default=arch.DEFAULT_OVERLAP)
    backend = backend if backend is not None else default_backend()
    mode = _resolve_deform(deform, backend)
    source = zoo.resolve("edvr", model, func=EDVR, deform=mode, split=split)
    with user_errors(EDVR):
        params = arch.EDVRParams.from_state(source.state)  # type: ignore[arg-type]
    if num_frame is not None and num_frame != params.num_frame:
        raise VssrError(EDVR, f"num_frame={num_frame} but the model was trained for {params.num_frame} frames; "
                              f"pass num_frame={params.num_frame} or None")
    use_split = "extractor" in source.networks
    dtype = dtype_of(clip.format)

    # The split pads frames itself, before feature extraction, with the generic path's own plan:
    # padding the features instead (what the aligner's Session would do) changes the border, and
    # split must equal monolithic. Its Sessions then see frames that already fit.
    pad = PadPlan.for_size(clip.width, clip.height, SizeReq(params.multiple)) if use_split else None
    width, height = (pad.padded_width, pad.padded_height) if pad else (clip.width, clip.height)

    def session(role: str, config: BackendConfig = backend) -> Session:
        return Session.create(source.networks[role], config, width=width, height=height, tilesize=tilesize,
                              overlap=overlap, dtype=dtype, func=EDVR)

    t, center = params.num_frame, params.center
    window = [_shifted(clip, d, t, edge) for d in range(-center, t - center)]
    template = vs.core.std.BlankClip(clip, width=clip.width * params.scale, height=clip.height * params.scale,
                                     keep=True)
    length = clip.num_frames

    if use_split:
        extractor = session("extractor", backend.for_intermediate())
        aligner = session("aligner")
        cache = FeatureCache[int, np.ndarray](t + 2 * backend.num_streams + 2)
        names = [f"l1_{i}" for i in range(t)]

        s = params.scale
        crop_h, crop_w = clip.height * s, clip.width * s

        def padded(frame: vs.VideoFrame) -> np.ndarray:
            return pad.pad(frame_to_array(frame)[None])  # type: ignore[union-attr]

        def features(frame: vs.VideoFrame) -> np.ndarray:
            return extractor.run({"input": padded(frame)})["l1"]

        def run(n: int, frames: list[vs.VideoFrame]) -> np.ndarray:
            indices = window_indices(n, length, t, edge)
            feeds = {
                name: cache.get(i, functools.partial(features, f))
                for name, i, f in zip(names, indices, frames, strict=True)
            }
            feeds["center"] = padded(frames[center])
            return aligner.run(feeds)["output"][..., :crop_h, :crop_w]
    else:
        monolithic = session("network")

        def run(n: int, frames: list[vs.VideoFrame]) -> np.ndarray:
            return monolithic.run({"input": frames_to_array(frames, dtype)})["output"]

    def process(n: int, frames: list[vs.VideoFrame], out: vs.VideoFrame) -> vs.VideoFrame:
        write_frame(run(n, frames)[0], out)
        return copy_props(frames[center], out)

    return parallel_frames(template, window, process, backend.num_streams)
