"""SRVGGNetCompact (Real-ESRGAN realesr-animevideov3, realesr-general-x4v3).

    body.0 conv(in -> feat) body.1 PReLU, then num_conv x [conv(feat -> feat), PReLU],
    body.<2*num_conv+2> conv(feat -> out*scale^2); y = PixelShuffle(scale)(body(x)) + nearest_up(x)

Optionally followed by a bicubic downscale (`out_scale` < scale): that is how the ncnn files
`realesr-animevideov3-x2/-x3` make x2/x3 from the x4 network (ncnn Interp type 3).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import ModelError
from ..types import StateDict
from .ops import GraphBuilder
from .registry import Architecture

__all__ = ["ARCH", "CompactParams", "build", "detect"]

_KEY = re.compile(r"body\.(\d+)\.(weight|bias)")


@dataclass(frozen=True, slots=True)
class CompactParams:
    """Hyperparameters read from tensor shapes."""

    in_ch: int
    out_ch: int
    feat: int
    num_conv: int
    """Number of feat -> feat convolutions between the first and the last."""
    scale: int

    @classmethod
    def from_state(cls, state: StateDict) -> CompactParams:
        indices = sorted({int(m.group(1)) for k in state if (m := _KEY.fullmatch(k))})
        if not indices or indices[0] != 0:
            raise ModelError("not an SRVGGNetCompact state dict: body.0.weight is missing")
        last = indices[-1]
        first = state["body.0.weight"]
        if first.ndim != 4 or last % 2 or last < 2:
            raise ModelError(f"SRVGGNetCompact: unexpected layer layout (last index body.{last})")
        for i in range(1, last, 2):
            if f"body.{i}.weight" not in state:
                raise ModelError(
                    f"SRVGGNetCompact: body.{i}.weight (a PReLU slope) is missing; only act_type='prelu' "
                    "weights can be read (ReLU/LeakyReLU variants carry no parameters to detect)"
                )
        feat, in_ch = int(first.shape[0]), int(first.shape[1])
        out_total = int(state[f"body.{last}.weight"].shape[0])
        out_ch = in_ch  # the official configs all use num_out_ch == num_in_ch
        scale = math.isqrt(out_total // out_ch)
        if scale * scale * out_ch != out_total:
            raise ModelError(f"SRVGGNetCompact: last conv has {out_total} outputs, not {out_ch} x scale^2")
        return cls(in_ch=in_ch, out_ch=out_ch, feat=feat, num_conv=(last - 2) // 2, scale=scale)


def detect(state: StateDict) -> bool:
    """Only `body.<n>.weight/bias` keys, a 4-D first conv and a 1-D PReLU slope at body.1."""
    if not all(_KEY.fullmatch(k) for k in state):
        return False
    first, slope = state.get("body.0.weight"), state.get("body.1.weight")
    return first is not None and slope is not None and first.ndim == 4 and slope.ndim == 1


def build(state: StateDict, *, out_scale: int | None = None, name: str | None = None) -> onnx.ModelProto:
    """The ONNX graph (input "input" (1,C,H,W), output "output"; any H, W).

    Args:
        state: canonical SRVGGNetCompact state dict.
        out_scale: if smaller than the network's scale, a bicubic Resize (A=-0.75, half-pixel, no
            antialias, as ncnn's Interp) brings the output to out_scale x the input.
        name: recorded in the metadata (cache file names); default "compact-x<scale>".
    """
    p = CompactParams.from_state(state)
    scale = p.scale if out_scale is None else out_scale
    if not 1 <= scale <= p.scale:
        raise ModelError(f"SRVGGNetCompact x{p.scale}: out_scale must be 1..{p.scale}, not {out_scale}")
    g = GraphBuilder(name or f"compact-x{scale}")
    x = g.input("input", p.in_ch)
    y = x
    last = 2 * p.num_conv + 2
    for i in range(0, last, 2):
        y = g.conv(y, state[f"body.{i}.weight"], state.get(f"body.{i}.bias"), f"body.{i}")
        y = g.prelu(y, state[f"body.{i + 1}.weight"], f"body.{i + 1}")
    y = g.conv(y, state[f"body.{last}.weight"], state.get(f"body.{last}.bias"), f"body.{last}")
    y = g.add(g.depth_to_space(y, p.scale), g.resize(x, p.scale, "nearest"))
    if scale != p.scale:
        factor = np.float32(scale / p.scale)
        scales = g.const(np.array([1, 1, factor, factor], np.float32), "down_scales")
        y = g.op("Resize", [y, "", scales], "down", mode="cubic", cubic_coeff_a=-0.75,
                 coordinate_transformation_mode="half_pixel", exclude_outside=0)
    g.output(y, "output", p.out_ch)
    return g.model(scale=scale, multiple=1)


ARCH = Architecture("compact", detect, build)
