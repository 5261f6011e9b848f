"""Clips made from numpy arrays, for tests that compare VapourSynth output with stored references."""

from __future__ import annotations

import numpy as np
import vapoursynth as vs

__all__ = ["array_clip"]


def array_clip(core: vs.Core, data: np.ndarray, fpsnum: int = 30000, fpsden: int = 1001) -> vs.VideoNode:
    """An RGBS clip whose frame n holds data[n] ([N, 3, H, W] float32), with a `source_index` prop."""
    n, _, h, w = data.shape
    blank = core.std.BlankClip(width=w, height=h, format=vs.RGBS, length=n, fpsnum=fpsnum, fpsden=fpsden)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        f = f.copy()
        for p in range(3):
            np.asarray(f[p])[:] = data[n, p]
        f.props["source_index"] = n
        f.props["_Matrix"] = 0
        return f

    return core.std.ModifyFrame(blank, blank, fill)
