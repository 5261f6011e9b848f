"""vs-mlrt call sites run unchanged through vssr.compat.vsmlrt and equal the native vssr calls."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
import pytest
import vapoursynth as vs

import vssr
from tests import nets
from tests.filters.test_rife import clip_of, moving, pkl
from tests.weights.test_rife_weights import fake_vsmlrt
from vssr.compat import vsmlrt
from vssr.compat.vsmlrt import RIFE, Backend, RealESRGAN, RealESRGANModel, RIFEModel, inference


def frames(clip: vs.VideoNode) -> np.ndarray:
    return np.stack([np.stack([np.asarray(f[p]) for p in range(f.format.num_planes)]) for f in clip.frames()])


def assert_same(a: vs.VideoNode, b: vs.VideoNode) -> None:
    assert (a.format.id, a.width, a.height, a.num_frames, a.fps) == (b.format.id, b.width, b.height, b.num_frames, b.fps)
    np.testing.assert_array_equal(frames(a), frames(b))


@pytest.fixture
def models_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(vsmlrt, "models_path", str(tmp_path / "models"))
    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "vssr-models"))
    return tmp_path / "models"


def source(w: int = 48, h: int = 32, n: int = 2) -> vs.VideoNode:
    return clip_of(moving(n, h, w), fmt=vs.RGBS, fps=(25, 1))


def test_realesrgan_model_enum_tiles_and_scale() -> None:
    """vs-mlrt issue call: RealESRGAN(clip, model=2, tiles=2, scale=2)."""
    clip = source()
    out = RealESRGAN(clip, model=2, tiles=2, scale=2, backend=Backend.ORT_CPU())
    # vs-mlrt's tiles=2 with its default overlap 8: tiles of ceil((48 + 16) / 2) x ceil((32 + 16) / 2)
    native = vssr.RealESRGAN(clip, "animevideov3", backend=vssr.Backend.ORT(num_streams=1), tilesize=(32, 24),
                             overlap=8)
    assert_same(out, vs.core.resize.Lanczos(native, 96, 64, filter_param_a=4))
    assert RealESRGANModel.animevideov3 == 2


def test_realesrgan_other_models_need_vsmlrt_files(models_path: Path) -> None:
    with pytest.raises(vs.Error, match=r"model=animevideo_xsx2 \(0\) needs vs-mlrt's RealESRGANv2-animevideo-xsx2.onnx"):
        RealESRGAN(source())  # vs-mlrt's default model; never silently another one
    path = models_path / "RealESRGANv2" / "RealESRGANv2-animevideo-xsx2.onnx"
    path.parent.mkdir(parents=True)
    onnx.save(nets.pixel_shuffle_x2(), path)
    out = RealESRGAN(source(), backend=Backend.ORT_CPU())
    assert_same(out, vssr.inference(source(), path, vssr.Backend.ORT(num_streams=1)))


def test_inference_positional_and_network_path(tmp_path: Path) -> None:
    """vs-mlrt issue call: inference([c], path, (8, 8), (256, 256)), and network_path=."""
    path = tmp_path / "net.onnx"
    onnx.save(nets.conv3x3(layers=2), path)
    clip = source(64, 48)
    native = vssr.inference(clip, path, vssr.Backend.ORT(num_streams=1), tilesize=(32, 32), overlap=(8, 8))
    assert_same(inference([clip], str(path), (8, 8), (32, 32), Backend.ORT_CPU()), native)
    assert_same(inference(clips=[clip], network_path=str(path), backend=Backend.ORT_CPU()),
                vssr.inference(clip, path, vssr.Backend.ORT(num_streams=1)))
    serialized = inference([clip], path.read_bytes(), backend=Backend.ORT_CPU(), path_is_serialization=True)
    assert_same(serialized, vssr.inference(clip, path, vssr.Backend.ORT(num_streams=1)))
    half = inference([clip], str(path), backend=Backend.ORT_CPU(output_format=1))
    assert half.format.id == vs.RGBH  # vs-mlrt's fp16 output of an fp32 clip


def test_rife_fraction_with_vsmlrt_onnx(models_path: Path) -> None:
    """vs-mlrt issue call: RIFE(clip, multi=Fraction(5, 2)), with vs-mlrt's rife_v4.6.onnx."""
    path = models_path / "rife" / "rife_v4.6.onnx"
    path.parent.mkdir(parents=True)
    onnx.save(fake_vsmlrt(11), path)
    clip = source(64, 32, n=4)
    out = RIFE(clip, multi=Fraction(5, 2), model=RIFEModel.v4_6, backend=Backend.ORT_CPU())
    native = vssr.RIFE(clip, factor_num=5, factor_den=2, model=path, sc_threshold=None,
                       backend=vssr.Backend.ORT(num_streams=1))
    assert out.num_frames == 10 and out.fps == Fraction(125, 2)
    assert_same(out, native)
    with pytest.raises(vs.Error, match="tiling is not supported"):
        RIFE(clip, tiles=2, model=46)


def test_rife_int_model_falls_back_to_a_flownet_pkl(models_path: Path, tmp_path: Path) -> None:
    weights = pkl(tmp_path, "4.22")
    (tmp_path / "vssr-models" / "rife").mkdir(parents=True)
    weights.rename(tmp_path / "vssr-models" / "rife" / "flownet_v4.22.pkl")
    clip = source(64, 32, n=3)
    out = RIFE(clip, model=422, backend=Backend.ORT_CPU())
    native = vssr.RIFE(clip, multi=2, model=tmp_path / "vssr-models" / "rife" / "flownet_v4.22.pkl",
                       sc_threshold=None, backend=vssr.Backend.ORT(num_streams=1))
    assert_same(out, native)
    with pytest.raises(vs.Error, match=r"rife_v4.25_lite.onnx in .*flownet_v4.25-lite.pkl"):
        RIFE(clip, model=RIFEModel.v4_25_lite)


def test_backends_map_to_vssr_configs() -> None:
    ov = Backend.OV_CPU().to_vssr()
    assert (ov.precision, ov.ov_streams, ov.cpu_pinning) == ("f32", 1, True)  # vs-mlrt's f32 hint, not bf16
    assert Backend.OV_CPU(bf16=True, num_streams=3).to_vssr().precision == "bf16"
    assert Backend.OV_CPU(fp16=True).to_vssr().precision == "f16"
    assert Backend.OV_GPU(device_id=1).to_vssr().device == "GPU.1"
    assert Backend.ORT_CUDA(device_id=1).to_vssr() == vssr.Backend.ORT(num_streams=1, providers=("CUDA",), device_id=1,
                                                                        verbosity=2)
    trt = Backend.TRT(fp16=True, static_shape=False, min_shapes=(0, 0), opt_shapes=(64, 64), max_shapes=(128, 128),
                      output_format=1, workspace=1024).settings()
    assert trt["min_shapes"] is None and trt["max_shapes"] == (128, 128) and trt["output_dtype"] == "float16"
    assert trt["fp16"] and trt["workspace"] == 1024 and trt["use_cuda_graph"]
    rtx = Backend.TRT_RTX(fp16=True).to_vssr()
    assert type(rtx).__name__ == "TRT_RTX" and rtx.fp16 and not rtx.use_cuda_graph
    assert dataclasses.fields(vsmlrt.BackendV2.TRT) == dataclasses.fields(Backend.TRT)
    for unsupported in (Backend.NCNN_VK(), Backend.ORT_DML(), Backend.MIGX(), Backend.ORT_COREML()):
        with pytest.raises(vs.Error, match="vssr has no"):
            inference([source()], "x.onnx", backend=unsupported)


def test_fallback_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "net.onnx"
    onnx.save(nets.identity(), path)
    monkeypatch.setattr(vsmlrt, "fallback_backend", Backend.ORT_CPU())
    out = inference([source()], str(path), backend=Backend.NCNN_VK())
    assert_same(out, vssr.inference(source(), path, vssr.Backend.ORT(num_streams=1)))


def test_native_aliases_of_vsmlrt_spellings() -> None:
    assert vssr.Backend.OV_CPU(bf16=True) == Backend.OV_CPU(bf16=True).to_vssr()
    assert vssr.Backend.ORT_CPU(num_streams=2) == vssr.Backend.ORT(num_streams=2, verbosity=2)
    assert vssr.Backend.OV(bf16=True) == vssr.Backend.OV(precision="bf16")  # vs-mlrt's field name on vssr's OV
    with pytest.raises(ValueError, match="bf16=True is vs-mlrt's spelling of precision='bf16'"):
        vssr.Backend.OV(bf16=True, precision="f32")
    with pytest.raises(TypeError, match=r"vssr.Backend.OV_CPU takes vs-mlrt's fields .*use vssr.Backend.OV"):
        vssr.Backend.OV_CPU(precision="bf16")
