"""Real-ESRGAN (SRVGGNetCompact and RRDBNet) as a recipe over the generic inference path."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import vapoursynth as vs

from .. import zoo
from ..backends import BackendConfig
from ..glue.checks import check_backend, check_clip, tile_overlap
from ..glue.color import converts_color
from ..inference import inference

__all__ = ["DEFAULT_OVERLAP", "RealESRGAN"]

DEFAULT_OVERLAP = 8
"""Context pixels per tile side with tilesize and no overlap given."""


@converts_color()
def RealESRGAN(
    clip: vs.VideoNode,
    model: str | os.PathLike[str] | Mapping[str, np.ndarray] = "animevideov3",
    *,
    backend: BackendConfig | None = None,
    tilesize: int | tuple[int, int] | None = None,
    overlap: int | tuple[int, int] | None = None,
) -> vs.VideoNode:
    """Upscale with Real-ESRGAN.

    Args:
        clip: any constant format (YUV and integer clips are converted from their props and back;
            RGBS/RGBH run as they are, RGBH with fp16 input and output tensors).
        model: a zoo name (see `vssr.zoo.names("realesrgan")`: "animevideov3" (x4),
            "animevideov3-x2", "animevideov3-x3", "x4plus", "x4plus-anime", ...), a name `vssr
            download realesrgan` fetches ("x2plus", "general-x4v3", ...), the path of an official
            .pth checkpoint, an ncnn .param (with its .bin beside it) or an ONNX file, or a state
            dict (docs/parameters.md, "model=: one rule").
        backend: a vssr.Backend.* config; default: the fastest CPU backend installed.
        tilesize: tile size (int or (width, height)); None runs whole frames.
        overlap: context pixels per tile side, only with tilesize (default 8 there).

    Raises:
        VssrError: on invalid arguments, unknown model names, unreadable model files.
    """
    check_clip(clip, RealESRGAN, families=(vs.RGB,))
    check_backend(backend, RealESRGAN)
    overlap = tile_overlap(tilesize, overlap, RealESRGAN, DEFAULT_OVERLAP)
    network = zoo.resolve("realesrgan", model, func=RealESRGAN).network
    return inference(clip, network, backend, tilesize=tilesize, overlap=overlap, func=RealESRGAN)
