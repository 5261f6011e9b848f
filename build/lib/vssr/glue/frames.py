"""VideoFrame planes <-> NCHW ndarrays. RGBH stays float16: no float32 round trip."""

from __future__ import annotations

import numpy as np
import vapoursynth as vs

__all__ = ["dtype_of", "frame_to_array", "frames_to_array", "write_frame"]


def dtype_of(fmt: vs.VideoFormat) -> np.dtype:
    return np.dtype(np.float16 if fmt.bits_per_sample == 16 else np.float32)


def frame_to_array(frame: vs.VideoFrame) -> np.ndarray:
    """(C, H, W) copy of a float frame; one strided copy per plane."""
    fmt = frame.format
    out = np.empty((fmt.num_planes, frame.height, frame.width), dtype_of(fmt))
    for p in range(fmt.num_planes):
        np.copyto(out[p], np.asarray(frame[p]))
    return out


def frames_to_array(frames: list[vs.VideoFrame], dtype: np.dtype) -> np.ndarray:
    """(1, sum of planes, H, W) array: the planes of all frames concatenated as channels."""
    first = frames[0]
    channels = sum(f.format.num_planes for f in frames)
    out = np.empty((1, channels, first.height, first.width), dtype)
    c = 0
    for frame in frames:
        for p in range(frame.format.num_planes):
            np.copyto(out[0, c], np.asarray(frame[p]), casting="same_kind")
            c += 1
    return out


def write_frame(array: np.ndarray, frame: vs.VideoFrame) -> vs.VideoFrame:
    """Write a (C, H, W) array into the planes of a writable frame."""
    for p in range(frame.format.num_planes):
        np.copyto(np.asarray(frame[p]), array[p], casting="same_kind")
    return frame


def copy_props(source: vs.VideoFrame, out: vs.VideoFrame) -> vs.VideoFrame:
    """Carry the frame properties of `source` over to the writable frame `out`."""
    props = out.props
    for key, value in source.props.items():
        props[key] = value
    return out
