"""The one generic inference path: Session (numpy) and inference() (VapourSynth).

A frame's path: the ModifyFrame callback (here) -> glue/frames.py -> Session.run (padding,
glue/tiling.py) -> a pooled backend runner, and back. Everything that can be decided once
(validation, backend loading, pad and tile plans, output buffers' shapes) is decided in
Session.create, when the script is evaluated.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import onnx
import vapoursynth as vs

from .backends import BackendConfig, Runner, default_backend
from .glue.checks import (
    VssrError,
    check_backend,
    check_clip,
    check_clips_match,
    check_dtype,
    check_file,
    check_func,
    check_int,
    check_pair,
    check_scale,
    raised_at_caller,
    tile_overlap,
    user_errors,
)
from .glue.color import converts_color
from .glue.frames import copy_props, dtype_of, frames_to_array, write_frame
from .glue.padding import PadPlan
from .glue.streams import RunnerPool, parallel_frames
from .glue.tiling import TilePlan, ceil_to, scaled
from .network import Network
from .types import ShapeProfile, Tensors
from .validation import INT32_MAX, shown

__all__ = ["Session", "check_static_shape", "inference", "load_network"]

logger = logging.getLogger(__name__)

type Func = Callable[..., object] | str
type NetworkSource = Network | onnx.ModelProto | str | os.PathLike[str]


def load_network(network: NetworkSource, func: Func, scale: Fraction | None = None) -> Network:
    """`scale`: assumed where the graph does not tell it (then the only source of the output size)."""
    if isinstance(network, Network):
        return network
    if not isinstance(network, onnx.ModelProto):
        check_file(network, func, "network", "an ONNX file (or a vssr.Network or an onnx.ModelProto)")
    with user_errors(func):
        return Network.load(network, scale=scale)


def check_static_shape(
    network: Network, tile: tuple[int, int], frame: tuple[int, int], tiled: bool, func: Func
) -> None:
    """Image inputs of a static spatial size must get exactly that size (ONNX Runtime fails on the
    first frame otherwise, and OpenVINO reshapes the network silently). `frame`: the padded frame."""
    for spec in network.image_inputs:
        height, width = spec.shape[2:]
        if height is None or width is None or (width, height) == tile:
            continue
        fits = network.tiling and width <= frame[0] and height <= frame[1]
        raise VssrError(
            func,
            f"{'tilesize' if tiled else 'clip'}: network {network.name!r} takes a static {width}x{height} input "
            f"{spec.name!r} (width x height) but would be fed {'tiles' if tiled else 'frames'} of {tile[0]}x{tile[1]}; "
            + (f"use tilesize=({width}, {height})" if fits else f"resize the clip to {width}x{height}")
            + ", or export the network with dynamic height and width",
        )


@dataclass(frozen=True, slots=True, eq=False)
class Session:
    """A loaded network ready for frames of one size: pads, tiles, runs on pooled runners, crops.

    Thread-safe: each `run` borrows a runner from the pool for the duration of the call.
    """

    network: Network
    backend: BackendConfig
    pool: RunnerPool
    pad: PadPlan
    tiles: TilePlan
    dtype: np.dtype

    @classmethod
    @raised_at_caller
    def create(
        cls,
        network: Network,
        backend: BackendConfig | None = None,
        *,
        width: int,
        height: int,
        tilesize: int | tuple[int, int] | None = None,
        overlap: int | tuple[int, int] | None = None,
        dtype: np.dtype | type = np.float32,
        func: Func = "Session.create",
    ) -> Session:
        """Validate the arguments, load the backend and plan padding and tiles for width x height."""
        check_func(func, "Session.create")
        if not isinstance(network, Network):
            raise VssrError(func, f"network must be a vssr.Network (Network.load(path)), not {shown(network)}")
        check_backend(backend, func)
        for name, side in (("width", width), ("height", height)):
            check_int(side, func, name, 1, INT32_MAX)
        dtype = check_dtype(dtype, func)
        backend = backend if backend is not None else default_backend()
        if network.precision_sensitive:
            exact = backend.with_fp32_default()
            if exact != backend:
                logger.info("%s is precision-sensitive: fp32 unless the backend config asks for less "
                            "(docs/precision.md)", network.name)
            backend = exact
        ov = tile_overlap(tilesize, overlap, func)
        pad = PadPlan.for_size(width, height, network.size)
        if tilesize is None:
            tile = (pad.padded_width, pad.padded_height)
        else:
            if not network.tiling:
                raise VssrError(func, f"tilesize: network {network.name!r} must see whole frames and cannot be tiled")
            tile = check_pair(tilesize, func, "tilesize", minimum=1)
            m = network.size.multiple
            tile = (max(m, tile[0] // m * m), max(m, tile[1] // m * m))
            for axis, t, o, total in (("width", tile[0], ov[0], pad.padded_width), ("height", tile[1], ov[1], pad.padded_height)):
                margin = ceil_to(o, m)  # tiles start on the network's size grid, so overlaps round up to it
                if t < total and t <= 2 * margin:
                    grid = f" on the stride-{m} grid" if margin != o else ""
                    raise VssrError(
                        func,
                        f"tilesize {axis} {t} must be larger than twice the overlap ({margin}{grid}); "
                        f"use a larger tilesize or a smaller overlap",
                    )
        try:
            tiles = TilePlan.for_frame(pad.padded_width, pad.padded_height, tile, ov, network.size.multiple)
        except ValueError as err:
            raise VssrError(func, f"tilesize/overlap: {err}") from err
        for s in network.output_scales:
            for span in (*tiles.xs, *tiles.ys):
                for v in (span.start, span.size, span.keep_start, span.keep_end):
                    if (v * s).denominator != 1:
                        raise VssrError(func, f"tilesize: tile edges must map to whole output pixels at scale {s}")
        check_static_shape(network, tiles.tile_size, (pad.padded_width, pad.padded_height), tilesize is not None, func)
        profile = ShapeProfile.static(*tiles.tile_size)
        with user_errors(func):
            runners = backend.load(network, profile, io_dtype=dtype)
        logger.info(
            "%s: %s on %s, %dx%d padded to %dx%d, %d tile(s) of %dx%d",
            func if isinstance(func, str) else func.__name__, network.name, backend.describe(), width, height,
            pad.padded_width, pad.padded_height, len(tiles.xs) * len(tiles.ys), *tiles.tile_size,
        )
        return cls(network, backend, RunnerPool(runners), pad, tiles, dtype)

    def output_dtype(self, name: str) -> np.dtype:
        """What the runners really return for an output (a backend may be told to differ)."""
        return next(o.dtype for o in self.pool.runners[0].outputs if o.name == name)

    def run(self, feeds: Tensors) -> Tensors:
        """Image inputs (1, C, H, W) at frame size; other inputs as they are. Returns cropped outputs."""
        return self.run_with(feeds, _copies)

    def run_with[T](self, feeds: Tensors, consume: Callable[[Tensors], T]) -> T:
        """Like `run`, but hands the cropped outputs to `consume` while the runner is still held.

        The outputs may be views of the runner's own buffers: `consume` copies what it keeps (the
        frame callback writes them straight into the output frame, saving one full-frame copy).
        """
        net = self.network
        if self.pad.needed:
            feeds = {k: self.pad.pad(v) if _is_image(v) else v for k, v in feeds.items()}
        with self.pool.borrow() as runner:
            if not self.tiles.single:
                return consume(self._run_tiled(runner, feeds))
            results = runner.infer(feeds)
            if not self.pad.needed:
                return consume({o.name: results[o.name] for o in net.outputs})
            return consume({
                o.name: results[o.name][..., : scaled(self.pad.height, s), : scaled(self.pad.width, s)]
                for o, s in zip(net.outputs, net.output_scales, strict=True)
            })

    def _run_tiled(self, runner: Runner, feeds: Tensors) -> Tensors:
        net = self.network
        full: Tensors = {}
        for x, y in self.tiles:
            tile_feeds = {
                k: v[..., y.start : y.start + y.size, x.start : x.start + x.size] if _is_image(v) else v
                for k, v in feeds.items()
            }
            results = runner.infer({k: np.ascontiguousarray(v) for k, v in tile_feeds.items()})
            for o, s in zip(net.outputs, net.output_scales, strict=True):
                r = results[o.name]
                if o.name not in full:
                    h, w = scaled(self.pad.padded_height, s), scaled(self.pad.padded_width, s)
                    full[o.name] = np.empty((*r.shape[:-2], h, w), r.dtype)
                ys, ye = scaled(y.keep_start, s), scaled(y.keep_end, s)
                xs, xe = scaled(x.keep_start, s), scaled(x.keep_end, s)
                oy, ox = scaled(y.start, s), scaled(x.start, s)
                full[o.name][..., ys:ye, xs:xe] = r[..., ys - oy : ye - oy, xs - ox : xe - ox]
        return {
            o.name: full[o.name][..., : scaled(self.pad.height, s), : scaled(self.pad.width, s)]
            for o, s in zip(net.outputs, net.output_scales, strict=True)
        }


def _copies(outputs: Tensors) -> Tensors:
    return {k: np.array(v, copy=True) for k, v in outputs.items()}


def _is_image(array: np.ndarray) -> bool:
    return array.ndim == 4 and array.shape[-2:] != (1, 1)


@converts_color(gray=True)
def inference(
    clips: vs.VideoNode | Sequence[vs.VideoNode],
    network: NetworkSource,
    backend: BackendConfig | None = None,
    *,
    tilesize: int | tuple[int, int] | None = None,
    overlap: int | tuple[int, int] | None = None,
    scale: int | Fraction | None = None,
    func: Func = "inference",
) -> vs.VideoNode:
    """Run any ONNX image-to-image network on clips (vs-mlrt convention: planes concatenated).

    Args:
        clips: one clip or a list of clips (RGBS/RGBH/GRAYS/GRAYH, same size, length and depth);
            the planes of all clips, in order, are the network's input channels.
        network: a Network, an onnx.ModelProto or the path of an ONNX file mapping NCHW float
            images to images. RGBH/GRAYH clips are fed as float16 tensors and come back as float16.
        backend: a vssr.Backend.* config; default: the fastest CPU backend installed.
        tilesize: run tiles of this size ((width, height) or one int) instead of whole frames.
        overlap: context pixels each tile reads past the part it keeps (>= the network's
            receptive-field radius for a seamless result); only with tilesize; None: 0.
        scale: output/input size ratio when it cannot be read from the graph; where it can, the
            two must agree.

    Returns:
        A clip of the input size times the network's scale: GRAY for 1 output channel, RGB for 3.
        Frame properties of the first clip are carried over.

    Raises:
        VssrError: on any invalid argument, when the script is evaluated.
    """
    check_func(func, "inference")
    if not isinstance(clips, vs.VideoNode | list | tuple) or not clips:
        raise VssrError(func, f"clips must be a vs.VideoNode or a non-empty list of them, not {clips!r}")
    clip_list = [clips] if isinstance(clips, vs.VideoNode) else list(clips)
    for i, clip in enumerate(clip_list):
        check_clip(clip, func, "clip" if len(clip_list) == 1 else f"clips[{i}]")
    check_clips_match(clip_list, func)
    check_backend(backend, func)
    overlap = tile_overlap(tilesize, overlap, func)
    if scale is not None:
        scale = check_scale(scale, func)
    net = load_network(network, func, scale)
    if scale is not None and Fraction(scale) != net.scale:
        raise VssrError(
            func,
            f"scale={scale}, but network {net.name!r} makes outputs {net.scale}x its input (read from its graph); "
            "leave scale unset",
        )
    if len(net.inputs) != 1:
        names = ", ".join(f"{s.name}{list(s.shape)}" for s in net.inputs)
        raise VssrError(func, f"network: inference() feeds one image input; {net.name!r} has {len(net.inputs)} ({names})")
    spec = net.inputs[0]
    planes = sum(c.format.num_planes for c in clip_list)
    if spec.channels is not None and spec.channels != planes:
        raise VssrError(
            func,
            f"clips: network {net.name!r} takes {spec.channels} input channels but the clips have {planes} planes; "
            + ("pass an RGB clip" if spec.channels == 3 else "pass clips whose planes add up to that"),
        )
    out_spec = net.outputs[0]
    out_family = {1: vs.GRAY, 3: vs.RGB}.get(out_spec.channels or 0)
    if out_family is None:
        raise VssrError(func, f"network: the output has {out_spec.channels} channels; inference() makes GRAY (1) or RGB (3) clips")
    first = clip_list[0]
    dtype = dtype_of(first.format)
    session = Session.create(
        net, backend, width=first.width, height=first.height, tilesize=tilesize, overlap=overlap, dtype=dtype, func=func
    )
    out_w, out_h = first.width * net.scale, first.height * net.scale
    if out_w.denominator != 1 or out_h.denominator != 1:
        raise VssrError(func, f"clip: {first.width}x{first.height} x scale {net.scale} is not a whole frame size")
    out_bits = 16 if session.output_dtype(out_spec.name) == np.float16 else 32
    out_format = vs.core.query_video_format(out_family, vs.FLOAT, out_bits, 0, 0)
    template = vs.core.std.BlankClip(first, width=int(out_w), height=int(out_h), format=out_format.id, keep=True)
    in_name, out_name = spec.name, out_spec.name

    def process(n: int, frames: list[vs.VideoFrame], out: vs.VideoFrame) -> vs.VideoFrame:
        session.run_with({in_name: frames_to_array(frames, dtype)}, lambda r: write_frame(r[out_name][0], out))
        return copy_props(frames[0], out)

    return parallel_frames(template, clip_list, process, session.backend.num_streams)
