"""`from vssr.compat import vsmlrt`: vs-mlrt's RealESRGAN, RIFE, inference and Backend on vssr.

Signatures, enums and defaults follow vs-mlrt's scripts/vsmlrt.py 3.23 (read, not copied; it is
GPL). Differences a user can see are listed in docs/compat.md; the main ones:

- Model files: vs-mlrt's ONNX files are looked for in `models_path` (vs-mlrt's own models folder
  when its plugins are loaded, else `<vssr models dir>/vsmlrt`), with vs-mlrt's names
  (RealESRGANv2/..., rife/rife_v4.6.onnx). RealESRGANModel.animevideov3 (2) also runs from vssr's
  own zoo, and RIFE falls back to a flownet .pkl of that version when present.
- Any clip is accepted (YUV and integer clips are converted as vssr's functions do).
- Backends: `Backend.OV_CPU()` keeps vs-mlrt's f32 precision hint (vssr's own default picks bf16).
"""

from __future__ import annotations

import enum
import logging
import math
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import onnx
import vapoursynth as vs

from .. import files
from ..backends.vsmlrt_names import Backend, BackendV2, to_vssr
from ..catalog import rife_weights
from ..filters.realesrgan import RealESRGAN as _RealESRGAN
from ..filters.rife import RIFE as _RIFE
from ..glue.checks import VssrError, raised_at_caller, user_errors
from ..inference import inference as _inference

__all__ = [
    "RIFE",
    "Backend",
    "BackendV2",
    "RIFEModel",
    "RealESRGAN",
    "RealESRGANModel",
    "RealESRGANv2",
    "RealESRGANv2Model",
    "calc_tilesize",
    "fallback_backend",
    "inference",
    "models_path",
]

logger = logging.getLogger("vssr.compat")


def _default_models_path() -> str:
    for plugin in ("ov", "ort", "ncnn", "trt", "trt_rtx", "migx"):
        ns = getattr(vs.core, plugin, None)
        if ns is not None:
            return os.path.join(os.path.dirname(ns.plugin.plugin_path), "models")
    return os.fspath(files.models_dir() / "vsmlrt")


models_path: str = _default_models_path()
"""Where vs-mlrt's ONNX model files are; reassign it as with vs-mlrt."""

fallback_backend: object = None
"""A backend to retry with when the one asked for fails (vs-mlrt's global of the same name)."""


class RealESRGANModel(enum.IntEnum):
    animevideo_xsx2 = 0
    animevideo_xsx4 = 1
    animevideov3 = 2
    animejanaiV2L1 = 5005
    animejanaiV2L2 = 5006
    animejanaiV2L3 = 5007
    animejanaiV3_HD_L1 = 5008
    animejanaiV3_HD_L2 = 5009
    animejanaiV3_HD_L3 = 5010
    Ani4Kv2_G6i2_Compact = 7000
    Ani4Kv2_G6i2_UltraCompact = 7001


RealESRGANv2Model = RealESRGANModel


class RIFEModel(enum.IntEnum):
    """vs-mlrt's values: 46 is v4.6, 422 v4.22, 4221 v4.22 lite, 4252 v4.25 heavy."""

    v4_0 = 40
    v4_2 = 42
    v4_3 = 43
    v4_4 = 44
    v4_5 = 45
    v4_6 = 46
    v4_7 = 47
    v4_8 = 48
    v4_9 = 49
    v4_10 = 410
    v4_11 = 411
    v4_12 = 412
    v4_12_lite = 4121
    v4_13 = 413
    v4_13_lite = 4131
    v4_14 = 414
    v4_14_lite = 4141
    v4_15 = 415
    v4_15_lite = 4151
    v4_16_lite = 4161
    v4_17 = 417
    v4_17_lite = 4171
    v4_18 = 418
    v4_19 = 419
    v4_20 = 420
    v4_21 = 421
    v4_22 = 422
    v4_22_lite = 4221
    v4_23 = 423
    v4_24 = 424
    v4_25 = 425
    v4_25_lite = 4251
    v4_25_heavy = 4252
    v4_26 = 426
    v4_26_heavy = 4262


def calc_tilesize(tiles: int | tuple[int, int] | None, tilesize: int | tuple[int, int] | None, width: int,
                  height: int, multiple: int, overlap_w: int, overlap_h: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """vs-mlrt's tile arithmetic: `tiles` tiles per side cover the frame with the overlaps."""
    if tilesize is not None:
        pair = (tilesize, tilesize) if isinstance(tilesize, int) else tuple(tilesize)
        return (int(pair[0]), int(pair[1])), (overlap_w, overlap_h)
    if tiles is None:
        return (width, height), (0, 0)
    nx, ny = (tiles, tiles) if isinstance(tiles, int) else tiles

    def side(length: int, count: int, overlap: int) -> int:
        return math.ceil((length + 2 * overlap * (count - 1)) / (count * multiple)) * multiple

    return (side(width, nx, overlap_w), side(height, ny, overlap_h)), (overlap_w, overlap_h)


def _with_fallback(func: str, run: object, backend: object) -> vs.VideoNode:
    """Run `run(vssr_backend)`; on failure, retry with `fallback_backend` when set (vs-mlrt does).

    vs-mlrt's output_format=1 (fp16 output of an fp32 clip) is honoured here for every backend.
    """

    def attempt(chosen: object) -> vs.VideoNode:
        with user_errors(func):
            config = to_vssr(chosen)
        return run(config)  # type: ignore[operator]

    try:
        out = attempt(backend)
    except vs.Error as err:
        if fallback_backend is None:
            raise
        logger.warning("%s: %s; retrying with fallback_backend %s", func, err, type(fallback_backend).__name__)
        backend = fallback_backend
        out = attempt(backend)
    fmt = out.format
    if getattr(backend, "output_format", 0) == 1 and fmt.sample_type == vs.FLOAT and fmt.bits_per_sample == 32:
        out = vs.core.resize.Point(out, format=fmt.replace(bits_per_sample=16).id)
    return out


def _vsmlrt_file(func: str, *parts: str) -> Path | None:
    path = Path(models_path, *parts)
    return path if path.is_file() else None


@raised_at_caller
def RealESRGAN(
    clip: vs.VideoNode,
    tiles: int | tuple[int, int] | None = None,
    tilesize: int | tuple[int, int] | None = None,
    overlap: int | tuple[int, int] | None = None,
    model: int = RealESRGANModel.animevideo_xsx2,
    backend: object = Backend.OV_CPU(),
    scale: float | None = None,
) -> vs.VideoNode:
    """vs-mlrt's RealESRGAN: model 2 (animevideov3, x4) runs from vssr's zoo; the others need
    vs-mlrt's ONNX in models_path/RealESRGANv2/. `scale` resamples the result (Lanczos, 4 taps)."""
    func = "vsmlrt.RealESRGAN"
    if not isinstance(model, int) or model not in RealESRGANModel.__members__.values():
        raise VssrError(func, f"model must be a RealESRGANModel value ({', '.join(map(str, map(int, RealESRGANModel)))}), "
                              f"not {model!r}")
    member = RealESRGANModel(model)
    name = {0: "RealESRGANv2-animevideo-xsx2.onnx", 1: "RealESRGANv2-animevideo-xsx4.onnx",
            2: "realesr-animevideov3.onnx"}.get(member, f"{member.name.replace('_', '-')}.onnx")
    network: str | Path | None = _vsmlrt_file(func, "RealESRGANv2", name)
    if network is None and member == RealESRGANModel.animevideov3:
        network = "animevideov3"  # the same weights, from vssr's zoo
    if network is None:
        raise VssrError(func, f"model={member.name} ({int(member)}) needs vs-mlrt's {name} in "
                              f"{os.path.join(models_path, 'RealESRGANv2')} (set vsmlrt.models_path), or use "
                              "model=2 (animevideov3, from vssr's zoo)")
    ov = 8 if overlap is None else overlap
    ow, oh = (ov, ov) if isinstance(ov, int) else ov
    tile, (ow, oh) = calc_tilesize(tiles, tilesize, clip.width, clip.height, 1, ow, oh)
    whole = tiles is None and tilesize is None

    def run(config: object) -> vs.VideoNode:
        return _RealESRGAN(clip, network, backend=config, tilesize=None if whole else tile,  # type: ignore[arg-type]
                           overlap=0 if whole else (ow, oh))

    out = _with_fallback(func, run, backend)
    return _rescale(out, clip, scale, func)


RealESRGANv2 = RealESRGAN


def _rescale(out: vs.VideoNode, clip: vs.VideoNode, scale: float | None, func: str) -> vs.VideoNode:
    if scale is None:
        return out
    native = out.width // clip.width
    if scale == native:
        return out
    logger.info("%s: x%d output resampled to x%g with resize.Lanczos (4 taps; vs-mlrt uses fmtc to downscale)",
                func, native, scale)
    return vs.core.resize.Lanczos(out, int(clip.width * scale), int(clip.height * scale), filter_param_a=4)


def _rife_version(model: int) -> tuple[str, str]:
    """(vs-mlrt file version "v4.22_lite", vssr version "4.22-lite") of a RIFEModel value."""
    digits = str(int(model))
    minor = int(digits[1:3])
    kind = {"1": "lite", "2": "heavy"}.get(digits[-1], "") if len(digits) >= 4 else ""
    return f"v{digits[0]}.{minor}{'_' + kind if kind else ''}", f"{digits[0]}.{minor}{'-' + kind if kind else ''}"


@raised_at_caller
def RIFE(
    clip: vs.VideoNode,
    multi: int | Fraction = 2,
    scale: float = 1.0,
    tiles: int | tuple[int, int] | None = None,
    tilesize: int | tuple[int, int] | None = None,
    overlap: int | tuple[int, int] | None = None,
    model: int = RIFEModel.v4_4,
    backend: object = Backend.OV_CPU(),
    ensemble: bool = False,
    video_player: bool = False,
    _implementation: int | None = None,
) -> vs.VideoNode:
    """vs-mlrt's RIFE: vs-mlrt's ONNX from models_path/rife (or rife_v2 with _implementation=2),
    else a flownet_v<version>.pkl vssr finds. Scene cuts: only the _SceneChangeNext prop, as in
    vs-mlrt (run misc.SCDetect or similar first); no built-in detection."""
    func = "vsmlrt.RIFE"
    if not isinstance(multi, int | Fraction) or isinstance(multi, bool):
        raise VssrError(func, f"multi must be an int or a fractions.Fraction, not {multi!r}")
    if tiles is not None or tilesize is not None or overlap is not None:
        raise VssrError(func, "tiling is not supported (vs-mlrt's RIFE does not tile either)")
    if not isinstance(model, int) or model not in RIFEModel.__members__.values():
        raise VssrError(func, f"model must be a RIFEModel value (e.g. 46 for v4.6, 422 for v4.22), not {model!r}")
    if video_player:
        logger.info("%s: video_player=True ignored (vssr computes every frame on its own anyway)", func)
    file_version, version = _rife_version(model)
    stem = f"rife_{file_version}{'_ensemble' if ensemble else ''}.onnx"
    folders = ("rife_v2", "rife") if _implementation == 2 else ("rife",)
    path = next((p for p in (_vsmlrt_file(func, d, stem) for d in folders) if p is not None), None)
    native_ensemble = False
    if path is None:
        path = rife_weights(version)
        native_ensemble = ensemble
        if path is not None:
            logger.info("%s: vs-mlrt's %s not in %s; using %s", func, stem, models_path, path)
    if path is None:
        raise VssrError(func, f"model={RIFEModel(model).name}: put vs-mlrt's {stem} in {os.path.join(models_path, 'rife')} "
                              f"(set vsmlrt.models_path), or a flownet_v{version}.pkl in {files.models_dir() / 'rife'}")
    rate = {"multi": int(multi)} if int(multi) == multi else {"factor_num": multi.numerator,
                                                                 "factor_den": multi.denominator}
    if int(multi) == multi and multi < 2:
        raise VssrError(func, f"multi must be at least 2, not {multi}")

    def run(config: object) -> vs.VideoNode:
        return _RIFE(clip, model=path, scale=scale, ensemble=native_ensemble, sc=True, sc_threshold=None,
                     backend=config, **rate)  # type: ignore[arg-type]

    return _with_fallback(func, run, backend)


@raised_at_caller
def inference(
    clips: vs.VideoNode | Sequence[vs.VideoNode],
    network_path: str | bytes | os.PathLike[str],
    overlap: tuple[int, int] = (0, 0),
    tilesize: tuple[int, int] | None = None,
    backend: object = Backend.OV_CPU(),
    input_name: str | None = "input",
    batch_size: int = 1,
    path_is_serialization: bool = False,
) -> vs.VideoNode:
    """vs-mlrt's generic inference. The input name is read from the graph (input_name is not
    needed); batch_size > 1 (experimental in vs-mlrt) runs one frame at a time, with equal output."""
    func = "vsmlrt.inference"
    if batch_size != 1:
        logger.info("%s: batch_size=%d ignored: frames run one at a time on num_streams runners", func, batch_size)
    if path_is_serialization:
        if not isinstance(network_path, bytes | bytearray):
            raise VssrError(func, "path_is_serialization=True needs network_path as the ONNX bytes")
        network: object = onnx.load_from_string(bytes(network_path))
    else:
        network = network_path
    first = clips if isinstance(clips, vs.VideoNode) else clips[0]
    tile = None if tilesize is None else (int(tilesize[0]), int(tilesize[1]))
    whole = tile is None or tile == (first.width, first.height)

    def run(config: object) -> vs.VideoNode:
        return _inference(clips, network, config, tilesize=None if whole else tile,  # type: ignore[arg-type]
                          overlap=(0, 0) if whole else (int(overlap[0]), int(overlap[1])), func=func)

    return _with_fallback(func, run, backend)


def __getattr__(name: str) -> object:
    raise AttributeError(f"vssr.compat.vsmlrt has no {name}: vssr provides RealESRGAN, RIFE and inference "
                         "(and QuickSRNet and EDVR natively); for other vs-mlrt models use inference() with their ONNX")
