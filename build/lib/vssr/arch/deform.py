"""Modulated deformable convolution (DCNv2) in ONNX: the native op or a decomposition.

`modulated_deform_conv` emits BasicSR's `DCNv2Pack` (a 3x3 `conv_offset` over the offset features
giving offsets and mask, then the deformable 3x3 conv over `x`) in one of two forms:

- "native": ONNX `DeformConv` (opset 19) with a mask. onnxruntime >= 1.25 runs it on CPU;
  TensorRT >= 10.1 maps it to its ModulatedDeformConv2d plugin. OpenVINO's ONNX frontend rejects it.
- "decomposed": standard ops every backend runs. Per kernel tap (deformable groups in the batch
  axis), the input is sampled at the offset-shifted positions with a `GridSample` (bilinear, zeros
  outside, which is DCNv2's "zero outside the image" rule), multiplied by the tap's mask, and
  contracted by a 1x1 `Conv` holding that tap's slice of the 3x3 weight; the 9 results are summed.

Offset layout (ONNX = torchvision = BasicSR): channel 2*(g*K+k) is dy and 2*(g*K+k)+1 is dx for
deformable group g and tap k = i*kw + j; mask channel g*K+k. BasicSR's chunk/cat of conv_offset's
output is the identity on channels, so offsets are channels [0, 2GK) and the mask is
sigmoid of [2GK, 3GK).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .ops import GraphBuilder

__all__ = ["DEFORM_MODES", "DeformMode", "deform_groups", "modulated_deform_conv"]

type DeformMode = Literal["native", "decomposed"]
DEFORM_MODES: tuple[str, ...] = ("native", "decomposed")


class Weights:
    """Initializers emitted once per name: a layer applied to several frames shares its weights."""

    def __init__(self, g: GraphBuilder, names: dict[str, str]) -> None:
        self.g = g
        self.names = names

    def __call__(self, array: np.ndarray, name: str) -> str:
        if name not in self.names:
            self.names[name] = self.g.weight(array, name)
        return self.names[name]

    def conv(self, x: str, weight: np.ndarray, bias: np.ndarray | None, name: str, stride: int = 1) -> str:
        """Conv (square kernel, 'same' padding) with shared initializers."""
        k = int(weight.shape[2])
        ins = [x, self(weight, f"{name}.weight")]
        if bias is not None:
            ins.append(self(bias, f"{name}.bias"))
        return self.g.op("Conv", ins, name, kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4)


def deform_groups(conv_offset_weight: np.ndarray, kernel: int = 3) -> int:
    """Deformable groups of a DCNv2Pack from its conv_offset weight [3*G*k*k, C, 3, 3]."""
    return int(conv_offset_weight.shape[0]) // (3 * kernel * kernel)


def modulated_deform_conv(
    g: GraphBuilder,
    x: str,
    offset_feat: str,
    weights: dict[str, np.ndarray],
    name: str,
    *,
    mode: DeformMode,
    fp32_nodes: list[str] | None = None,
    shared: dict[str, str] | None = None,
) -> str:
    """One DCNv2Pack (3x3, stride 1, pad 1, dilation 1): deform_conv(x, offsets from offset_feat).

    `weights` holds the pack's `weight [O,C,3,3]`, `bias [O]`, `conv_offset.weight [3GK,Cf,3,3]` and
    `conv_offset.bias [3GK]` (BasicSR names without the pack prefix). `x` may have any batch size.
    The decomposition appends the names of its sampling-grid nodes (pixel coordinates, normalised
    to [-1, 1]) to `fp32_nodes`: they must stay fp32 when a backend lowers precision. Pass the same
    `shared` dict to every call for the same pack to emit its weights once (a pack applied per frame).
    """
    weights_of = Weights(g, shared if shared is not None else {})
    weight, bias = weights["weight"], weights["bias"]
    off_w, off_b = weights["conv_offset.weight"], weights["conv_offset.bias"]
    kh, kw = weight.shape[2:]
    if (kh, kw) != (3, 3):
        raise ValueError(f"{name}: only 3x3 deformable convolutions are supported, not {kh}x{kw}")
    taps = kh * kw
    groups = deform_groups(off_w, kh)
    if mode == "native":
        out = weights_of.conv(offset_feat, off_w, off_b, f"{name}.conv_offset")
        offset = g.slice_channels(out, 0, 2 * groups * taps)
        mask = g.sigmoid(g.slice_channels(out, 2 * groups * taps, 3 * groups * taps))
        ins = [x, weights_of(weight, f"{name}.weight"), offset, weights_of(bias, f"{name}.bias"), mask]
        return g.op("DeformConv", ins, name, kernel_shape=[kh, kw], pads=[1, 1, 1, 1], strides=[1, 1],
                    dilations=[1, 1], group=1, offset_group=groups)
    if mode == "decomposed":
        return _decomposed(g, weights_of, x, offset_feat, weight, bias, off_w, off_b, groups, name,
                           fp32_nodes if fp32_nodes is not None else [])
    raise ValueError(f"deform mode must be one of {DEFORM_MODES}, not {mode!r}")


def _decomposed(g: GraphBuilder, weights_of: Weights, x: str, offset_feat: str, weight: np.ndarray, bias: np.ndarray,
                off_w: np.ndarray, off_b: np.ndarray, groups: int, name: str, fp32_nodes: list[str]) -> str:
    out_ch, in_ch = weight.shape[:2]
    taps = 9
    if in_ch % groups:
        raise ValueError(f"{name}: {in_ch} channels are not divisible by {groups} deformable groups")
    cg = in_ch // groups
    # conv_offset with its offset channels reordered from (dy, dx) to (dx, dy): GridSample's order
    perm = np.arange(2 * groups * taps).reshape(groups * taps, 2)[:, ::-1].reshape(-1)
    n_off = 2 * groups * taps
    out = weights_of.conv(offset_feat, np.concatenate([off_w[perm], off_w[n_off:]]),
                 np.concatenate([off_b[perm], off_b[n_off:]]), f"{name}.conv_offset")
    offset = g.slice_channels(out, 0, n_off)
    mask = g.sigmoid(g.slice_channels(out, n_off, 3 * groups * taps))

    first_grid_node = len(g.nodes)

    def i64(values: int | list[int], hint: str) -> str:
        return g.const(np.array(values, np.int64), hint)

    shape = g.op("Shape", [x], f"{name}.shape")
    n = g.op("Slice", [shape, i64([0], "s0"), i64([1], "s1"), i64([0], "ax0")], f"{name}.n")
    hw = g.op("Slice", [shape, i64([2], "s2"), i64([4], "s4"), i64([0], "ax0")], f"{name}.hw")
    h = g.op("Slice", [shape, i64([2], "s2"), i64([3], "s3"), i64([0], "ax0")], f"{name}.h")
    w = g.op("Slice", [shape, i64([3], "s3"), i64([4], "s4"), i64([0], "ax0")], f"{name}.w")

    # base sampling positions in pixels: [9, H, W, 2] holding (x + j - 1, y + i - 1) for tap k = 3i + j
    hf = g.op("Cast", [g.op("Squeeze", [h, i64([0], "ax0")], f"{name}.h0")], f"{name}.hf", to=1)
    wf = g.op("Cast", [g.op("Squeeze", [w, i64([0], "ax0")], f"{name}.w0")], f"{name}.wf", to=1)
    zero, one = g.const(0.0, "zero"), g.const(1.0, "one")
    ys = g.op("Range", [zero, hf, one], f"{name}.ys")  # [H]
    xs = g.op("Range", [zero, wf, one], f"{name}.xs")  # [W]
    tap_x = g.const((np.arange(taps) % 3 - 1).astype(np.float32).reshape(taps, 1, 1), "tap_x")
    tap_y = g.const((np.arange(taps) // 3 - 1).astype(np.float32).reshape(taps, 1, 1), "tap_y")
    one_one_w = g.concat([i64([1, 1], "c11"), w], axis=0)
    one_h_one = g.concat([i64([1], "c1"), h, i64([1], "c1")], axis=0)
    bx = g.add(g.op("Reshape", [xs, one_one_w], f"{name}.xs3"), tap_x)  # [9,1,W]
    by = g.add(g.op("Reshape", [ys, one_h_one], f"{name}.ys3"), tap_y)  # [9,H,1]
    grid_shape = g.concat([i64([taps], "c9"), hw], axis=0)
    bx = g.op("Expand", [bx, grid_shape], f"{name}.bx")
    by = g.op("Expand", [by, grid_shape], f"{name}.by")
    base = g.concat([g.op("Unsqueeze", [bx, i64([3], "ax3")], f"{name}.bx4"),
                     g.op("Unsqueeze", [by, i64([3], "ax3")], f"{name}.by4")], axis=3)  # [9,H,W,2]
    # pixel -> GridSample coordinates (align_corners=0): u = (2p + 1) / size - 1 = p * s + t
    size = g.concat([g.op("Unsqueeze", [wf, i64([0], "ax0")], f"{name}.wf1"),
                     g.op("Unsqueeze", [hf, i64([0], "ax0")], f"{name}.hf1")], axis=0)  # [2] = (W, H)
    s = g.op("Div", [g.const(2.0, "two"), size], f"{name}.s")
    t = g.sub(g.op("Div", [one, size], f"{name}.inv"), one)
    base_n = g.add(g.mul(base, s), t)  # [9,H,W,2]

    # offsets [N, G*9*2, H, W] -> [N*G, 9, H, W, 2] (last axis dx, dy), normalised and shifted
    off5 = g.op("Reshape", [offset, g.concat([i64([-1, taps, 2], "c_92"), hw], axis=0)], f"{name}.off5")
    off5 = g.op("Transpose", [off5], f"{name}.offt", perm=[0, 1, 3, 4, 2])
    grid = g.add(g.mul(off5, s), base_n)  # [NG, 9, H, W, 2]
    grids = g.op_multi("Split", [grid, i64([1] * taps, "ones9")], taps, f"{name}.grids", axis=1)
    xg = g.op("Reshape", [x, g.concat([i64([-1, cg], "c_cg"), hw], axis=0)], f"{name}.xg")  # [NG, Cg, H, W]
    sampled = [g.op("GridSample", [xg, g.op("Squeeze", [gk, i64([1], "ax1")], f"{name}.grid")], f"{name}.sampled",
                    mode="bilinear", padding_mode="zeros", align_corners=0) for gk in grids]  # [NG, Cg, H, W]
    fp32_nodes.extend(node.name for node in g.nodes[first_grid_node:])
    # one tap at a time: sample (zero outside), weight by the mask, contract with that tap's 1x1 slice of
    # the 3x3 weight, accumulate. Peak memory is one [N, C, H, W] column block, not nine.
    mask5 = g.op("Reshape", [mask, g.concat([i64([-1, taps], "c_m9"), hw], axis=0)], f"{name}.m5")  # [NG, 9, H, W]
    masks = g.op_multi("Split", [mask5, i64([1] * taps, "ones9")], taps, f"{name}.masks", axis=1)
    nchw = g.concat([n, i64([in_ch], "c_c"), hw], axis=0)
    out_sum = ""
    for k in range(taps):
        cols = g.op("Reshape", [g.mul(sampled[k], masks[k]), nchw], f"{name}.cols")  # [N, C, H, W]
        w_k = weight[:, :, k // 3, k % 3].reshape(out_ch, in_ch, 1, 1)
        y = weights_of.conv(cols, w_k, bias if k == 0 else None, f"{name}.tap{k}")
        out_sum = y if k == 0 else g.add(out_sum, y)
    return out_sum
