"""YUV <-> RGB for the scripts `vssr upscale` and `vssr interpolate` generate, with the matrix,
range and chroma siting read from the source's frame props (never a hard-coded BT.709).

Kept in one place on purpose: once the model functions take YUV clips themselves and return the
input's format and props, the generated scripts drop these two calls.
"""

from __future__ import annotations

import logging

import vapoursynth as vs

__all__ = ["colour_props", "to_rgb", "to_source_format"]

logger = logging.getLogger(__name__)

KEYS = ("_Matrix", "_Transfer", "_Primaries", "_Range", "_ChromaLocation")
UNSPECIFIED = 2  # _Matrix/_Transfer/_Primaries: unknown
BT709, BT601 = 1, 6  # _Matrix values (BT.601 as SMPTE 170M)


def colour_props(clip: vs.VideoNode) -> dict[str, int]:
    """The colour props of the clip's first frame; an unknown YUV matrix is guessed as players do
    (BT.601 up to 1024x576, else BT.709) and the guess is logged."""
    props = clip.get_frame(0).props
    found = {key: int(props[key]) for key in KEYS if key in props}
    if clip.format.color_family == vs.YUV:
        if found.get("_Matrix", UNSPECIFIED) == UNSPECIFIED:
            found["_Matrix"] = BT601 if clip.width <= 1024 and clip.height <= 576 else BT709
            logger.warning("the source does not say its YUV matrix; assuming %s from its size %dx%d",
                           "BT.601" if found["_Matrix"] == BT601 else "BT.709", clip.width, clip.height)
        found.setdefault("_Range", 0)  # limited, as nearly every YUV video
        found.setdefault("_ChromaLocation", 0)  # left
    return found


def to_rgb(clip: vs.VideoNode, props: dict[str, int], fmt: int = vs.RGBS) -> vs.VideoNode:
    """The clip as RGBS/RGBH for a model, converted with the matrix and range in `props`."""
    if clip.format.color_family != vs.YUV:
        return vs.core.resize.Bicubic(clip, format=fmt)
    return vs.core.resize.Bicubic(clip, format=fmt, matrix_in=props["_Matrix"], range_in=props["_Range"],
                                  chromaloc_in=props["_ChromaLocation"])


def to_source_format(rgb: vs.VideoNode, source: vs.VideoNode, props: dict[str, int]) -> vs.VideoNode:
    """A model's RGB output back in the source's format, matrix, range and siting, with its props."""
    fmt = source.format
    if fmt.color_family == vs.YUV:
        out = vs.core.resize.Bicubic(rgb, format=fmt.id, matrix=props["_Matrix"], range=props["_Range"],
                                     chromaloc=props["_ChromaLocation"])
    else:
        out = vs.core.resize.Bicubic(rgb, format=fmt.id)
    return vs.core.std.SetFrameProps(out, **props)
