"""Calibration data for int8: crops of the user's own footage, as (C, H, W) float32 arrays in [0, 1].

Readers return plain arrays; `vssr.quant.qdq` feeds them to ONNX Runtime's calibrators. Only
`frames_from_clip` touches VapourSynth, and imports it when called (this package sits beside the
layers and must import without it).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import vapoursynth as vs

__all__ = ["IMAGE_SUFFIXES", "data_digest", "frames_from_clip", "images_from_folder", "random_crops"]

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


def _pick(count: int, frames: int) -> list[int]:
    """`frames` indices spread evenly over [0, count) (all of them if there are fewer)."""
    if frames <= 0:
        raise ValueError(f"frames must be positive, got {frames}")
    if count <= frames:
        return list(range(count))
    return [int(i) for i in np.linspace(0, count - 1, frames).round()]


def random_crops(images: Sequence[np.ndarray], crop: int | None, seed: int = 0, multiple: int = 1) -> list[np.ndarray]:
    """One random crop per (C, H, W) image, all of the same size (ORT's histogram calibrators need that).

    The size is crop x crop, shrunk to fit the smallest image (None: the smallest image's size),
    rounded down to `multiple` (the network's SizeReq).
    """
    rng = np.random.default_rng(seed)
    min_h = min((img.shape[1] for img in images), default=0)
    min_w = min((img.shape[2] for img in images), default=0)
    if crop:
        ch = cw = min(crop, min_h, min_w)  # square crops
    else:
        ch, cw = min_h, min_w
    ch, cw = ch // multiple * multiple, cw // multiple * multiple
    out = []
    for img in images:
        _, h, w = img.shape
        if ch == 0 or cw == 0:
            raise ValueError(f"image {w}x{h} is smaller than the network's size multiple {multiple}")
        y = int(rng.integers(0, h - ch + 1))
        x = int(rng.integers(0, w - cw + 1))
        out.append(np.ascontiguousarray(img[:, y : y + ch, x : x + cw], dtype=np.float32))
    return out


def images_from_folder(folder: str | os.PathLike[str], frames: int) -> list[np.ndarray]:
    """Up to `frames` images (sorted by name, spread evenly) of a folder, as RGB (3, H, W) in [0, 1]."""
    from PIL import Image

    path = Path(folder)
    if not path.is_dir():
        raise ValueError(f"calibration folder {os.fspath(path)!r} does not exist")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"calibration folder {os.fspath(path)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    out = []
    for i in _pick(len(files), frames):
        with Image.open(files[i]) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        out.append(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
    return out


def frames_from_clip(clip: vs.VideoNode, frames: int) -> list[np.ndarray]:
    """Up to `frames` frames spread evenly over a clip, as RGB (3, H, W) float32 in [0, 1].

    RGB clips are converted to 32-bit float; YUV clips go through the _Matrix of their first
    frame (BT.709 when unspecified), with the range their props say; GRAY clips are replicated to
    three channels.
    """
    import vapoursynth as vs

    fmt = clip.format
    if fmt is None:
        raise ValueError("the calibration clip must have a constant format")
    if fmt.color_family == vs.RGB:
        rgb = clip.resize.Point(format=vs.RGBS) if fmt.id != vs.RGBS else clip
    elif fmt.color_family == vs.GRAY:
        gray = clip.resize.Point(format=vs.GRAYS) if fmt.id != vs.GRAYS else clip
        rgb = vs.core.std.ShufflePlanes([gray, gray, gray], [0, 0, 0], vs.RGB)
    elif fmt.color_family == vs.YUV:
        matrix = int(clip.get_frame(0).props.get("_Matrix", 2))  # type: ignore[arg-type]
        rgb = clip.resize.Bicubic(format=vs.RGBS, matrix_in=1 if matrix in (2, 3) else matrix)
    else:
        raise ValueError(f"cannot calibrate on a {fmt.name} clip")
    out = []
    for n in _pick(clip.num_frames, frames):
        f = rgb.get_frame(n)
        arr = np.stack([np.asarray(f[p]) for p in range(3)]).astype(np.float32)
        out.append(np.clip(arr, 0.0, 1.0))
    return out


def data_digest(arrays: Sequence[np.ndarray]) -> str:
    """sha256 over the shapes and bytes of the calibration arrays (part of the cache key)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    return h.hexdigest()
