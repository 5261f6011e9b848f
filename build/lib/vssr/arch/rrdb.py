"""RRDBNet (ESRGAN / Real-ESRGAN x4plus, x4plus_anime_6B, x2plus, RealESRNet) in BasicSR naming.

    feat = conv_first(pixel_unshuffle(x, 4 / scale))     # unshuffle only for scale 2 and 1
    feat = feat + conv_body(body(feat))                   # num_block RRDBs
    feat = lrelu(conv_up1(nearest_x2(feat))); feat = lrelu(conv_up2(nearest_x2(feat)))
    out  = conv_last(lrelu(conv_hr(feat)))

RDB: x1..x4 = lrelu(convK(cat(x, x1..))), x5 = conv5(cat(...)); x + 0.2 x5. RRDB: x + 0.2 rdb3(rdb2(rdb1(x))).
Older ESRGAN key layouts (`RRDB_trunk.*`, `model.N.*`) are renamed to BasicSR names first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import ModelError
from ..types import StateDict
from .ops import GraphBuilder
from .registry import Architecture

__all__ = ["ARCH", "RRDBParams", "build", "detect", "to_basicsr_keys"]

_LRELU = 0.2
_BLOCK = re.compile(r"body\.(\d+)\.rdb1\.conv1\.weight")


def to_basicsr_keys(state: StateDict) -> StateDict:
    """Rename the two older ESRGAN layouts to BasicSR keys; BasicSR dicts pass through unchanged."""
    out: StateDict = {}
    if "RRDB_trunk.0.RDB1.conv1.weight" in state:  # ESRGAN "new arch" (RRDB_trunk, trunk_conv, ...)
        names = {"trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2", "HRconv": "conv_hr"}
        for key, value in state.items():
            key = re.sub(r"^RRDB_trunk\.(\d+)\.RDB(\d)", r"body.\1.rdb\2", key)
            head, _, tail = key.partition(".")
            out[f"{names.get(head, head)}.{tail}"] = value
        return out
    if "model.0.weight" in state and "model.1.sub.0.RDB1.conv1.0.weight" in state:  # ESRGAN "old arch", x4
        blocks = sum(1 for k in state if re.fullmatch(r"model\.1\.sub\.\d+\.RDB1\.conv1\.0\.weight", k))
        top = {"0": "conv_first", "3": "conv_up1", "6": "conv_up2", "8": "conv_hr", "10": "conv_last"}
        for key, value in state.items():
            if m := re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", key):
                out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = value
            elif m := re.fullmatch(rf"model\.1\.sub\.{blocks}\.(weight|bias)", key):
                out[f"conv_body.{m[1]}"] = value
            elif (m := re.fullmatch(r"model\.(\d+)\.(weight|bias)", key)) and m[1] in top:
                out[f"{top[m[1]]}.{m[2]}"] = value
            else:
                raise ModelError(f"old-layout ESRGAN: unexpected key {key!r} (only x4 models are supported)")
        return out
    return state  # BasicSR names already (or not an RRDBNet: from_state reports what is missing)


@dataclass(frozen=True, slots=True)
class RRDBParams:
    """Hyperparameters read from tensor shapes."""

    in_ch: int
    """Image channels (before pixel-unshuffle)."""
    out_ch: int
    feat: int
    grow: int
    num_block: int
    scale: int
    """1, 2, 4 or 8: output size / input size."""

    @property
    def unshuffle(self) -> int:
        return {1: 4, 2: 2}.get(self.scale, 1)

    @classmethod
    def from_state(cls, state: StateDict) -> RRDBParams:
        state = to_basicsr_keys(state)
        need = ("conv_first.weight", "conv_body.weight", "conv_up1.weight", "conv_up2.weight",
                "conv_hr.weight", "conv_last.weight", "body.0.rdb1.conv1.weight")
        missing = [k for k in need if k not in state]
        if missing:
            raise ModelError(f"not an RRDBNet state dict: missing {missing}")
        first = state["conv_first.weight"]
        out_ch = int(state["conv_last.weight"].shape[0])
        conv_in = int(first.shape[1])
        # x2plus / x1 feed pixel-unshuffled images: conv_first sees out_ch * 4 or * 16 channels.
        if conv_in == out_ch * 16:
            scale, in_ch = 1, out_ch
        elif conv_in == out_ch * 4:
            scale, in_ch = 2, out_ch
        else:
            scale, in_ch = 4, conv_in
        if "conv_up3.weight" in state:
            scale *= 2
        blocks = sorted(int(m.group(1)) for k in state if (m := _BLOCK.fullmatch(k)))
        if blocks != list(range(len(blocks))):
            raise ModelError(f"RRDBNet: body block indices are not contiguous: {blocks[:10]}...")
        return cls(in_ch=in_ch, out_ch=out_ch, feat=int(first.shape[0]),
                   grow=int(state["body.0.rdb1.conv1.weight"].shape[0]), num_block=len(blocks), scale=scale)


def _pixel_unshuffle(g: GraphBuilder, x: str, channels: int, block: int) -> str:
    """torch pixel_unshuffle: SpaceToDepth, then a channel Gather into torch's order.

    SpaceToDepth puts (c, sh, sw) at channel (sh*s + sw)*C + c; torch at c*s*s + sh*s + sw. All
    shapes stay static (no Shape/Reshape arithmetic), which TensorRT and OpenVINO prefer.
    """
    y = g.op("SpaceToDepth", [x], "s2d", blocksize=block)
    order = np.array([j * channels + c for c in range(channels) for j in range(block * block)], np.int64)
    if np.array_equal(order, np.arange(order.size)):
        return y
    return g.op("Gather", [y, g.const(order, "unshuffle_order")], "unshuffled", axis=1)


def detect(state: StateDict) -> bool:
    return (
        ("conv_first.weight" in state and "body.0.rdb1.conv1.weight" in state and "conv_up1.weight" in state)
        or "RRDB_trunk.0.RDB1.conv1.weight" in state
        or "model.1.sub.0.RDB1.conv1.0.weight" in state
    )


def build(state: StateDict, *, name: str | None = None) -> onnx.ModelProto:
    """The ONNX graph (input "input" (1,C,H,W), output "output"); H, W multiples of 4/scale (x2: 2, x1: 4)."""
    p = RRDBParams.from_state(state)
    state = to_basicsr_keys(state)
    g = GraphBuilder(name or f"rrdb-x{p.scale}")

    def conv(x: str, key: str) -> str:
        return g.conv(x, state[f"{key}.weight"], state.get(f"{key}.bias"), key)

    def rdb(x: str, prefix: str) -> str:
        feats = [x]
        for k in range(1, 5):
            feats.append(g.leaky_relu(conv(g.concat(feats) if len(feats) > 1 else x, f"{prefix}.conv{k}"), _LRELU))
        x5 = conv(g.concat(feats), f"{prefix}.conv5")
        return g.add(g.scale(x5, _LRELU), x)

    x = g.input("input", p.in_ch)
    feat = _pixel_unshuffle(g, x, p.in_ch, p.unshuffle) if p.unshuffle > 1 else x
    feat = conv(feat, "conv_first")
    body = feat
    for b in range(p.num_block):
        y = body
        for r in (1, 2, 3):
            y = rdb(y, f"body.{b}.rdb{r}")
        body = g.add(g.scale(y, _LRELU), body)
    feat = g.add(feat, conv(body, "conv_body"))
    ups = ["conv_up1", "conv_up2"] + (["conv_up3"] if "conv_up3.weight" in state else [])
    for key in ups:
        feat = g.leaky_relu(conv(g.resize(feat, 2, "nearest"), key), _LRELU)
    out = conv(g.leaky_relu(conv(feat, "conv_hr"), _LRELU), "conv_last")
    g.output(out, "output", p.out_ch)
    return g.model(scale=p.scale, multiple=p.unshuffle)


ARCH = Architecture("rrdb", detect, build)
