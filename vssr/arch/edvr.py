"""EDVR (BasicSR `EDVR`): PCD alignment with DCNv2, TSA fusion, reconstruction, x4 pixel shuffle.

Hyperparameters are read from the state dict (BasicSR key layout): num_feat, num_frame, deformable
groups, extraction / reconstruction block counts, predeblur, hr_in and TSA. The centre frame is
num_frame // 2 (BasicSR's default; it cannot be read from the weights).

Three graphs from the same weights:

- `build` (monolithic): input [1, 3T, H, W] (T frames concatenated as channels, the vs-mlrt
  convention), output the restored centre frame [1, 3, sH, sW] (s = 4, or 1 with hr_in).
- `build_extractor`: one frame [1, 3, H, W] -> its level-1 features `l1` [1, C, H, W]. This is the
  expensive per-frame part (conv_first + the extraction residual blocks), run once per source frame
  and cached by the caller.
- `build_aligner`: T cached `l1_<t>` + the centre image `center` -> output. It recomputes the cheap
  L2/L3 pyramid convs (about 0.6 of one full-size conv per frame, against 1 + 2 x extract blocks for
  L1), so every input is at frame size and the generic padding/tiling path applies unchanged.
  The split is not offered with hr_in (its features are at 1/4 of the frame size).
  What it saves is bounded: PCD alignment (two 216-channel offset convs and two deformable convs
  per frame at full size) costs more than feature extraction, and every (neighbour, centre) pair is
  aligned for one output frame only, so per output frame the split does about 4/5 of the
  monolithic work (measured 1.15-1.18x faster on CPU, bench/edvr.py).

Deformable convolutions are emitted natively or decomposed (see `vssr.arch.deform`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import ModelError
from ..types import StateDict
from .deform import DeformMode, Weights, deform_groups, modulated_deform_conv
from .ops import GraphBuilder
from .registry import Architecture, has_all

__all__ = ["ARCH", "DEFAULT_OVERLAP", "EDVRParams", "build", "build_aligner", "build_extractor", "detect"]

LRELU = 0.1
DEFAULT_OVERLAP = 64
"""Tile overlap (input pixels) for the network's receptive field: about 11 px for the extraction
convs, ~16 for the pyramid and PCD at 1/4 size, ~24 for reconstruction and upsampling, ~8 for TSA,
plus the deformable offsets (learned; a few pixels in practice). 64 covers it with margin."""


@dataclass(frozen=True, slots=True)
class EDVRParams:
    num_feat: int
    num_frame: int
    groups: int
    extract: int
    reconstruct: int
    predeblur: bool
    hr_in: bool
    tsa: bool

    @property
    def center(self) -> int:
        return self.num_frame // 2

    @property
    def scale(self) -> int:
        return 1 if self.hr_in else 4

    @property
    def multiple(self) -> int:
        """H and W must be multiples of this (two stride-2 levels; x4 more with hr_in)."""
        return 16 if self.hr_in else 4

    @property
    def splittable(self) -> bool:
        return not self.hr_in

    @property
    def name(self) -> str:
        size = {64: "M", 128: "L"}.get(self.num_feat, f"C{self.num_feat}")
        kind = "deblur" if self.predeblur else f"x{self.scale}"
        return f"edvr_{size}_{kind}_t{self.num_frame}"

    @classmethod
    def from_state(cls, state: StateDict) -> EDVRParams:
        try:
            num_feat = int(state["conv_l2_1.weight"].shape[0])
            groups = deform_groups(state["pcd_align.cas_dcnpack.conv_offset.weight"])
            tsa = "fusion.feat_fusion.weight" in state
            fusion = state["fusion.feat_fusion.weight" if tsa else "fusion.weight"]
        except KeyError as err:
            raise ModelError(f"not an EDVR state dict: missing {err.args[0]!r}") from err
        if fusion.shape[1] % num_feat:
            raise ModelError(f"EDVR fusion weight {list(fusion.shape)} does not match num_feat {num_feat}")
        params = cls(
            num_feat=num_feat,
            num_frame=int(fusion.shape[1]) // num_feat,
            groups=groups,
            extract=_count(state, "feature_extraction"),
            reconstruct=_count(state, "reconstruction"),
            predeblur="predeblur.conv_first.weight" in state,
            hr_in="predeblur.stride_conv_hr1.weight" in state,
            tsa=tsa,
        )
        if num_feat % groups:
            raise ModelError(f"EDVR num_feat {num_feat} is not divisible by {groups} deformable groups")
        return params


def _count(state: StateDict, prefix: str) -> int:
    pattern = re.compile(rf"{re.escape(prefix)}\.(\d+)\.conv1\.weight")
    return len({m.group(1) for k in state if (m := pattern.fullmatch(k))})


def detect(state: StateDict) -> bool:
    return has_all(state, ("pcd_align.cas_dcnpack.weight", "pcd_align.cas_dcnpack.conv_offset.weight", "upconv2.weight"))


class _Builder:
    """Emits EDVR's parts into one GraphBuilder; tensors carry a batch of frames where noted."""

    def __init__(self, state: StateDict, name: str, deform: DeformMode = "native") -> None:
        self.state = state
        self.p = EDVRParams.from_state(state)
        self.g = GraphBuilder(name)
        self.deform = deform
        self.fp32_nodes: list[str] = []
        self.weights = Weights(self.g, {})  # PCD runs once per frame on the same weights

    def conv(self, x: str, key: str, stride: int = 1) -> str:
        return self.weights.conv(x, self.state[f"{key}.weight"], self.state[f"{key}.bias"], key, stride)

    def lconv(self, x: str, key: str, stride: int = 1) -> str:
        return self.g.leaky_relu(self.conv(x, key, stride), LRELU)

    def res(self, x: str, key: str) -> str:
        return self.g.add(x, self.conv(self.g.relu(self.conv(x, f"{key}.conv1")), f"{key}.conv2"))

    def up2(self, x: str) -> str:
        return self.g.resize(x, 2, "linear")

    def model(self, **metadata: object) -> onnx.ModelProto:
        # bf16 under OpenVINO moved outputs by 6e-3..9e-3 through the deformable alignment
        metadata["precision_sensitive"] = True
        if self.fp32_nodes:
            metadata["fp32_nodes"] = ",".join(self.fp32_nodes)
        return self.g.model(**metadata)

    def i64(self, values: list[int]) -> str:
        return self.g.const(np.array(values, np.int64), "i64")

    # --- per-frame features ----------------------------------------------------------------------
    def predeblur(self, x: str) -> str:
        p = "predeblur"
        l1 = self.lconv(x, f"{p}.conv_first")
        if self.p.hr_in:
            l1 = self.lconv(self.lconv(l1, f"{p}.stride_conv_hr1", 2), f"{p}.stride_conv_hr2", 2)
        l2 = self.lconv(l1, f"{p}.stride_conv_l2", 2)
        l3 = self.lconv(l2, f"{p}.stride_conv_l3", 2)
        l3 = self.up2(self.res(l3, f"{p}.resblock_l3"))
        l2 = self.g.add(self.res(l2, f"{p}.resblock_l2_1"), l3)
        l2 = self.up2(self.res(l2, f"{p}.resblock_l2_2"))
        for i in range(2):
            l1 = self.res(l1, f"{p}.resblock_l1.{i}")
        l1 = self.g.add(l1, l2)
        for i in range(2, 5):
            l1 = self.res(l1, f"{p}.resblock_l1.{i}")
        return l1

    def level1(self, x: str) -> str:
        """Frames [N,3,H,W] -> L1 features [N,C,h,w]."""
        l1 = self.conv(self.predeblur(x), "conv_1x1") if self.p.predeblur else self.lconv(x, "conv_first")
        for i in range(self.p.extract):
            l1 = self.res(l1, f"feature_extraction.{i}")
        return l1

    def pyramid(self, l1: str) -> tuple[str, str]:
        l2 = self.lconv(self.lconv(l1, "conv_l2_1", 2), "conv_l2_2")
        l3 = self.lconv(self.lconv(l2, "conv_l3_1", 2), "conv_l3_2")
        return l2, l3

    # --- per-output-frame part -------------------------------------------------------------------
    def dcn(self, x: str, offset_feat: str, key: str) -> str:
        pack = {k[len(key) + 1:]: v for k, v in self.state.items() if k.startswith(f"{key}.")}
        return modulated_deform_conv(self.g, x, offset_feat, pack, key, mode=self.deform, fp32_nodes=self.fp32_nodes,
                                     shared=self.weights.names)

    def pcd(self, nbr: list[str], ref: list[str]) -> str:
        """nbr[level-1]: one frame's features [1,C,..] at levels 1..3; ref: the centre frame's."""
        g, p = self.g, "pcd_align"
        up_offset = up_feat = feat = ""
        for i in (3, 2, 1):
            lv = f"l{i}"
            offset = self.lconv(g.concat([nbr[i - 1], ref[i - 1]]), f"{p}.offset_conv1.{lv}")
            if i == 3:
                offset = self.lconv(offset, f"{p}.offset_conv2.{lv}")
            else:
                offset = self.lconv(g.concat([offset, up_offset]), f"{p}.offset_conv2.{lv}")
                offset = self.lconv(offset, f"{p}.offset_conv3.{lv}")
            feat = self.dcn(nbr[i - 1], offset, f"{p}.dcn_pack.{lv}")
            if i < 3:
                feat = self.conv(g.concat([feat, up_feat]), f"{p}.feat_conv.{lv}")
            if i > 1:
                feat = g.leaky_relu(feat, LRELU)
                up_offset = g.scale(self.up2(offset), 2.0)
                up_feat = self.up2(feat)
        offset = self.lconv(g.concat([feat, ref[0]]), f"{p}.cas_offset_conv1")
        offset = self.lconv(offset, f"{p}.cas_offset_conv2")
        return g.leaky_relu(self.dcn(feat, offset, f"{p}.cas_dcnpack"), LRELU)

    def pools(self, x: str) -> str:
        g = self.g
        mx = g.op("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
        # PyTorch AvgPool2d counts the zero padding (count_include_pad=True); ONNX's default does not
        avg = g.op("AveragePool", [x], "avgpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                   count_include_pad=1)
        return g.concat([mx, avg])

    def tsa(self, aligned: str) -> str:
        """aligned [T,C,H,W] -> fused [1,C,H,W]."""
        g, f, c = self.g, "fusion", self.p.center
        center = g.op("Slice", [aligned, self.i64([c]), self.i64([c + 1]), self.i64([0])], "aligned_ref")
        emb_ref = self.conv(center, f"{f}.temporal_attn1")
        emb = self.conv(aligned, f"{f}.temporal_attn2")
        corr = g.op("ReduceSum", [g.mul(emb, emb_ref), self.i64([1])], "corr", keepdims=1)  # [T,1,H,W]
        weighted = g.mul(aligned, g.sigmoid(corr))
        flat = g.op("Reshape", [weighted, self.i64([1, -1, 0, 0])], "aligned_flat")  # channel t*C + c
        feat = self.lconv(flat, f"{f}.feat_fusion")
        attn = self.lconv(flat, f"{f}.spatial_attn1")
        attn = self.lconv(self.pools(attn), f"{f}.spatial_attn2")
        level = self.lconv(attn, f"{f}.spatial_attn_l1")
        level = self.lconv(self.pools(level), f"{f}.spatial_attn_l2")
        level = self.up2(self.lconv(level, f"{f}.spatial_attn_l3"))
        attn = g.add(self.lconv(attn, f"{f}.spatial_attn3"), level)
        attn = self.up2(self.lconv(attn, f"{f}.spatial_attn4"))
        attn = self.conv(attn, f"{f}.spatial_attn5")
        attn_add = self.conv(self.lconv(attn, f"{f}.spatial_attn_add1"), f"{f}.spatial_attn_add2")
        gated = g.scale(g.mul(feat, g.sigmoid(attn)), 2.0)
        return g.add(gated, attn_add)

    def restore(self, l1: list[str], center_image: str) -> str:
        """L1 features of the T window frames ([1,C,h,w] each) + the centre image -> output [1,3,sH,sW].

        The pyramid and PCD run frame by frame on shared weights rather than on a batch of T: the
        same compute with a T times smaller peak of intermediate tensors (and faster on CPU).
        """
        g, c = self.g, self.p.center
        levels = [[l1_t, *self.pyramid(l1_t)] for l1_t in l1]
        aligned = g.concat([self.pcd(levels[t], levels[c]) for t in range(self.p.num_frame)], axis=0)  # [T,C,h,w]
        if self.p.tsa:
            feat = self.tsa(aligned)
        else:
            feat = self.conv(g.op("Reshape", [aligned, self.i64([1, -1, 0, 0])], "aligned_flat"), "fusion")
        out = feat
        for i in range(self.p.reconstruct):
            out = self.res(out, f"reconstruction.{i}")
        out = g.leaky_relu(g.depth_to_space(self.conv(out, "upconv1"), 2), LRELU)
        out = g.leaky_relu(g.depth_to_space(self.conv(out, "upconv2"), 2), LRELU)
        out = self.conv(self.lconv(out, "conv_hr"), "conv_last")
        base = center_image if self.p.hr_in else g.resize(center_image, 4, "linear")
        return g.add(out, base)


def build(state: StateDict, *, deform: DeformMode = "native") -> onnx.ModelProto:
    """Monolithic EDVR: input [1, 3T, H, W] (frames t = 0..T-1 as channels) -> output [1, 3, sH, sW]."""
    b = _Builder(state, EDVRParams.from_state(state).name, deform)
    p, g = b.p, b.g
    x = g.input("input", 3 * p.num_frame)
    frames = g.op("Reshape", [x, b.i64([p.num_frame, 3, 0, 0])], "frames")  # [T,3,H,W]
    center = g.slice_channels(x, 3 * p.center, 3 * p.center + 3)
    l1 = b.level1(frames)  # feature extraction batched over the T frames
    per_frame = [g.op("Slice", [l1, b.i64([t]), b.i64([t + 1]), b.i64([0])], "l1_t") for t in range(p.num_frame)]
    g.output(b.restore(per_frame, center), "output", 3)
    return b.model(scale=p.scale, multiple=p.multiple, tiling=True, deform=deform, num_frame=p.num_frame)


def build_extractor(state: StateDict) -> onnx.ModelProto:
    """Per-frame part of the split: one frame [1,3,H,W] -> l1 [1,C,H,W]."""
    b = _Builder(state, EDVRParams.from_state(state).name + "_extract")
    _check_split(b.p)
    x = b.g.input("input", 3)
    b.g.output(b.level1(x), "l1", b.p.num_feat)
    return b.model(scale=1, multiple=1, tiling=True)


def build_aligner(state: StateDict, *, deform: DeformMode = "native") -> onnx.ModelProto:
    """Per-output-frame part of the split: l1_0 .. l1_{T-1} [1,C,H,W] and center [1,3,H,W] -> output."""
    b = _Builder(state, EDVRParams.from_state(state).name + "_align", deform)
    p, g = b.p, b.g
    _check_split(p)
    feats = [g.input(f"l1_{t}", p.num_feat) for t in range(p.num_frame)]
    center = g.input("center", 3)
    g.output(b.restore(feats, center), "output", 3)
    return b.model(scale=p.scale, multiple=p.multiple, tiling=True, deform=deform, num_frame=p.num_frame)


def _check_split(params: EDVRParams) -> None:
    if not params.splittable:
        raise ModelError("the split (cached per-frame features) is not available for hr_in EDVR models")


ARCH = Architecture("edvr", detect, build)
"""Registry entry: `build` is the monolithic graph with native DeformConv (see build/build_aligner)."""
