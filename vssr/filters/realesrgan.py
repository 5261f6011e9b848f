"""Real-ESRGAN (SRVGGNetCompact and RRDBNet) as a recipe over the generic inference path."""

from __future__ import annotations

import os

import vapoursynth as vs

from .. import zoo
from ..backends import BackendConfig
from ..glue.checks import check_backend, check_clip, check_model_source, tile_overlap, user_errors
from ..glue.color import converts_color
from ..inference import inference

__all__ = ["DEFAULT_OVERLAP", "RealESRGAN"]

DEFAULT_OVERLAP = 8
"""Context pixels per tile side with tilesize and no overlap given."""


@converts_color()
def RealESRGAN(
    clip: vs.VideoNode,
    model: str | os.PathLike[str] = "animevideov3",
    *,
    backend: BackendConfig | None = None,
    tilesize: int | tuple[int, int] | None = None,
    overlap: int | tuple[int, int] | None = None,
) -> vs.VideoNode:
    """Upscale with Real-ESRGAN.

    Args:
        clip: RGBS or RGBH (RGBH runs with fp16 input and output tensors).
        model: a zoo name (see `vssr.zoo.names("realesrgan")`: "animevideov3" (x4),
            "animevideov3-x2", "animevideov3-x3", "x4plus", "x4plus-anime", ...), or the path of an
            official .pth checkpoint, an ncnn .param (with its .bin beside it) or an ONNX file.
        backend: a vssr.Backend.* config; default: the fastest CPU backend installed.
        tilesize: tile size (int or (width, height)); None runs whole frames.
        overlap: context pixels per tile side, only with tilesize (default 8 there).

    Raises:
        VssrError: on invalid arguments, unknown model names, unreadable model files.
    """
    check_clip(clip, RealESRGAN, families=(vs.RGB,))
    check_model_source(model, RealESRGAN, "model", "a zoo name (vssr.zoo.names('realesrgan')) or a model file path")
    check_backend(backend, RealESRGAN)
    overlap = tile_overlap(tilesize, overlap, RealESRGAN, DEFAULT_OVERLAP)
    with user_errors(RealESRGAN):
        network = zoo.network("realesrgan", model, func=RealESRGAN)
    return inference(clip, network, backend, tilesize=tilesize, overlap=overlap, func=RealESRGAN)
