"""int8 QDQ models made with ONNX Runtime's static quantization, calibrated on the user's footage.

Two flavours, both with symmetric per-channel int8 weights:

- ``symmetric=False`` (default; for ONNX Runtime / OpenVINO on the CPU): uint8 asymmetric
  activations. A ReLU1 output has the range [0, 1], so its zero point is 0 and ORT drops the Clip
  into the int8 conv: QuickSRNet-small becomes a chain of QLinearConv (U8S8, VNNI / AMX kernels).
- ``symmetric=True`` (for TensorRT, whose explicit quantization takes only int8 with zero point
  0): int8 symmetric activations. ORT still runs it with QLinearConv, but each ReLU1 then stays a
  float Clip between a DequantizeLinear and a QuantizeLinear, which costs most of the speed-up on
  the CPU (measured: QuickSRNet-small x2 at 960x540, 2 threads: fp32 646 ms, s8 586 ms, u8 379 ms).
 Nodes a graph builder names in ``vssr.quant_exclude`` (QuickSRNet's final Clip and
DepthToSpace) and every DepthToSpace/Resize stay float. Results are cached in models_dir()/int8
under a key over the model digest, the settings and the calibration data digest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from .. import cachefile
from ..errors import ModelError
from ..files import models_dir, readable_stem
from ..network import Network, get_metadata, set_metadata
from ..validation import ParameterError, require_bool, require_choice, require_file, require_int, shown
from .calibration import data_digest, frames_from_clip, images_from_folder, random_crops

__all__ = ["METHODS", "quantize", "quantize_arrays"]

logger = logging.getLogger(__name__)

MAX_FRAMES = 1024
"""Calibration frames: ONNX Runtime keeps every activation of every frame in memory."""
METHODS = ("minmax", "entropy", "percentile", "naive")
"""Calibration methods. "naive" uses no data: every activation gets the fixed range [-1, 1]."""

_FLOAT_OPS = ("DepthToSpace", "Resize", "GridSample")


def _calibration_arrays(calibration: object, frames: int) -> list[np.ndarray]:
    if isinstance(calibration, str | os.PathLike):
        return images_from_folder(calibration, frames)
    if hasattr(calibration, "get_frame") and hasattr(calibration, "num_frames"):  # a vs.VideoNode
        return frames_from_clip(calibration, frames)
    if isinstance(calibration, Sequence) and all(isinstance(a, np.ndarray) and a.ndim == 3 for a in calibration):
        return [np.asarray(a, np.float32) for a in calibration][:frames]
    raise ValueError(
        "calibration must be a VapourSynth clip, an image folder path or a list of (C, H, W) arrays, "
        f"not {shown(calibration)}"
    )


def quantize(
    network: Network | onnx.ModelProto | str | os.PathLike[str],
    calibration: object = None,
    *,
    frames: int = 16,
    crop: int | None = 256,
    method: str = "minmax",
    per_channel: bool = True,
    symmetric: bool = False,
    seed: int = 0,
) -> Network:
    """An int8 QDQ version of `network`, calibrated on crops of the user's own frames. Cached.

    Args:
        network: a Network, ONNX model or ONNX path (float32 I/O, one image input).
        calibration: a vs.VideoNode (frames spread evenly over the clip), a folder of images, or a
            list of (C, H, W) float32 arrays in [0, 1]. None only with method="naive".
        frames: how many frames/images to calibrate on.
        crop: one random crop x crop per frame (None: whole frames; ORT keeps every activation of
            every frame in memory, so whole 1080p frames need gigabytes).
        method: "minmax", "entropy", "percentile" (99.999), or "naive" (no data: range [-1, 1]).
        per_channel: per-output-channel weight scales (else per-tensor).
        symmetric: int8 activations with zero point 0, as TensorRT requires; default uint8
            asymmetric activations, fastest on ONNX Runtime's CPU kernels.
        seed: for the crop positions.

    Returns:
        The quantized Network (name suffixed ``_int8``), read from the cache when it exists.

    Raises:
        ValueError: bad arguments or calibration source. ModelError: the model cannot be quantized.
    """
    from ..glue.checks import named_errors  # lazy: vssr.quant imports without VapourSynth

    with named_errors(quantize):  # the user's values, and the user's data as it is read
        require_choice("method", method, METHODS)
        frames = require_int("frames", frames, 1, MAX_FRAMES)
        crop = require_int("crop", crop, 1, optional=True)
        per_channel, symmetric = require_bool("per_channel", per_channel), require_bool("symmetric", symmetric)
        seed = require_int("seed", seed, 0, 2**32 - 1)
        if not isinstance(network, Network | onnx.ModelProto):
            require_file("network", network, "an ONNX file (or a vssr.Network or an onnx.ModelProto)")
        if method == "naive" and calibration is not None:
            raise ParameterError(
                f"calibration must be None with method='naive' (it uses no data), not {shown(calibration)}"
            )
        if method != "naive" and calibration is None:
            raise ParameterError(
                f"calibration: method {method!r} needs calibration data: pass a clip, an image folder or a list of "
                "(C, H, W) arrays, not None (only method='naive' uses no data)"
            )
        net = network if isinstance(network, Network) else Network.load(network)
        arrays: list[np.ndarray] = []
        if method != "naive":
            arrays = random_crops(_calibration_arrays(calibration, frames), crop, seed, net.size.multiple)
    if method != "naive":
        channels = net.inputs[0].channels
        if channels == 1:  # a grey network (e.g. QuickSRNet on luma): grey frames, replicated by the reader
            arrays = [a.mean(axis=0, keepdims=True) for a in arrays]
        elif channels is not None and any(a.shape[0] != channels for a in arrays):
            raise ValueError(f"the network takes {channels} channels; the calibration images have 3")
    return quantize_arrays(net, arrays, method=method, per_channel=per_channel, symmetric=symmetric)


def quantize_arrays(
    net: Network, arrays: list[np.ndarray], *, method: str, per_channel: bool = True, symmetric: bool = False
) -> Network:
    """`quantize` on ready calibration arrays (each fed as one batch of 1)."""
    images = net.image_inputs
    if len(images) != 1 or len(net.inputs) != 1:
        raise ModelError("int8 quantization supports networks with a single image input")
    if any(s.dtype != np.float32 for s in (*net.inputs, *net.outputs)):
        raise ModelError("quantize a float32 network (fp16 I/O is applied later by the backend)")
    # version 3: symmetric models keep float biases (TensorRT); older cached files are not reused
    settings = {"method": method, "per_channel": per_channel, "symmetric": symmetric, "format": "qdq", "version": 3}
    data = data_digest(arrays)
    key = hashlib.sha256(json.dumps([net.digest, settings, data], sort_keys=True).encode()).hexdigest()[:20]
    kind = "s8" if symmetric else "u8"
    path = models_dir() / "int8" / f"{readable_stem(net.name)}_int8{kind}_{method}_{key}.onnx"

    def produce() -> bytes:
        logger.info("quantizing %s (%s, %d calibration images)", net.name, method, len(arrays))
        serialized: bytes = _quantize_model(net, arrays, method, per_channel, symmetric).SerializeToString()
        return serialized

    cache_key = {"kind": "int8-onnx", "network": net.digest, "settings": settings, "data": data}
    model = cachefile.load_or_build(path, cache_key, produce, onnx.load_model_from_string, env="VSSR_MODEL_DIR")
    return dataclasses.replace(Network.load(model), name=f"{net.name}_int8")


def _quantize_model(
    net: Network, arrays: list[np.ndarray], method: str, per_channel: bool, symmetric: bool
) -> onnx.ModelProto:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    name = net.inputs[0].name
    meta = get_metadata(net.model)
    exclude = [n for n in meta.get("quant_exclude", "").split(",") if n]
    exclude += [n.name for n in net.model.graph.node if n.op_type in _FLOAT_OPS and n.name not in exclude]

    feeds = [{name: a[None]} for a in arrays]
    # symmetric is TensorRT's int8: it also refuses int32 biases (DequantizeLinear of an int32
    # bias needs a zero point TensorRT does not take), so biases then stay float
    extra: dict[str, object] = {"ActivationSymmetric": symmetric, "WeightSymmetric": True, "QuantizeBias": not symmetric}
    if method == "naive":
        # No data: the graph still has to run once, on noise, but every activation's range is
        # overridden with [-1, 1] (the image range), which is what int8 without calibration means.
        c = net.inputs[0].channels or 3
        m = max(net.size.multiple, 16)
        feeds = [{name: np.random.default_rng(0).random((1, c, m, m), dtype=np.float32)}]
        activations = {name} | {o for n in net.model.graph.node for o in n.output if n.name not in exclude}
        extra["TensorQuantOverrides"] = {
            t: [{"rmin": np.float32(-1.0), "rmax": np.float32(1.0)}] for t in sorted(activations)
        }
        # keep ReLU1 clips: ORT drops a Clip whose range it takes as implied by the quantization,
        # which with the overridden [-1, 1] range would let negative values through
        extra["QDQKeepRemovableActivations"] = True
    if method == "percentile":
        extra["CalibPercentile"] = 99.999

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    calib = {
        "minmax": CalibrationMethod.MinMax,
        "naive": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[method]
    model = onnx.ModelProto()
    model.CopyFrom(net.model)  # quantize_static moves a ModelProto's weights to external data in place
    quiet = _DropPreprocessAdvice()
    root = logging.getLogger()
    root.addFilter(quiet)
    with tempfile.TemporaryDirectory(prefix="vssr-quant-") as tmp:
        out = Path(tmp) / "int8.onnx"
        try:
            quantize_static(
                model,
                os.fspath(out),
                Reader(),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                calibrate_method=calib,
                nodes_to_exclude=exclude,
                extra_options=extra,
            )
        except Exception as err:  # ORT raises plain Exceptions from its graph passes
            raise ModelError(f"cannot quantize {net.name}: {err}") from err
        finally:
            root.removeFilter(quiet)
        result = onnx.load_model(os.fspath(out))
    set_metadata(
        result, name=f"{net.name}_int8", quant=f"int8 {method} per_channel={per_channel} symmetric={symmetric}"
    )
    return result


class _DropPreprocessAdvice(logging.Filter):
    """ORT's quantizer warns on the root logger to run its pre-processing; vssr's graphs need none."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()
