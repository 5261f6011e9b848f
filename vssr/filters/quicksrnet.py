"""QuickSRNet (weights trained and shipped by vssr, vssr/data/quicksrnet/) as a recipe over inference()."""

from __future__ import annotations

import os
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import numpy as np
import vapoursynth as vs

from .. import zoo
from ..arch import quicksrnet
from ..backends import BackendConfig
from ..glue import checks
from ..glue.checks import VssrError, check_clip, check_positive, user_errors
from ..glue.color import converts_color
from ..inference import inference
from ..quant import MAX_FRAMES, METHODS, quantize

__all__ = ["QuickSRNet", "shipped_weights"]

SCALES = (2, 3, 4, 1.5)


def shipped_weights(qat: bool = False) -> dict[tuple[str, Fraction], Path]:
    """(size, scale) -> the .npz `QuickSRNet(size=, scale=)` reads: vssr/data/quicksrnet/ (package
    data), then trained ones in models_dir()/quicksrnet/; a view of `zoo.names("quicksrnet")`.

    qat=True: the quantization-aware fine-tuned weights (<size>_x<scale>_qat.npz) where they
    exist, else the plain ones.
    """
    found = {(n.name, n.path) for n in zoo.listing("quicksrnet") if n.path is not None}
    plain: dict[tuple[str, Fraction], Path] = {}
    tuned: dict[tuple[str, Fraction], Path] = {}
    for name, path in sorted(found):
        size, scale, *qat_part = name.split("-")
        (tuned if qat_part else plain)[(size, Fraction(scale[1:]))] = path
    return {**plain, **tuned} if qat else plain


@converts_color(gray=True)
def QuickSRNet(
    clip: vs.VideoNode,
    size: str = "small",
    scale: float = 2,
    *,
    weights: str | os.PathLike[str] | Mapping[str, np.ndarray] | None = None,
    backend: BackendConfig | None = None,
    tilesize: int | tuple[int, int] | None = None,
    overlap: int | tuple[int, int] | None = None,
    int8: str | None = None,
    calibration_frames: int = 16,
    int8_symmetric: bool = False,
) -> vs.VideoNode:
    """Upscale with QuickSRNet (Berger et al. 2023): a tiny ReLU1 conv net built for int8.

    Args:
        clip: RGBS/RGBH, or GRAYS/GRAYH for luma-only use (e.g. the Y of a YUV clip): the RGB
            network then sees the grey image as three equal channels and returns the mean of its
            three outputs (the weights are trained on RGB; this is how the benchmarks score grey
            images).
        size: "small", "medium" or "large" (with shipped weights; see `shipped_weights()`).
            With int8, the quantization-aware fine-tuned weights are used where they are shipped.
        scale: 2, 3, 4 or 1.5.
        weights: instead of size and scale: a shipped name ("small-x2", `vssr.zoo.names("quicksrnet")`),
            the path of a .npz state dict in QuickSRNet's PyTorch keys (cnn.0.weight ...
            conv_last.*) or such a state dict; size and scale are then read from it.
        backend: a vssr.Backend.* config; default: the fastest CPU backend installed.
        tilesize: tile size (int or (width, height)); None runs whole frames.
        overlap: context pixels per tile side, only with tilesize; default the network's
            receptive radius.
        int8: run an int8 model calibrated on this clip: "minmax", "entropy", "percentile" (or
            "naive": no calibration). The calibration reads `calibration_frames` frames spread
            over the clip when the script is evaluated; the result is cached (models/int8/).
        calibration_frames: frames drawn from the clip for int8 calibration.
        int8_symmetric: int8 activations with zero point 0, as TensorRT needs; the default
            (uint8 activations) is the fast one on ONNX Runtime's CPU kernels.

    Raises:
        VssrError: invalid arguments, or no weights for this size and scale.
    """
    check_clip(clip, QuickSRNet)
    channels = 1 if clip.format.color_family == vs.GRAY else 3
    checks.check_choice(int8, QuickSRNet, "int8", METHODS, optional=True)
    frames = check_positive(calibration_frames, QuickSRNet, "calibration_frames", MAX_FRAMES)
    symmetric = checks.check_bool(int8_symmetric, QuickSRNet, "int8_symmetric")
    checks.check_choice(size, QuickSRNet, "size", quicksrnet.SIZES)
    checks.check_choice(scale, QuickSRNet, "scale", SCALES)
    checks.check_backend(backend, QuickSRNet)
    checks.tile_overlap(tilesize, overlap, QuickSRNet)  # the rule, before any weights are read
    if weights is None:
        weights = zoo.quicksrnet_name(size, scale)
        if int8 is not None and zoo.quicksrnet_name(size, scale, qat=True) in zoo.names("quicksrnet"):
            weights = zoo.quicksrnet_name(size, scale, qat=True)  # quantization-aware: quantizes as it is
        elif weights not in zoo.names("quicksrnet"):
            have = ", ".join(f"{s} x{float(k):g}" for s, k in sorted(shipped_weights())) or "none"
            raise VssrError(
                QuickSRNet,
                f"no shipped weights for size={size!r} scale={scale}; available: {have} "
                "(train more with tools/train_quicksrnet.py and pass weights=)",
            )
    source = zoo.resolve("quicksrnet", weights, func=QuickSRNet, param="weights", channels=channels,
                         int8=int8 is not None)
    network = source.network
    with user_errors(QuickSRNet):
        radius = quicksrnet.receptive_radius(source.state)  # type: ignore[arg-type]
    if int8 is not None:
        with user_errors(QuickSRNet):
            try:
                network = quantize(
                    network,
                    None if int8 == "naive" else clip,
                    frames=frames,
                    method=int8,
                    symmetric=bool(symmetric),
                )
            except ValueError as err:
                raise VssrError(QuickSRNet, f"int8: {err}") from err
    overlap = checks.tile_overlap(tilesize, overlap, QuickSRNet, default=radius)
    return inference(clip, network, backend, tilesize=tilesize, overlap=overlap, func=QuickSRNet)
