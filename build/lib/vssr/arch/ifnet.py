"""RIFE v4.x IFNet (Practical-RIFE `IFNet_HDv3`) as ONNX graphs, from one table of versions.

Every 4.x version is the same coarse-to-fine stack of IFBlocks; versions differ only in the
numbers of `VERSIONS` (block widths, flow scales, the optional per-frame encoder "Head", whether
the mask accumulates, whether an ensemble pass exists). One builder reads a row.

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

Frames must be padded to `multiple` = 4 x the largest flow scale (block 0 resizes by
1/max(scale) and then halves twice); networks declare it and `tiling=False`, and the generic
Session pads and crops.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import ModelError
from ..types import StateDict
from .ops import GraphBuilder
from .registry import Architecture

__all__ = [
    "ARCH",
    "SCALES",
    "VERSIONS",
    "IFNetParams",
    "IFNetVersion",
    "build",
    "build_encoder",
    "build_flownet",
    "candidates",
    "detect",
    "flow_scales",
    "pad_multiple",
]

logger = logging.getLogger(__name__)

SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Accepted flow-resolution factors (`scale=0.5` for 4K): every block's scale is divided by it."""


@dataclass(frozen=True, slots=True)
class IFNetVersion:
    """One row of the version table."""

    name: str
    channels: tuple[int, ...]
    """Width `c` of each IFBlock, block 0 first."""
    scales: tuple[int, ...]
    """Flow scale of each block at scale=1 (block i works at 1/scales[i] resolution)."""
    encoder: tuple[int, int] | None
    """Head (hidden, output) channels; None: no encoder (v4.6 and older)."""
    head: int
    """Channels each block predicts: 4 flow + 1 mask + (1 unused | 8 feature channels)."""
    feat: int
    """Feature channels a block passes to the next (0 for v4.6)."""
    accumulate_mask: bool
    """v4.6: mask = mask + m; later: mask = m."""
    ensemble: bool
    """Whether the version has the swapped-frames ensemble pass."""

    @property
    def enc(self) -> int:
        return self.encoder[1] if self.encoder else 0

    def in_planes(self, block: int) -> int:
        if block == 0:
            return 7 + 2 * self.enc
        return 3 + 3 + 2 * self.enc + 1 + 1 + self.feat + 4

    def signature(self) -> tuple[object, ...]:
        """What the weights determine: versions with equal signatures have identical graphs."""
        return (self.channels, self.encoder, self.head)


VERSIONS: dict[str, IFNetVersion] = {
    v.name: v
    for v in (
        IFNetVersion("4.6", (192, 128, 96, 64), (8, 4, 2, 1), None, 6, 0, True, True),
        IFNetVersion("4.22", (256, 192, 96, 48), (8, 4, 2, 1), (32, 8), 13, 8, False, False),
        IFNetVersion("4.22-lite", (192, 128, 64, 32), (8, 4, 2, 1), (16, 4), 13, 8, False, False),
        IFNetVersion("4.25", (192, 128, 96, 64, 32), (16, 8, 4, 2, 1), (16, 4), 13, 8, False, False),
        IFNetVersion("4.25-lite", (192, 128, 96, 64, 24), (32, 16, 8, 4, 1), (16, 4), 13, 8, False, False),
        IFNetVersion("4.26", (192, 128, 96, 64, 32), (16, 8, 4, 2, 1), (16, 4), 13, 8, False, False),
        IFNetVersion("4.26-heavy", (192, 128, 96, 64, 32), (16, 8, 4, 2, 1), (16, 16), 13, 8, False, False),
    )
}
"""Sources: HolyWu/vs-rife `IFNet_HDv3_v4_*.py` (see shared/research/models.md section 2.2).
4.25 and 4.26 share one architecture; only their trained weights differ. Checkpoints of other
versions whose shapes equal a row's (the same architecture) run correctly under that row's label."""


def flow_scales(version: IFNetVersion, scale: float = 1.0) -> tuple[float, ...]:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, not {scale!r}")
    return tuple(s / scale for s in version.scales)


def pad_multiple(version: IFNetVersion, scale: float = 1.0) -> int:
    """4 x the largest flow scale: block 0 resizes by 1/max and then has two stride-2 convs."""
    return max(2, int(4 * max(flow_scales(version, scale))))


# --- weights -> hyperparameters -------------------------------------------------------------


def _need(state: StateDict, key: str, ndim: int) -> np.ndarray:
    array = state.get(key)
    if array is None:
        raise ModelError(f"RIFE weights lack {key!r}")
    if array.ndim != ndim:
        raise ModelError(f"RIFE weights: {key!r} has shape {list(array.shape)}, expected {ndim} dimensions")
    return array


@dataclass(frozen=True, slots=True)
class IFNetParams:
    """Hyperparameters read from tensor shapes (never stored)."""

    channels: tuple[int, ...]
    encoder: tuple[int, int] | None
    head: int

    @classmethod
    def from_state(cls, state: StateDict) -> IFNetParams:
        blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"block(\d+)\.", k))})
        if not blocks or blocks != list(range(len(blocks))):
            raise ModelError(f"RIFE weights: expected block0.., block1.. keys, found blocks {blocks}")
        channels = tuple(int(_need(state, f"block{i}.conv0.1.0.weight", 4).shape[0]) for i in range(len(blocks)))
        heads = {int(_need(state, f"block{i}.lastconv.0.weight", 4).shape[1]) for i in range(len(blocks))}
        if len(heads) != 1 or next(iter(heads)) % 4:
            raise ModelError(f"RIFE weights: inconsistent lastconv outputs {sorted(heads)}")
        encoder = None
        if "encode.cnn0.weight" in state:
            cnn0 = _need(state, "encode.cnn0.weight", 4)
            cnn3 = _need(state, "encode.cnn3.weight", 4)
            encoder = (int(cnn0.shape[0]), int(cnn3.shape[1]))
        elif any(k.startswith("encode.") for k in state):
            raise ModelError("RIFE weights: this encoder layout (v4.7-v4.12 `encode.N` Sequential) is not supported")
        return cls(channels, encoder, next(iter(heads)) // 4)


def candidates(state: StateDict) -> list[IFNetVersion]:
    """Versions whose graph fits these weights (several when architectures are identical)."""
    params = IFNetParams.from_state(state)
    found = [v for v in VERSIONS.values() if v.signature() == (params.channels, params.encoder, params.head)]
    for version in found:
        _check_shapes(state, version)
    return found


def detect(state: StateDict) -> bool:
    return "block0.conv0.0.0.weight" in state and "block0.lastconv.0.weight" in state


def _check_shapes(state: StateDict, version: IFNetVersion) -> None:
    for i, c in enumerate(version.channels):
        want = {
            f"block{i}.conv0.0.0.weight": (c // 2, version.in_planes(i), 3, 3),
            f"block{i}.conv0.1.0.weight": (c, c // 2, 3, 3),
            f"block{i}.lastconv.0.weight": (c, 4 * version.head, 4, 4),
            **{f"block{i}.convblock.{j}.conv.weight": (c, c, 3, 3) for j in range(8)},
            **{f"block{i}.convblock.{j}.beta": (1, c, 1, 1) for j in range(8)},
        }
        if version.encoder:
            hid, out = version.encoder
            want |= {"encode.cnn0.weight": (hid, 3, 3, 3), "encode.cnn1.weight": (hid, hid, 3, 3),
                     "encode.cnn2.weight": (hid, hid, 3, 3), "encode.cnn3.weight": (hid, out, 4, 4)}
        for key, shape in want.items():
            got = state.get(key)
            if got is None or tuple(got.shape) != shape:
                found = "missing" if got is None else f"shaped {list(got.shape)}"
                raise ModelError(f"RIFE v{version.name} weights: {key!r} is {found}, expected {list(shape)}")


# --- graph pieces ---------------------------------------------------------------------------


class _Warp:
    """Backward warp by a pixel flow: grid = (pixel coords + flow) * 2/(size-1) - 1.

    The coordinate ramps and factors are built once from the input shape; every node here is
    recorded in `nodes` for the fp32 list.
    """

    def __init__(self, g: GraphBuilder, image: str) -> None:
        self.g = g
        first = len(g.nodes)

        def i64(v: int | list[int]) -> str:
            return g.const(np.array(v, np.int64), "i")

        shape = g.op("Shape", [image], "grid_shape")
        self.ramps = []
        self.factors = []
        for axis, dims in ((3, [1, 1, 1, -1]), (2, [1, 1, -1, 1])):
            n = g.op("Gather", [shape, i64(axis)], "grid_n")
            ramp = g.op("Cast", [g.op("Range", [i64(0), n, i64(1)], "grid_range")], "grid_ramp", to=onnx.TensorProto.FLOAT)
            self.ramps.append(g.op("Reshape", [ramp, i64(dims)], "grid_ramp"))
            nf = g.op("Cast", [n], "grid_nf", to=onnx.TensorProto.FLOAT)
            self.factors.append(g.op("Div", [g.const(np.float32(2.0), "two"), g.sub(nf, g.const(np.float32(1.0), "one"))], "grid_k"))
        self.nodes = [n.name for n in g.nodes[first:]]

    def __call__(self, image: str, flow: str, start: int) -> str:
        """Sample `image` at pixel positions displaced by flow[:, start:start+2] (x, y)."""
        g = self.g
        first = len(g.nodes)
        coords = []
        for axis in range(2):
            f = g.slice_channels(flow, start + axis, start + axis + 1)
            coords.append(g.sub(g.mul(g.add(f, self.ramps[axis]), self.factors[axis]), g.const(np.float32(1.0), "one")))
        grid = g.op("Transpose", [g.concat(coords)], "grid", perm=[0, 2, 3, 1])
        out = g.op("GridSample", [image, grid], "warped", mode="bilinear", padding_mode="border", align_corners=1)
        self.nodes += [n.name for n in g.nodes[first:]]
        return out


class _Block:
    """One IFBlock; its weights are added once and shared by the ensemble pass."""

    def __init__(self, g: GraphBuilder, state: StateDict, i: int, version: IFNetVersion) -> None:
        self.g, self.version = g, version
        p = f"block{i}"
        self.conv0 = [(g.weight(state[f"{p}.conv0.{j}.0.weight"], f"{p}.conv0.{j}.0.weight"),
                       g.weight(state[f"{p}.conv0.{j}.0.bias"], f"{p}.conv0.{j}.0.bias")) for j in range(2)]
        self.res = []
        for j in range(8):
            # conv(x) * beta == conv with weight and bias scaled by beta: one full-size Mul less per layer
            beta = state[f"{p}.convblock.{j}.beta"].reshape(-1)
            w = state[f"{p}.convblock.{j}.conv.weight"] * beta[:, None, None, None]
            b = state[f"{p}.convblock.{j}.conv.bias"] * beta
            self.res.append((g.weight(w, f"{p}.convblock.{j}.conv.weight"), g.weight(b, f"{p}.convblock.{j}.conv.bias")))
        self.last = (g.weight(state[f"{p}.lastconv.0.weight"], f"{p}.lastconv.0.weight"),
                     g.weight(state[f"{p}.lastconv.0.bias"], f"{p}.lastconv.0.bias"))

    def _resize(self, x: str, factor: float) -> str:
        return x if factor == 1 else self.g.resize(x, factor, "linear")

    def __call__(self, before: list[str], timestep: str, after: list[str], flow: str | None,
                 scale: float) -> tuple[str, str, str | None]:
        """block(cat(*before, timestep, *after), flow, scale) -> (flow, mask, feat)."""
        g = self.g
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
        for w, b in self.conv0:
            x = g.leaky_relu(g.op("Conv", [x, w, b], "conv", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), 0.2)
        for w, b in self.res:
            y = g.op("Conv", [x, w, b], "conv", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
            x = g.leaky_relu(g.add(y, x), 0.2)
        w, b = self.last
        x = g.op("ConvTranspose", [x, w, b], "deconv", kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1])
        tmp = self._resize(g.depth_to_space(x, 2), scale)
        out_flow = g.scale(g.slice_channels(tmp, 0, 4), scale) if scale != 1 else g.slice_channels(tmp, 0, 4)
        mask = g.slice_channels(tmp, 4, 5)
        feat = g.slice_channels(tmp, 5, 5 + self.version.feat) if self.version.feat else None
        return out_flow, mask, feat


def _swap(g: GraphBuilder, flow: str) -> str:
    return g.concat([g.slice_channels(flow, 2, 4), g.slice_channels(flow, 0, 2)])


def _average(g: GraphBuilder, a: str, b: str) -> str:
    return g.scale(g.add(a, b), 0.5)


def build_encoder(state: StateDict, version: IFNetVersion) -> onnx.ModelProto:
    """The per-frame feature encoder ("Head") of v4.7+: img -> feat (E channels, full size)."""
    if version.encoder is None:
        raise ValueError(f"RIFE v{version.name} has no encoder")
    _check_shapes(state, version)
    g = GraphBuilder(f"rife-v{version.name}-encoder")
    x = g.clip(g.input("img", 3))
    for j in range(3):
        x = g.leaky_relu(g.conv(x, state[f"encode.cnn{j}.weight"], state[f"encode.cnn{j}.bias"], f"encode.cnn{j}",
                                stride=2 if j == 0 else 1), 0.2)
    x = g.conv_transpose(x, state["encode.cnn3.weight"], state["encode.cnn3.bias"], "encode.cnn3")
    g.output(x, "feat", version.enc)
    return g.model(scale=1, multiple=2, tiling=False, rife_version=version.name, rife_role="encoder")


def build_flownet(state: StateDict, version: IFNetVersion, *, scale: float = 1.0,
                  ensemble: bool = False) -> onnx.ModelProto:
    """The interpolation network of one version at one flow scale.

    Raises:
        ModelError: the weights do not fit the version.
        ValueError: scale not in SCALES, or ensemble for a version without one.
    """
    scales = flow_scales(version, scale)
    if ensemble and not version.ensemble:
        raise ValueError(f"RIFE v{version.name} has no ensemble mode (only v4.6 here)")
    _check_shapes(state, version)
    suffix = "-ensemble" if ensemble else ""
    g = GraphBuilder(f"rife-v{version.name}{suffix}-s{scale:g}")
    img0, img1 = g.clip(g.input("img0", 3)), g.clip(g.input("img1", 3))
    feats = [g.input("feat0", version.enc), g.input("feat1", version.enc)] if version.encoder else []
    t = g.input("timestep", None, shape=[1, 1, 1, 1])
    t_rev = g.sub(g.const(np.float32(1.0), "one"), t) if ensemble else t
    warp = _Warp(g, img0)
    # images and their features are warped together: one GridSample per frame per block
    sources = [g.concat([img0, feats[0]]), g.concat([img1, feats[1]])] if feats else [img0, img1]
    blocks = [_Block(g, state, i, version) for i in range(len(version.channels))]
    flow = mask = feat = None
    warped: list[str] = []
    wfeats: list[str] = []
    for i, (block, s) in enumerate(zip(blocks, scales, strict=True)):
        if flow is None:
            flow, mask, feat = block([img0, img1, *feats], t, [], None, s)
            if ensemble:
                f1, m1, _ = block([img1, img0], t_rev, [], None, s)
                flow = _average(g, flow, _swap(g, f1))
                mask = _average(g, mask, g.op("Neg", [m1], "neg"))
        else:
            assert mask is not None  # internal invariant, not user input
            after = [mask, feat] if feat else [mask]
            fd, m0, feat = block([warped[0], warped[1], *wfeats], t, after, flow, s)
            if ensemble:
                neg = g.op("Neg", [mask], "neg")
                f1, m1, _ = block([warped[1], warped[0]], t_rev, [neg], _swap(g, flow), s)
                fd = _average(g, fd, _swap(g, f1))
                m0 = _average(g, m0, g.op("Neg", [m1], "neg"))
            flow = g.add(flow, fd)
            mask = g.add(mask, m0) if version.accumulate_mask else m0
        last = i == len(blocks) - 1
        srcs = [img0, img1] if last or not feats else sources
        w = [warp(srcs[0], flow, 0), warp(srcs[1], flow, 2)]
        if feats and not last:
            warped = [g.slice_channels(x, 0, 3) for x in w]
            wfeats = [g.slice_channels(x, 3, 3 + version.enc) for x in w]
        else:
            warped = w
    assert mask is not None
    m = g.sigmoid(mask)
    out = g.add(warped[1], g.mul(g.sub(warped[0], warped[1]), m))  # w0*m + w1*(1-m)
    g.output(out, "output", 3)
    return g.model(
        scale=1,
        multiple=pad_multiple(version, scale),
        tiling=False,
        fp32_nodes=",".join(warp.nodes),
        rife_version=version.name,
        rife_role="flownet",
        rife_scale=scale,
        rife_ensemble=ensemble,
    )


def build(state: StateDict) -> onnx.ModelProto:
    """The flownet of the version the weights fit (scale 1). v4.7+ also need `build_encoder`."""
    found = candidates(state)
    if not found:
        raise ModelError("RIFE weights match no supported version: " + ", ".join(VERSIONS))
    return build_flownet(state, found[-1])


ARCH = Architecture("ifnet", detect, build)
