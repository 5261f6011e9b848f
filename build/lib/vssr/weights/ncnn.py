"""ncnn `.param`/`.bin` files of Real-ESRGAN, renamed to the PyTorch keys of the same network.

The `.param` text lists layers (`type name n_in n_out blobs... k=v ...`); the `.bin` is every
layer's weights concatenated in layer order. Convolution weights carry a 4-byte tag (0 = fp32,
0x01306B47 = fp16, padded to 4 bytes); biases and PReLU slopes are untagged fp32. The weight order
is PyTorch's OIHW.

Two layer sequences are recognised, as exported from PyTorch by Real-ESRGAN:

* SRVGGNetCompact: Convolution/PReLU pairs, then PixelShuffle + nearest Interp + add -> `body.N.*`;
  the x2/x3 animevideov3 files end with an extra bicubic Interp (see `trailing_resize`);
* RRDBNet: 1 + 15 x num_block + 5 convolutions (fused LeakyReLU) with Concat/Eltwise -> BasicSR keys.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..types import StateDict

__all__ = ["Layer", "load", "read_param", "trailing_resize"]

logger = logging.getLogger(__name__)

_MAGIC = 7767517
_TAG_FP16 = 0x01306B47
_TAG_FP32 = 0


@dataclass(slots=True)
class Layer:
    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, int | float | list[float]] = field(default_factory=dict)
    weights: list[np.ndarray] = field(default_factory=list)

    def number(self, key: int, default: float | None = None) -> int | float:
        """A scalar parameter; ModelError when it is missing (and has no default) or is an array."""
        value = self.params.get(key, default)
        if value is None or isinstance(value, list):
            raise ModelError(f"layer {self.name}: parameter {key} is {'missing' if value is None else 'an array'}; "
                             "expected a number")
        return value


def _value(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


def read_param(param_path: str | os.PathLike[str]) -> list[Layer]:
    """Parse a text `.param` file into layers (weights not loaded)."""
    source = os.fspath(param_path)
    try:
        lines = [ln.split() for ln in Path(param_path).read_text().splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise ModelError(f"cannot read ncnn param file {source!r}: {err}") from err
    if not lines or lines[0] != [str(_MAGIC)]:
        raise ModelError(f"{source}: not a text ncnn .param file (magic {_MAGIC} missing)")
    layers = []
    try:
        layer_count = int(lines[1][0])
        for words in lines[2:]:
            kind, name, n_in, n_out = words[0], words[1], int(words[2]), int(words[3])
            blobs = words[4:4 + n_in + n_out]
            params: dict[int, int | float | list[float]] = {}
            for item in words[4 + n_in + n_out:]:
                key_text, value = item.split("=", 1)
                key = int(key_text)
                if key <= -23300:  # array: -23300-id=count,v1,v2,...
                    values = [_value(v) for v in value.split(",")]
                    params[-23300 - key] = [float(v) for v in values[1:]]
                else:
                    params[key] = _value(value)
            layers.append(Layer(kind, name, blobs[:n_in], blobs[n_in:], params))
    except (ValueError, IndexError) as err:
        raise ModelError(f"{source}: malformed ncnn .param line: {err}") from err
    if len(layers) != layer_count:
        raise ModelError(f"{source}: header says {layer_count} layers, found {len(layers)}")
    return layers


class _Reader:
    def __init__(self, data: bytes, source: str) -> None:
        self.data, self.pos, self.source = data, 0, source

    def _take(self, nbytes: int) -> bytes:
        if self.pos + nbytes > len(self.data):
            raise ModelError(f"{self.source}: the .bin file is shorter than its .param describes")
        chunk = self.data[self.pos:self.pos + nbytes]
        self.pos += nbytes
        return chunk

    def raw_fp32(self, count: int) -> np.ndarray:
        return np.frombuffer(self._take(4 * count), "<f4").astype(np.float32)

    def tagged(self, count: int) -> np.ndarray:
        tag = int.from_bytes(self._take(4), "little")
        if tag == _TAG_FP16:
            values = np.frombuffer(self._take(2 * count), "<f2").astype(np.float32)
            self._take((-2 * count) % 4)  # padded to a 4-byte boundary
            return values
        if tag == _TAG_FP32:
            return self.raw_fp32(count)
        raise ModelError(f"{self.source}: unsupported ncnn weight encoding (tag {tag:#010x}); "
                         "only fp32 and fp16 files are read (not int8 or quantized tables)")


def _load_weights(layers: list[Layer], bin_path: Path) -> None:
    source = os.fspath(bin_path)
    try:
        reader = _Reader(bin_path.read_bytes(), source)
    except OSError as err:
        raise ModelError(f"cannot read ncnn weights {source!r}: {err}") from err
    for layer in layers:
        p = layer.params
        if layer.type == "Convolution":
            if p.get(19, 0) or p.get(8, 0):
                raise ModelError(f"{source}: layer {layer.name}: dynamic or int8 convolutions are not supported")
            out, k = int(layer.number(0)), int(layer.number(1, 0))
            kh = int(layer.number(11, k))
            size = int(layer.number(6))
            if out * k * kh == 0 or size % (out * k * kh):
                raise ModelError(f"{source}: layer {layer.name}: weight size {size} does not fit {out}x?x{kh}x{k}")
            weight = reader.tagged(size).reshape(out, size // (out * k * kh), kh, k)
            layer.weights = [weight] + ([reader.raw_fp32(out)] if p.get(5, 0) else [])
        elif layer.type == "PReLU":
            layer.weights = [reader.raw_fp32(int(layer.number(0, 1)))]
        elif layer.type not in ("Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle"):
            raise ModelError(f"{source}: unsupported ncnn layer type {layer.type} ({layer.name})")
    if reader.pos != len(reader.data):
        raise ModelError(f"{source}: {len(reader.data) - reader.pos} bytes left over after the last layer")


def _check_activation(layer: Layer, expected: int, source: str) -> None:
    act = layer.params.get(9, 0)
    slope = layer.params.get(10, [])
    if act != expected or (expected == 2 and slope != [0.2]):
        raise ModelError(f"{source}: layer {layer.name} has activation {act} {slope}, expected "
                         f"{'LeakyReLU(0.2)' if expected == 2 else 'none'}: not a Real-ESRGAN network")


def _compact_state(layers: list[Layer], source: str) -> StateDict:
    state: StateDict = {}
    index = 0
    for layer in layers:
        if layer.type == "Convolution":
            _check_activation(layer, 0, source)
            state[f"body.{index}.weight"] = layer.weights[0]
            if len(layer.weights) > 1:
                state[f"body.{index}.bias"] = layer.weights[1]
            index += 1
        elif layer.type == "PReLU":
            slope = layer.weights[0]
            channels = state[f"body.{index - 1}.weight"].shape[0]
            state[f"body.{index}.weight"] = np.broadcast_to(slope, (channels,)).copy() if slope.size == 1 else slope
            index += 1
    return state


def _rrdb_state(layers: list[Layer], source: str) -> StateDict:
    convs = [layer for layer in layers if layer.type == "Convolution"]
    blocks, rest = divmod(len(convs) - 6, 15)
    if rest or blocks < 1:
        raise ModelError(f"{source}: {len(convs)} convolutions do not form an RRDBNet (1 + 15 x blocks + 5)")
    names = ["conv_first"]
    names += [f"body.{b}.rdb{r}.conv{c}" for b in range(blocks) for r in (1, 2, 3) for c in range(1, 6)]
    names += ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]
    lrelu = {f"conv{c}" for c in range(1, 5)} | {"conv_up1", "conv_up2", "conv_hr"}
    state: StateDict = {}
    for name, layer in zip(names, convs, strict=True):
        _check_activation(layer, 2 if name.rsplit(".", 1)[-1] in lrelu else 0, source)
        state[f"{name}.weight"] = layer.weights[0]
        if len(layer.weights) > 1:
            state[f"{name}.bias"] = layer.weights[1]
    return state


def load(param_path: str | os.PathLike[str], bin_path: str | os.PathLike[str] | None = None) -> StateDict:
    """Real-ESRGAN ncnn weights under PyTorch keys (SRVGGNetCompact `body.N.*`, RRDBNet BasicSR names).

    Args:
        param_path: the text `.param` file.
        bin_path: the `.bin` file; default: `param_path` with the suffix `.bin`.

    Raises:
        ModelError: unreadable files, an unsupported layer or encoding, or a network that is
            neither SRVGGNetCompact nor RRDBNet.
    """
    param_path = Path(param_path)
    bin_file = Path(bin_path) if bin_path is not None else param_path.with_suffix(".bin")
    for path in (param_path, bin_file):
        if not path.is_file():
            raise ModelError(f"ncnn file {os.fspath(path)!r} does not exist")
    layers = read_param(param_path)
    _load_weights(layers, bin_file)
    types = {layer.type for layer in layers}
    source = os.fspath(param_path)
    if "PReLU" in types and "PixelShuffle" in types:
        state = _compact_state(layers, source)
        logger.debug("%s: SRVGGNetCompact, %d tensors", source, len(state))
    elif "Eltwise" in types and "Concat" in types:
        state = _rrdb_state(layers, source)
        logger.debug("%s: RRDBNet, %d tensors", source, len(state))
    else:
        raise ModelError(f"{source}: neither an SRVGGNetCompact nor an RRDBNet ncnn network (layers {sorted(types)})")
    return state


def trailing_resize(param_path: str | os.PathLike[str]) -> Fraction | None:
    """The factor of a final bicubic Interp after the network's own output, if any.

    realesr-animevideov3-x2/-x3 are the x4 network followed by such a downscale (0.5 / 0.75).
    """
    layers = read_param(param_path)
    last = layers[-1]
    if last.type != "Interp" or last.params.get(0) != 3:
        return None
    h, w = last.number(1, 1.0), last.number(2, 1.0)
    if h != w or last.params.get(6, 0) or last.params.get(3, 0) or last.params.get(4, 0):
        raise ModelError(f"{os.fspath(param_path)}: unsupported final Interp parameters {last.params}")
    return Fraction(float(h)).limit_denominator(64)
