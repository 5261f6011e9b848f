"""Image-quality metrics computed the way super-resolution papers do.

Pure numpy: no vapoursynth, no runtime. The convention (shared/data/README.md):

1. HR is mod-cropped (top-left) to a multiple of the scale: :func:`mod_crop`.
2. LR is MATLAB ``imresize(hr, 1/s, 'bicubic')``: Keys cubic (a = -0.5), kernel widened by ``s``
   when downscaling (antialiasing), symmetric border padding, rounded to uint8: :func:`imresize`.
3. PSNR/SSIM on Y of BT.601 studio range (MATLAB ``rgb2ycbcr``), ``s`` pixels cropped from each
   border, peak 255: :func:`rgb_to_y`, :func:`psnr`, :func:`ssim`, :func:`sr_scores`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "SRImage",
    "imresize",
    "load_sr_set",
    "mod_crop",
    "psnr",
    "rgb_to_y",
    "score_sr_set",
    "sr_scores",
    "ssim",
    "to_uint8",
]


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def _contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights (out_len, P) and 0-based source indices (out_len, P) along one axis."""
    width = 4.0
    if scale < 1:  # antialiasing: stretch the kernel by 1/scale

        def kernel(x: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * x)

        width /= scale
    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # output pixel centre in input coordinates (1-based)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based
    weights = kernel(u[:, None] - idx)
    weights /= weights.sum(axis=1, keepdims=True)
    # symmetric padding: mirror the 1-based indices into [1, in_len]
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    idx = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], idx[:, keep]


def _resize_axis(a: np.ndarray, axis: int, out_len: int, scale: float) -> np.ndarray:
    weights, idx = _contributions(a.shape[axis], out_len, scale)
    moved = np.moveaxis(a, axis, 0)  # (in_len, ...)
    gathered = moved[idx]  # (out_len, P, ...)
    w = weights.reshape(weights.shape + (1,) * (moved.ndim - 1))
    return np.moveaxis((gathered * w).sum(axis=1), 0, axis)


def imresize(image: np.ndarray, scale: float, output_shape: tuple[int, int] | None = None) -> np.ndarray:
    """MATLAB ``imresize(image, scale, 'bicubic')`` for an (H, W) or (H, W, C) array.

    uint8 input gives uint8 output (rounded and clipped, as MATLAB does); float input gives
    float64 output, unclipped. ``output_shape`` (H, W) overrides the size computed from ``scale``
    (MATLAB: ``ceil(scale * size)``).
    """
    a = np.asarray(image)
    is_uint8 = a.dtype == np.uint8
    h, w = a.shape[:2]
    if output_shape is None:
        output_shape = (math.ceil(h * scale), math.ceil(w * scale))
    out = a.astype(np.float64)
    # MATLAB resizes along the dimension with the smallest scale first; rows first on ties.
    order = sorted(range(2), key=lambda d: scale)
    for axis in order:
        out = _resize_axis(out, axis, output_shape[axis], scale)
    if is_uint8:
        return np.clip(np.round(out), 0, 255).astype(np.uint8)
    return out


def mod_crop(image: np.ndarray, scale: int) -> np.ndarray:
    """Keep rows/columns ``[0, H - H % scale)`` and ``[0, W - W % scale)``."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A float image in [0, 1] -> uint8 (rounded, clipped)."""
    return np.clip(np.round(np.asarray(image, np.float64) * 255.0), 0, 255).astype(np.uint8)


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """Y of BT.601 studio range (MATLAB ``rgb2ycbcr`` Y, unrounded) from uint8 RGB (H, W, 3).

    Single-channel input (H, W) or (H, W, 1) is taken as Y directly, as the MATLAB evaluation
    code does for grey images. Returns float64 on the 0..255 scale.
    """
    a = np.asarray(image)
    if a.ndim == 2:
        return a.astype(np.float64)
    if a.shape[2] == 1:
        return a[..., 0].astype(np.float64)
    rgb = a.astype(np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def _shave(a: np.ndarray, border: int) -> np.ndarray:
    return a[border : a.shape[0] - border, border : a.shape[1] - border] if border else a


def psnr(a: np.ndarray, b: np.ndarray, *, border: int = 0, peak: float = 255.0) -> float:
    """PSNR in dB between two same-shaped arrays on the ``peak`` scale, ``border`` px shaved."""
    x = _shave(np.asarray(a, np.float64), border)
    y = _shave(np.asarray(b, np.float64), border)
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {y.shape}")
    mse = float(np.mean((x - y) ** 2))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(r * r) / (2 * sigma * sigma))
    g /= g.sum()
    return g


def _filter_valid(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a 2-D array with the 1-D window g along both axes."""
    n = g.size
    rows = sum(g[k] * a[k : a.shape[0] - n + 1 + k, :] for k in range(n))
    return sum(g[k] * rows[:, k : rows.shape[1] - n + 1 + k] for k in range(n))


def ssim(a: np.ndarray, b: np.ndarray, *, border: int = 0, peak: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1/K2 = 0.01/0.03."""
    x = _shave(np.asarray(a, np.float64), border)
    y = _shave(np.asarray(b, np.float64), border)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"ssim needs two same-shaped 2-D arrays, got {x.shape} and {y.shape}")
    g = _gaussian_window()
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mx, my = _filter_valid(x, g), _filter_valid(y, g)
    sxx = _filter_valid(x * x, g) - mx * mx
    syy = _filter_valid(y * y, g) - my * my
    sxy = _filter_valid(x * y, g) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


def sr_scores(sr: np.ndarray, hr: np.ndarray, scale: int) -> tuple[float, float]:
    """(PSNR, SSIM) of an SR result against its HR, both uint8 (H, W[, C]), the paper way."""
    if sr.dtype != np.uint8 or hr.dtype != np.uint8:
        raise ValueError("sr_scores takes uint8 images: round/clip the SR output first (to_uint8)")
    ys, yh = rgb_to_y(sr), rgb_to_y(hr)
    border = math.ceil(scale)
    return psnr(ys, yh, border=border), ssim(ys, yh, border=border)


@dataclass(frozen=True, slots=True)
class SRImage:
    name: str
    hr: np.ndarray
    """Mod-cropped ground truth, uint8 (H, W, 3), or (H, W) for grey images."""
    lr: np.ndarray
    """MATLAB-bicubic downscale of hr, uint8."""


def load_sr_set(folder: str | os.PathLike[str], scale: int) -> list[SRImage]:
    """A benchmark folder of PNGs (Set5, Set14) as mod-cropped HR + bicubic LR pairs (needs Pillow)."""
    from PIL import Image

    out = []
    for f in sorted(Path(folder).glob("*.png")):
        with Image.open(f) as im:
            arr = np.asarray(im.convert("L") if im.mode in ("L", "LA", "I;16") else im.convert("RGB"))
        hr = mod_crop(arr, scale)
        out.append(SRImage(f.stem, hr, imresize(hr, 1 / scale)))
    return out


def score_sr_set(
    upscale: Callable[[np.ndarray], np.ndarray], images: list[SRImage], scale: int
) -> tuple[float, float, dict[str, float]]:
    """Mean (PSNR, SSIM) of `upscale` over a set, plus PSNR per image.

    `upscale` takes an RGB uint8 LR (h, w, 3) and returns RGB (s*h, s*w, 3) floats in [0, 1] or
    uint8. Grey images are fed as three equal channels; the mean of the output's channels is their
    Y (as the MATLAB evaluation takes a grey image's values as Y).
    """
    psnrs, ssims, per = [], [], {}
    for img in images:
        lr = img.lr if img.lr.ndim == 3 else np.repeat(img.lr[..., None], 3, axis=2)
        sr = np.asarray(upscale(lr))
        sr8 = sr if sr.dtype == np.uint8 else to_uint8(sr)
        if img.hr.ndim == 2:
            sr8 = np.clip(np.round(sr8.astype(np.float64).mean(axis=2)), 0, 255).astype(np.uint8)
        if sr8.shape != img.hr.shape:
            raise ValueError(f"{img.name}: upscaled shape {sr8.shape} != HR shape {img.hr.shape}")
        p, q = sr_scores(sr8, img.hr, scale)
        psnrs.append(p)
        ssims.append(q)
        per[img.name] = p
    return float(np.mean(psnrs)), float(np.mean(ssims)), per
