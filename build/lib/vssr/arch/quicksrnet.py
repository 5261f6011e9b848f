"""QuickSRNet (Berger et al., arXiv 2303.04336; Qualcomm AIMET model zoo `QuickSRNetBase`).

A plain stack of 3x3 convs, each followed by ReLU1 (= clip(0, 1)), then a conv to 3*s*s channels,
a final clip and depth-to-space (PyTorch PixelShuffle = DepthToSpace CRD). Sizes (features f,
intermediate layers m): small f32-m2, medium f32-m5, large f64-m11; large adds a trainable
"anchor" (input-to-output) conv. Scales 2, 3, 4, and 1.5: there the features are pixel-unshuffled
by 2 (4f channels at H/2), conv_last is 1x1 to 27 channels, then shuffled by 3; H and W must be
even (SizeReq.multiple = 2).

Keys (PyTorch layout): ``cnn.{0,2,...,2m}.{weight,bias}``, ``conv_last.{weight,bias}``, large only
``anchor.net.{weight,bias}``. All hyperparameters are read from shapes.

The graph is kept quantization-friendly: every conv is followed by a Clip (which ONNX Runtime and
TensorRT fuse into an int8 conv), and the tail that must stay float (final Clip, DepthToSpace) is
named in the model metadata (``vssr.quant_exclude``) for `vssr.quant`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import ModelError
from ..types import StateDict
from .ops import GraphBuilder
from .registry import Architecture, has_all

__all__ = ["ARCH", "SIZES", "QuickSRNetParams", "build", "detect", "random_state", "receptive_radius"]

SIZES: dict[str, tuple[int, int, bool]] = {
    "small": (32, 2, False),
    "medium": (32, 5, False),
    "large": (64, 11, True),
}
"""Paper configurations: name -> (features, intermediate layers, anchor)."""

FINAL_CLIP = "final_clip"
DEPTH_TO_SPACE = "depth_to_space"
GRAY_MEAN = "gray_mean"


@dataclass(frozen=True, slots=True)
class QuickSRNetParams:
    features: int
    layers: int
    """Intermediate f->f convs (m)."""
    scale: Fraction
    """2, 3, 4 or 3/2."""
    anchor: bool

    @property
    def shuffle(self) -> int:
        """DepthToSpace block size: the scale, or 3 for x1.5 (after an unshuffle by 2)."""
        return 3 if self.scale == Fraction(3, 2) else int(self.scale)

    @property
    def size(self) -> str | None:
        for name, (f, m, anchor) in SIZES.items():
            if (f, m, anchor) == (self.features, self.layers, self.anchor):
                return name
        return None

    @property
    def name(self) -> str:
        s = "1.5" if self.scale == Fraction(3, 2) else str(self.scale)
        size = self.size or f"f{self.features}-m{self.layers}{'-anchor' if self.anchor else ''}"
        return f"quicksrnet_{size}_x{s}"

    @classmethod
    def from_state(cls, state: StateDict) -> QuickSRNetParams:
        try:
            first = state["cnn.0.weight"]
            last = state["conv_last.weight"]
        except KeyError as err:
            raise ModelError(f"not a QuickSRNet state dict: missing {err.args[0]!r}") from err
        if first.ndim != 4 or first.shape[1] != 3 or first.shape[2:] != (3, 3):
            raise ModelError(f"QuickSRNet cnn.0.weight must be [f, 3, 3, 3], got {list(first.shape)}")
        f = first.shape[0]
        m = 0
        while f"cnn.{2 * (m + 1)}.weight" in state:
            m += 1
            w = state[f"cnn.{2 * m}.weight"]
            if w.shape != (f, f, 3, 3):
                raise ModelError(f"QuickSRNet cnn.{2 * m}.weight must be [{f}, {f}, 3, 3], got {list(w.shape)}")
        out_ch, in_ch, kh, _ = last.shape
        if (kh, in_ch, out_ch) == (1, 4 * f, 27):
            scale = Fraction(3, 2)
        elif kh == 3 and in_ch == f and out_ch in (12, 27, 48):
            scale = Fraction({12: 2, 27: 3, 48: 4}[out_ch])
        else:
            raise ModelError(
                f"QuickSRNet conv_last.weight {list(last.shape)} matches no scale "
                f"(x2/x3/x4: [3*s*s, {f}, 3, 3]; x1.5: [27, {4 * f}, 1, 1])"
            )
        anchor = "anchor.net.weight" in state
        if anchor:
            a = state["anchor.net.weight"]
            want = (27, 3, 3, 3) if scale == Fraction(3, 2) else (out_ch, 3, 1, 1)
            if a.shape != want:
                raise ModelError(f"QuickSRNet anchor.net.weight must be {list(want)}, got {list(a.shape)}")
        return cls(features=f, layers=m, scale=scale, anchor=anchor)


_KEY = re.compile(r"(cnn\.\d+|conv_last|anchor\.net)\.(weight|bias)")


def detect(state: StateDict) -> bool:
    """Only cnn.<n>/conv_last/anchor.net weights and biases, with cnn.0 and conv_last present."""
    return has_all(state, ("cnn.0.weight", "conv_last.weight")) and all(_KEY.fullmatch(k) for k in state)


def build(state: StateDict, *, channels: int = 3, split_identity: bool = False) -> onnx.ModelProto:
    """The ONNX graph (opset 19): input ``input`` [1, C, H, W] -> ``output`` [1, C, sH, sW], in [0, 1].

    channels=3: RGB. channels=1 (luma-only or grey use): the RGB network run on the grey image as
    three equal channels, and the mean of its three output channels, which is what the paper
    evaluation does for grey images. The replication is folded into the first conv (its weights
    summed over input channels: exact); the mean is a float ReduceMean after depth-to-space.

    split_identity=True builds the same function for int8: the identity initialisation leaves
    centre taps near 1.0 in most output channels, so a per-channel int8 scale (~1/127) is far too
    coarse for the other taps (~0.007) and post-training int8 loses over 1 dB. Here every tap
    above 0.5 on the identity positions is taken out of the 3x3 kernel (minus 1.0) and added back
    through an exact path (the input itself, a 0/1 mask, or a 0/1 1x1 conv, all exact in int8).
    """
    if channels not in (1, 3):
        raise ModelError(f"QuickSRNet graphs have 1 (grey) or 3 (RGB) channels, not {channels}")
    p = QuickSRNetParams.from_state(state)
    if channels == 1:
        state = dict(state)
        state["cnn.0.weight"] = state["cnn.0.weight"].sum(axis=1, keepdims=True)
        if p.anchor:
            state["anchor.net.weight"] = state["anchor.net.weight"].sum(axis=1, keepdims=True)
    g = GraphBuilder(p.name if channels == 3 else f"{p.name}_gray")
    # Clip bounds as true scalars (the ONNX spec's min/max are 0-d tensors)
    lo, hi = "clip_lo", "clip_hi"
    g.initializers += [
        numpy_helper.from_array(np.array(0, np.float32), lo),
        numpy_helper.from_array(np.array(1, np.float32), hi),
    ]
    x = g.input("input", channels)
    h = x
    for i in range(p.layers + 1):
        key = f"cnn.{2 * i}"
        w = state[f"{key}.weight"]
        if split_identity:
            ins = w.shape[1]
            pairs = [(c, c if ins > 1 else 0) for c in range(min(w.shape[0], 3 if i == 0 else w.shape[0]))]
            y = _conv_split(g, h, w, state.get(f"{key}.bias"), key, pairs)
        else:
            y = g.conv(h, w, state.get(f"{key}.bias"), key)
        h = g.op("Clip", [y, lo, hi], "relu1")
    if p.scale == Fraction(3, 2):
        # PyTorch pixel_unshuffle puts pixel (i, j) of channel c at c*4 + i*2 + j; SpaceToDepth at
        # (i*2 + j)*f + c. A static SpaceToDepth with conv_last's input channels permuted to match
        # is the same function without the Shape/Reshape/Transpose chain (and fuses in TensorRT).
        h = g.op("SpaceToDepth", [h], "unshuffled", blocksize=2)
        w = state["conv_last.weight"]
        w = w.reshape(w.shape[0], p.features, 4, 1, 1).transpose(0, 2, 1, 3, 4).reshape(w.shape)
        y = g.conv(h, w, state.get("conv_last.bias"), "conv_last", pad=0)
        if p.anchor:
            a = g.conv(x, state["anchor.net.weight"], state.get("anchor.net.bias"), "anchor", stride=2, pad=1)
            y = g.add(y, a)
    else:
        w, s2 = state["conv_last.weight"], p.shuffle * p.shuffle
        if split_identity:
            y = _conv_split(
                g, h, w, state.get("conv_last.bias"), "conv_last", [(o, o // s2) for o in range(w.shape[0])]
            )
        else:
            y = g.conv(h, w, state.get("conv_last.bias"), "conv_last")
        if p.anchor:
            y = g.add(y, g.conv(x, state["anchor.net.weight"], state.get("anchor.net.bias"), "anchor", pad=0))
    y = _named(g, "Clip", [y, lo, hi], FINAL_CLIP)
    y = _named(g, "DepthToSpace", [y], DEPTH_TO_SPACE, blocksize=p.shuffle, mode="CRD")
    exclude = [FINAL_CLIP, DEPTH_TO_SPACE]
    if channels == 1:
        y = _named(g, "ReduceMean", [y, g.const(np.array([1], np.int64), "axes")], GRAY_MEAN, keepdims=1)
        exclude.append(GRAY_MEAN)
    g.output(y, "output", channels)
    return g.model(
        scale=p.scale,
        multiple=2 if p.scale == Fraction(3, 2) else 1,
        tiling=True,
        quant_exclude=",".join(exclude),
    )


def _conv_split(
    g: GraphBuilder, h: str, w: np.ndarray, b: np.ndarray | None, key: str, pairs: list[tuple[int, int]]
) -> str:
    """conv(h, w) as conv(h, w - E) + E*h, E the 0/1 identity taps (> 0.5) at (out, in) `pairs`."""
    w = w.copy()
    e = np.zeros((w.shape[0], w.shape[1], 1, 1), np.float32)
    c = w.shape[2] // 2
    for o, i in pairs:
        if w[o, i, c, c] > 0.5:
            w[o, i, c, c] -= 1.0
            e[o, i, 0, 0] = 1.0
    y = g.conv(h, w, b, key)
    if not e.any():
        return y
    if w.shape[0] == w.shape[1] and all(o == i for o, i in pairs) and len(pairs) == w.shape[0]:
        diag = e[:, :, 0, 0].diagonal()
        residual = h if diag.all() else g.mul(h, g.const(diag.reshape(1, -1, 1, 1), f"{key}.identity_mask"))
    else:
        residual = g.conv(h, e, None, f"{key}.identity", pad=0)
    return g.add(y, residual)


def _named(g: GraphBuilder, op_type: str, inputs: list[str], name: str, **attrs: object) -> str:
    """A node whose node name and output name are both `name` (quant excludes it by name)."""
    g.nodes.append(onnx.helper.make_node(op_type, inputs, [name], name=name, **attrs))
    return name


def random_state(
    size: str = "small",
    scale: float | Fraction = 2,
    *,
    seed: int = 0,
    features: int | None = None,
    layers: int | None = None,
) -> StateDict:
    """Random weights in the canonical layout (tests, benchmarks). Identity-initialised like the paper."""
    f, m, anchor = SIZES[size]
    f = features or f
    m = layers if layers is not None else m
    rng = np.random.default_rng(seed)
    s = Fraction(scale).limit_denominator(4)
    state: StateDict = {}

    def conv(key: str, out_ch: int, in_ch: int, k: int) -> None:
        state[f"{key}.weight"] = (rng.standard_normal((out_ch, in_ch, k, k)) * 0.05).astype(np.float32)
        state[f"{key}.bias"] = (rng.standard_normal(out_ch) * 0.01).astype(np.float32)

    conv("cnn.0", f, 3, 3)
    for i in range(m):
        conv(f"cnn.{2 * (i + 1)}", f, f, 3)
    for i in range(m + 1):
        w = state[f"cnn.{2 * i}.weight"]
        for c in range(min(w.shape[:2])):
            w[c, c, 1, 1] += 1.0
    if s == Fraction(3, 2):
        conv("conv_last", 27, 4 * f, 1)
        if anchor:
            conv("anchor.net", 27, 3, 3)
    else:
        n = int(s)
        conv("conv_last", 3 * n * n, f, 3)
        for o in range(3 * n * n):
            state["conv_last.weight"][o, o // (n * n), 1, 1] += 1.0
        if anchor:
            conv("anchor.net", 3 * n * n, 3, 1)
    return state


def receptive_radius(state: StateDict) -> int:
    """Input pixels of context each output pixel depends on (one per 3x3 conv): the tile overlap."""
    p = QuickSRNetParams.from_state(state)
    return p.layers + 2 if p.scale != Fraction(3, 2) else p.layers + 3


ARCH = Architecture("quicksrnet", detect, build)
