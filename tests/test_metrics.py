"""vssr.metrics: hand-computed cases, and the published bicubic Set5 x2 baseline (33.66 dB)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from vssr import metrics


def test_psnr_known_arrays() -> None:
    a = np.zeros((8, 8))
    b = np.full((8, 8), 10.0)
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))
    assert metrics.psnr(a, a) == math.inf
    # the border is shaved before the error is taken: only the centre differs here
    c = a.copy()
    c[0, :] = 255
    assert metrics.psnr(a, c, border=1) == math.inf
    d = a.copy()
    d[2:6, 2:6] = 5.0  # 16 of the 36 inner pixels off by 5
    assert metrics.psnr(a, d, border=1) == pytest.approx(10 * math.log10(255**2 / (25 * 16 / 36)))


def test_rgb_to_y_bt601_studio_range() -> None:
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], np.uint8)
    y = metrics.rgb_to_y(rgb)
    np.testing.assert_allclose(y, [[16.0, 235.0, 16.0 + 65.481]], atol=1e-9)
    grey = np.array([[7, 200]], np.uint8)
    np.testing.assert_array_equal(metrics.rgb_to_y(grey), [[7.0, 200.0]])  # grey is taken as Y


def test_imresize_upscale_hand_computed() -> None:
    # x2 on [0, 1]: output pixel 2 sits at input coordinate 1.25 (1-based). Keys a=-0.5 weights at
    # distances 1.25, 0.25, -0.75, -1.75 are -0.0703125, 0.8671875, 0.2265625, -0.0234375; the
    # symmetric border maps index 0 -> 1 and 3 -> 2, so the value is 0.2265625 - 0.0234375.
    # Output pixel 1 (coordinate 0.75) sees b through the mirrored index -1 -> 2 (weight -0.0234375)
    # and index 2 (weight -0.0703125): the overshoot -0.09375 (float input is not clipped).
    row = np.array([[0.0, 1.0]])
    out = metrics.imresize(row, 2.0)
    assert out.shape == (2, 4)
    np.testing.assert_allclose(out[0], [-0.09375, 0.203125, 0.796875, 1.09375], atol=1e-12)
    np.testing.assert_allclose(out[1], out[0], atol=1e-12)


def test_imresize_downscale_properties() -> None:
    const = np.full((10, 12, 3), 77, np.uint8)
    small = metrics.imresize(const, 0.5)
    assert small.shape == (5, 6, 3) and small.dtype == np.uint8
    assert (small == 77).all()
    # antialiasing: a 1-px checkerboard averages out to grey when halved (no aliasing)
    checker = (np.indices((16, 16)).sum(axis=0) % 2 * 255).astype(np.float64)
    np.testing.assert_allclose(metrics.imresize(checker, 0.5)[3:-3, 3:-3], 127.5, atol=1e-9)


def test_ssim_hand_computed() -> None:
    a = np.full((16, 16), 100.0)
    b = np.full((16, 16), 120.0)
    c1 = (0.01 * 255) ** 2
    want = (2 * 100 * 120 + c1) / (100**2 + 120**2 + c1)  # no variance: the contrast term is 1
    assert metrics.ssim(a, b) == pytest.approx(want)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (32, 32))
    assert metrics.ssim(x, x) == pytest.approx(1.0)
    assert 0.5 < metrics.ssim(x, x + rng.normal(0, 20, x.shape)) < 0.99


def test_mod_crop_and_to_uint8() -> None:
    assert metrics.mod_crop(np.zeros((7, 10, 3)), 3).shape == (6, 9, 3)
    np.testing.assert_array_equal(metrics.to_uint8(np.array([-0.1, 0.5, 1.2, 0.2])), [0, 128, 255, 51])


def test_bicubic_set5_baseline(shared_data: Path) -> None:
    from PIL import Image

    scores = []
    for f in sorted((shared_data / "sr-bench" / "Set5").glob("*.png")):
        hr = metrics.mod_crop(np.asarray(Image.open(f).convert("RGB")), 2)
        up = metrics.imresize(metrics.imresize(hr, 0.5), 2.0)
        scores.append(metrics.sr_scores(up, hr, 2))
    psnr, ssim = np.mean(scores, axis=0)
    # published bicubic x2 Set5 (MATLAB): 33.66 dB / 0.9299
    assert 33.64 <= psnr <= 33.71
    assert 0.928 <= ssim <= 0.932
