"""An independent numpy EDVR (BasicSR semantics) for parity tests: slow, simple, batch 1.

Written from the BasicSR forward pass description: conv2d by im2col, modulated deformable conv by
explicit bilinear sampling (zero outside the image), LeakyReLU 0.1, TSA with count_include_pad
average pooling, bilinear x2/x4 with align_corners=False, PixelShuffle.
"""

from __future__ import annotations

import numpy as np

State = dict[str, np.ndarray]


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int = 1, pad: int | None = None) -> np.ndarray:
    """x [C,H,W], w [O,C,kh,kw] -> [O,H',W'] (zero padding)."""
    c, h, wd = x.shape
    o, _, kh, kw = w.shape
    p = kh // 2 if pad is None else pad
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    ho = (h + 2 * p - kh) // stride + 1
    wo = (wd + 2 * p - kw) // stride + 1
    cols = np.empty((c, kh, kw, ho, wo), np.float64)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xp[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
    y = w.reshape(o, -1).astype(np.float64) @ cols.reshape(c * kh * kw, -1)
    if b is not None:
        y += b.astype(np.float64)[:, None]
    return y.reshape(o, ho, wo)


def bilinear_sample(x: np.ndarray, py: np.ndarray, px: np.ndarray) -> np.ndarray:
    """x [C,H,W] at float positions py, px (same shape S): [C,*S]; corners outside read 0."""
    c, h, w = x.shape
    y0, x0 = np.floor(py).astype(np.int64), np.floor(px).astype(np.int64)
    out = np.zeros((c, *py.shape), np.float64)
    for dy in (0, 1):
        for dx in (0, 1):
            yy, xx = y0 + dy, x0 + dx
            wgt = (1 - np.abs(py - yy)) * (1 - np.abs(px - xx))
            ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            vals = x[:, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]
            out += vals * (wgt * ok)[None]
    return out


def modulated_deform_conv(x: np.ndarray, offset: np.ndarray, mask: np.ndarray, w: np.ndarray,
                          b: np.ndarray) -> np.ndarray:
    """torchvision deform_conv2d semantics, 3x3, stride 1, pad 1; offset [2GK,H,W], mask [GK,H,W]."""
    c, h, wd = x.shape
    o = w.shape[0]
    groups = mask.shape[0] // 9
    cg = c // groups
    gy, gx = np.meshgrid(np.arange(h), np.arange(wd), indexing="ij")
    cols = np.empty((c, 9, h, wd), np.float64)
    for g in range(groups):
        for k in range(9):
            i, j = divmod(k, 3)
            py = gy + i - 1 + offset[2 * (g * 9 + k)]
            px = gx + j - 1 + offset[2 * (g * 9 + k) + 1]
            cols[g * cg:(g + 1) * cg, k] = bilinear_sample(x[g * cg:(g + 1) * cg], py, px) * mask[g * 9 + k]
    y = w.reshape(o, -1).astype(np.float64) @ cols.reshape(c * 9, -1) + b.astype(np.float64)[:, None]
    return y.reshape(o, h, wd)


def dcn_pack(state: State, prefix: str, x: np.ndarray, feat: np.ndarray) -> np.ndarray:
    out = conv2d(feat, state[f"{prefix}.conv_offset.weight"], state[f"{prefix}.conv_offset.bias"])
    n = out.shape[0] // 3
    offset, mask = out[:2 * n], 1 / (1 + np.exp(-out[2 * n:]))
    return modulated_deform_conv(x, offset, mask, state[f"{prefix}.weight"], state[f"{prefix}.bias"])


def lrelu(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x, 0.1 * x)


def upsample(x: np.ndarray, factor: int) -> np.ndarray:
    """torch bilinear, align_corners=False, on [C,H,W]."""
    def axis_weights(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.maximum((np.arange(n * factor) + 0.5) / factor - 0.5, 0)
        i0 = np.floor(src).astype(np.int64)
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, src - i0
    _, h, w = x.shape
    y0, y1, ly = axis_weights(h)
    x0, x1, lx = axis_weights(w)
    rows = x[:, y0] * (1 - ly)[None, :, None] + x[:, y1] * ly[None, :, None]
    return rows[:, :, x0] * (1 - lx) + rows[:, :, x1] * lx


def pixel_shuffle(x: np.ndarray, r: int) -> np.ndarray:
    c, h, w = x.shape
    return x.reshape(c // (r * r), r, r, h, w).transpose(0, 3, 1, 4, 2).reshape(c // (r * r), h * r, w * r)


def pool(x: np.ndarray, kind: str) -> np.ndarray:
    """3x3, stride 2, pad 1; max ignores the padding, average divides by 9 (count_include_pad)."""
    _c, h, w = x.shape
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=fill)
    ho, wo = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    win = np.stack([xp[:, i:i + 2 * ho - 1:2, j:j + 2 * wo - 1:2] for i in range(3) for j in range(3)])
    return win.max(0) if kind == "max" else win.sum(0) / 9


def conv(state: State, key: str, x: np.ndarray, stride: int = 1) -> np.ndarray:
    return conv2d(x, state[f"{key}.weight"], state[f"{key}.bias"], stride)


def resblock(state: State, key: str, x: np.ndarray) -> np.ndarray:
    return x + conv(state, f"{key}.conv2", np.maximum(conv(state, f"{key}.conv1", x), 0))


def predeblur(state: State, x: np.ndarray, hr_in: bool) -> np.ndarray:
    p = "predeblur"
    l1 = lrelu(conv(state, f"{p}.conv_first", x))
    if hr_in:
        l1 = lrelu(conv(state, f"{p}.stride_conv_hr1", l1, 2))
        l1 = lrelu(conv(state, f"{p}.stride_conv_hr2", l1, 2))
    l2 = lrelu(conv(state, f"{p}.stride_conv_l2", l1, 2))
    l3 = lrelu(conv(state, f"{p}.stride_conv_l3", l2, 2))
    l3 = upsample(resblock(state, f"{p}.resblock_l3", l3), 2)
    l2 = resblock(state, f"{p}.resblock_l2_1", l2) + l3
    l2 = upsample(resblock(state, f"{p}.resblock_l2_2", l2), 2)
    for i in range(2):
        l1 = resblock(state, f"{p}.resblock_l1.{i}", l1)
    l1 = l1 + l2
    for i in range(2, 5):
        l1 = resblock(state, f"{p}.resblock_l1.{i}", l1)
    return l1


def features(state: State, x: np.ndarray) -> list[np.ndarray]:
    """One frame [3,H,W] -> [l1, l2, l3]."""
    if "predeblur.conv_first.weight" in state:
        l1 = conv(state, "conv_1x1", predeblur(state, x, "predeblur.stride_conv_hr1.weight" in state))
    else:
        l1 = lrelu(conv(state, "conv_first", x))
    i = 0
    while f"feature_extraction.{i}.conv1.weight" in state:
        l1 = resblock(state, f"feature_extraction.{i}", l1)
        i += 1
    l2 = lrelu(conv(state, "conv_l2_2", lrelu(conv(state, "conv_l2_1", l1, 2))))
    l3 = lrelu(conv(state, "conv_l3_2", lrelu(conv(state, "conv_l3_1", l2, 2))))
    return [l1, l2, l3]


def pcd(state: State, nbr: list[np.ndarray], ref: list[np.ndarray]) -> np.ndarray:
    p = "pcd_align"
    up_off = up_feat = None
    feat = None
    for i in (3, 2, 1):
        lv = f"l{i}"
        off = lrelu(conv(state, f"{p}.offset_conv1.{lv}", np.concatenate([nbr[i - 1], ref[i - 1]])))
        if i == 3:
            off = lrelu(conv(state, f"{p}.offset_conv2.{lv}", off))
        else:
            off = lrelu(conv(state, f"{p}.offset_conv2.{lv}", np.concatenate([off, up_off])))
            off = lrelu(conv(state, f"{p}.offset_conv3.{lv}", off))
        feat = dcn_pack(state, f"{p}.dcn_pack.{lv}", nbr[i - 1], off)
        if i < 3:
            feat = conv(state, f"{p}.feat_conv.{lv}", np.concatenate([feat, up_feat]))
        if i > 1:
            feat = lrelu(feat)
            up_off = upsample(off, 2) * 2
            up_feat = upsample(feat, 2)
    off = lrelu(conv(state, f"{p}.cas_offset_conv1", np.concatenate([feat, ref[0]])))
    off = lrelu(conv(state, f"{p}.cas_offset_conv2", off))
    return lrelu(dcn_pack(state, f"{p}.cas_dcnpack", feat, off))


def tsa(state: State, aligned: np.ndarray, center: int) -> np.ndarray:
    """aligned [T,C,H,W] -> [C,H,W]."""
    f = "fusion"
    t, c, h, w = aligned.shape
    emb_ref = conv(state, f"{f}.temporal_attn1", aligned[center])
    emb = np.stack([conv(state, f"{f}.temporal_attn2", a) for a in aligned])
    prob = 1 / (1 + np.exp(-(emb * emb_ref[None]).sum(1)))  # [T,H,W]
    flat = (aligned * prob[:, None]).reshape(t * c, h, w)
    feat = lrelu(conv(state, f"{f}.feat_fusion", flat))
    attn = lrelu(conv(state, f"{f}.spatial_attn1", flat))
    attn = lrelu(conv(state, f"{f}.spatial_attn2", np.concatenate([pool(attn, "max"), pool(attn, "avg")])))
    lvl = lrelu(conv(state, f"{f}.spatial_attn_l1", attn))
    lvl = lrelu(conv(state, f"{f}.spatial_attn_l2", np.concatenate([pool(lvl, "max"), pool(lvl, "avg")])))
    lvl = upsample(lrelu(conv(state, f"{f}.spatial_attn_l3", lvl)), 2)
    attn = lrelu(conv(state, f"{f}.spatial_attn3", attn)) + lvl
    attn = upsample(lrelu(conv(state, f"{f}.spatial_attn4", attn)), 2)
    attn = conv(state, f"{f}.spatial_attn5", attn)
    add = conv(state, f"{f}.spatial_attn_add2", lrelu(conv(state, f"{f}.spatial_attn_add1", attn)))
    return feat * (1 / (1 + np.exp(-attn))) * 2 + add


def edvr(state: State, frames: np.ndarray) -> np.ndarray:
    """frames [T,3,H,W] (float) -> the centre frame restored [3,H',W'] (float64)."""
    t = frames.shape[0]
    center = t // 2
    feats = [features(state, f.astype(np.float64)) for f in frames]
    aligned = np.stack([pcd(state, feats[i], feats[center]) for i in range(t)])
    if "fusion.weight" in state:
        feat = conv(state, "fusion", aligned.reshape(-1, *aligned.shape[2:]))
    else:
        feat = tsa(state, aligned, center)
    i = 0
    out = feat
    while f"reconstruction.{i}.conv1.weight" in state:
        out = resblock(state, f"reconstruction.{i}", out)
        i += 1
    out = lrelu(pixel_shuffle(conv(state, "upconv1", out), 2))
    out = lrelu(pixel_shuffle(conv(state, "upconv2", out), 2))
    out = conv(state, "conv_last", lrelu(conv(state, "conv_hr", out)))
    x_center = frames[center].astype(np.float64)
    hr_in = "predeblur.stride_conv_hr1.weight" in state
    return out + (x_center if hr_in else upsample(x_center, 4))


def random_state(num_feat: int = 16, num_frame: int = 5, groups: int = 8, extract: int = 1, reconstruct: int = 1,
                 predeblur: bool = False, hr_in: bool = False, tsa: bool = True, seed: int = 0,
                 offset_scale: float = 4.0) -> State:
    """Random weights with BasicSR's EDVR key layout and shapes."""
    rng = np.random.default_rng(seed)
    c = num_feat
    state: State = {}

    def add(key: str, o: int, i: int, k: int = 3, gain: float = 1.0) -> None:
        state[f"{key}.weight"] = (rng.normal(0, gain / np.sqrt(i * k * k), (o, i, k, k))).astype(np.float32)
        state[f"{key}.bias"] = rng.normal(0, 0.05, o).astype(np.float32)

    def res(key: str) -> None:
        add(f"{key}.conv1", c, c)
        add(f"{key}.conv2", c, c, gain=0.5)

    def dcn(key: str) -> None:
        add(key, c, c)
        add(f"{key}.conv_offset", 3 * groups * 9, c, gain=offset_scale)

    if predeblur:
        add("predeblur.conv_first", c, 3)
        if hr_in:
            add("predeblur.stride_conv_hr1", c, c)
            add("predeblur.stride_conv_hr2", c, c)
        add("predeblur.stride_conv_l2", c, c)
        add("predeblur.stride_conv_l3", c, c)
        for name in ("resblock_l3", "resblock_l2_1", "resblock_l2_2", *(f"resblock_l1.{i}" for i in range(5))):
            res(f"predeblur.{name}")
        add("conv_1x1", c, c, 1)
    else:
        add("conv_first", c, 3)
    for i in range(extract):
        res(f"feature_extraction.{i}")
    for name in ("conv_l2_1", "conv_l2_2", "conv_l3_1", "conv_l3_2"):
        add(name, c, c)
    p = "pcd_align"
    for lv in ("l3", "l2", "l1"):
        add(f"{p}.offset_conv1.{lv}", c, 2 * c)
        add(f"{p}.offset_conv2.{lv}", c, c if lv == "l3" else 2 * c)
        if lv != "l3":
            add(f"{p}.offset_conv3.{lv}", c, c)
            add(f"{p}.feat_conv.{lv}", c, 2 * c)
        dcn(f"{p}.dcn_pack.{lv}")
    add(f"{p}.cas_offset_conv1", c, 2 * c)
    add(f"{p}.cas_offset_conv2", c, c)
    dcn(f"{p}.cas_dcnpack")
    t = num_frame
    if tsa:
        f = "fusion"
        add(f"{f}.temporal_attn1", c, c)
        add(f"{f}.temporal_attn2", c, c)
        add(f"{f}.feat_fusion", c, t * c, 1)
        add(f"{f}.spatial_attn1", c, t * c, 1)
        add(f"{f}.spatial_attn2", c, 2 * c, 1)
        add(f"{f}.spatial_attn3", c, c)
        add(f"{f}.spatial_attn4", c, c, 1)
        add(f"{f}.spatial_attn5", c, c)
        add(f"{f}.spatial_attn_l1", c, c, 1)
        add(f"{f}.spatial_attn_l2", c, 2 * c)
        add(f"{f}.spatial_attn_l3", c, c)
        add(f"{f}.spatial_attn_add1", c, c, 1)
        add(f"{f}.spatial_attn_add2", c, c, 1)
    else:
        add("fusion", c, t * c, 1)
    for i in range(reconstruct):
        res(f"reconstruction.{i}")
    add("upconv1", 4 * c, c)
    add("upconv2", 256, c)
    add("conv_hr", 64, 64)
    add("conv_last", 3, 64, gain=2.0)
    return state
