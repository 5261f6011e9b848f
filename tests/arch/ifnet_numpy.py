"""An independent numpy RIFE IFNet (v4.6 / v4.2x Practical-RIFE semantics) for parity tests.

Written from the PyTorch forward pass (vs-rife `IFNet_HDv3_v4_*.py`), op by op, in float64, batch 1:
Conv2d by im2col, ConvTranspose2d by scatter-add, PixelShuffle, F.interpolate(bilinear,
align_corners=False, scale_factor=...), and the warp as `grid_sample(bilinear, border,
align_corners=True)` over `linspace(-1, 1)` base grids plus flow / ((size-1)/2). The ResConv
beta is applied as a multiply (the ONNX builder folds it into the conv); the timestep is a full
plane. It knows nothing of ONNX.
"""

from __future__ import annotations

import numpy as np

State = dict[str, np.ndarray]


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 1) -> np.ndarray:
    """x [C,H,W], w [O,C,k,k] -> [O,H',W'] with zero padding."""
    c, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho = (h + 2 * pad - k) // stride + 1
    wo = (wd + 2 * pad - k) // stride + 1
    cols = np.empty((c, k, k, ho, wo))
    for i in range(k):
        for j in range(k):
            cols[:, i, j] = xp[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
    y = w.reshape(o, -1).astype(np.float64) @ cols.reshape(c * k * k, -1)
    return (y + b.astype(np.float64)[:, None]).reshape(o, ho, wo)


def conv_transpose2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 2, pad: int = 1) -> np.ndarray:
    """x [C,H,W], w [C,O,k,k] (PyTorch layout) -> [O,(H-1)s-2p+k, ...]."""
    _, h, wd = x.shape
    _, o, k, _ = w.shape
    full = np.zeros((o, (h - 1) * stride + k, (wd - 1) * stride + k))
    for i in range(k):
        for j in range(k):
            contrib = np.tensordot(w[:, :, i, j].astype(np.float64), x, axes=([0], [0]))  # [O,H,W]
            full[:, i:i + (h - 1) * stride + 1:stride, j:j + (wd - 1) * stride + 1:stride] += contrib
    ho, wo = (h - 1) * stride - 2 * pad + k, (wd - 1) * stride - 2 * pad + k
    return full[:, pad:pad + ho, pad:pad + wo] + b.astype(np.float64)[:, None, None]


def leaky(x: np.ndarray, slope: float = 0.2) -> np.ndarray:
    return np.where(x >= 0, x, x * slope)


def pixel_shuffle(x: np.ndarray, r: int) -> np.ndarray:
    c, h, w = x.shape
    oc = c // (r * r)
    return x.reshape(oc, r, r, h, w).transpose(0, 3, 1, 4, 2).reshape(oc, h * r, w * r)


def _axis_weights(n_in: int, factor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyTorch bilinear, align_corners=False, scale_factor given: src = max((dst+.5)/f - .5, 0)."""
    n_out = int(np.floor(n_in * factor))
    src = np.maximum((np.arange(n_out) + 0.5) * (1.0 / factor) - 0.5, 0.0)
    i0 = np.floor(src).astype(int)
    i0 = np.minimum(i0, n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - i0


def interpolate(x: np.ndarray, factor: float) -> np.ndarray:
    """F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False), x [C,H,W]."""
    if factor == 1:
        return x
    i0, i1, l = _axis_weights(x.shape[1], factor)
    x = x[:, i0, :] * (1 - l)[None, :, None] + x[:, i1, :] * l[None, :, None]
    j0, j1, m = _axis_weights(x.shape[2], factor)
    return x[:, :, j0] * (1 - m)[None, None, :] + x[:, :, j1] * m[None, None, :]


def grid_sample(img: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """F.grid_sample(img [C,H,W], grid [H,W,2] (x, y in [-1,1]), bilinear, border, align_corners=True)."""
    _, h, w = img.shape
    ix = np.clip((grid[..., 0] + 1) / 2 * (w - 1), 0, w - 1)
    iy = np.clip((grid[..., 1] + 1) / 2 * (h - 1), 0, h - 1)
    x0 = np.floor(ix).astype(int)
    y0 = np.floor(iy).astype(int)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    wx, wy = ix - x0, iy - y0
    return (img[:, y0, x0] * (1 - wx) * (1 - wy) + img[:, y0, x1] * wx * (1 - wy)
            + img[:, y1, x0] * (1 - wx) * wy + img[:, y1, x1] * wx * wy)


def warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """vs-rife warplayer: base grid (linspace -1..1) + flow / ((size-1)/2)."""
    _, h, w = img.shape
    gx = np.linspace(-1.0, 1.0, w)[None, :] + flow[0] / ((w - 1) / 2.0)
    gy = np.linspace(-1.0, 1.0, h)[:, None] + flow[1] / ((h - 1) / 2.0)
    return grid_sample(img, np.stack([gx, gy], axis=-1))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def encode(state: State, img: np.ndarray) -> np.ndarray:
    """Head: cnn0 (s2), cnn1, cnn2 with LeakyReLU, cnn3 ConvTranspose x2."""
    x = np.clip(img, 0.0, 1.0)
    for j in range(3):
        x = leaky(conv2d(x, state[f"encode.cnn{j}.weight"], state[f"encode.cnn{j}.bias"], stride=2 if j == 0 else 1))
    return conv_transpose2d(x, state["encode.cnn3.weight"], state["encode.cnn3.bias"])


def ifblock(state: State, i: int, x: np.ndarray, flow: np.ndarray | None, scale: float, feat_ch: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = f"block{i}"
    x = interpolate(x, 1.0 / scale)
    if flow is not None:
        x = np.concatenate([x, interpolate(flow, 1.0 / scale) / scale])
    for j in range(2):
        x = leaky(conv2d(x, state[f"{p}.conv0.{j}.0.weight"], state[f"{p}.conv0.{j}.0.bias"], stride=2))
    for j in range(8):
        y = conv2d(x, state[f"{p}.convblock.{j}.conv.weight"], state[f"{p}.convblock.{j}.conv.bias"])
        x = leaky(y * state[f"{p}.convblock.{j}.beta"].reshape(-1, 1, 1) + x)
    tmp = pixel_shuffle(conv_transpose2d(x, state[f"{p}.lastconv.0.weight"], state[f"{p}.lastconv.0.bias"]), 2)
    tmp = interpolate(tmp, scale)
    return tmp[:4] * scale, tmp[4:5], tmp[5:5 + feat_ch]


def ifnet(state: State, img0: np.ndarray, img1: np.ndarray, t: float, *, scales: tuple[float, ...],
          encoder: bool, accumulate_mask: bool, ensemble: bool = False,
          feats: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The interpolated frame at time t between img0 and img1 ([3,H,W] each)."""
    img0, img1 = np.clip(img0, 0, 1).astype(np.float64), np.clip(img1, 0, 1).astype(np.float64)
    h, w = img0.shape[1:]
    plane = np.full((1, h, w), t)
    if encoder:
        f0, f1 = feats if feats is not None else (encode(state, img0), encode(state, img1))
        feat_ch = 8
    else:
        f0 = f1 = np.zeros((0, h, w))
        feat_ch = 0
    swap = lambda f: np.concatenate([f[2:4], f[0:2]])
    flow = mask = feat = None
    w0, w1 = img0, img1
    for i, s in enumerate(scales):
        if flow is None:
            flow, mask, feat = ifblock(state, i, np.concatenate([img0, img1, f0, f1, plane]), None, s, feat_ch)
            if ensemble:
                fr, mr, _ = ifblock(state, i, np.concatenate([img1, img0, 1 - plane]), None, s, feat_ch)
                flow = (flow + swap(fr)) / 2
                mask = (mask - mr) / 2
        else:
            wf0, wf1 = warp(f0, flow[:2]), warp(f1, flow[2:4])
            x = np.concatenate([w0, w1, wf0, wf1, plane, mask, feat])
            fd, m0, feat = ifblock(state, i, x, flow, s, feat_ch)
            if ensemble:
                fr, mr, _ = ifblock(state, i, np.concatenate([w1, w0, 1 - plane, -mask]), swap(flow), s, feat_ch)
                fd = (fd + swap(fr)) / 2
                m0 = (m0 - mr) / 2
            flow = flow + fd
            mask = mask + m0 if accumulate_mask else m0
        w0, w1 = warp(img0, flow[:2]), warp(img1, flow[2:4])
    m = sigmoid(mask)
    return w0 * m + w1 * (1 - m)


def random_state(channels: tuple[int, ...], encoder: tuple[int, int] | None, head: int, feat: int,
                 seed: int = 0) -> State:
    """Random weights under the official key names (without the `module.` prefix)."""
    rng = np.random.default_rng(seed)
    enc = encoder[1] if encoder else 0

    def conv(o: int, i: int, k: int, gain: float = 1.0) -> np.ndarray:
        return (rng.standard_normal((o, i, k, k)) * gain / np.sqrt(i * k * k)).astype(np.float32)

    def bias(n: int) -> np.ndarray:
        return (rng.standard_normal(n) * 0.02).astype(np.float32)

    state: State = {}
    for b, c in enumerate(channels):
        in_planes = 7 + 2 * enc if b == 0 else 8 + 2 * enc + feat + 4
        p = f"block{b}"
        state[f"{p}.conv0.0.0.weight"], state[f"{p}.conv0.0.0.bias"] = conv(c // 2, in_planes, 3), bias(c // 2)
        state[f"{p}.conv0.1.0.weight"], state[f"{p}.conv0.1.0.bias"] = conv(c, c // 2, 3), bias(c)
        for j in range(8):
            state[f"{p}.convblock.{j}.conv.weight"] = conv(c, c, 3, 0.5)
            state[f"{p}.convblock.{j}.conv.bias"] = bias(c)
            state[f"{p}.convblock.{j}.beta"] = rng.uniform(0.5, 1.5, (1, c, 1, 1)).astype(np.float32)
        state[f"{p}.lastconv.0.weight"] = (rng.standard_normal((c, 4 * head, 4, 4)) * 0.5 / np.sqrt(c * 4)).astype(np.float32)
        state[f"{p}.lastconv.0.bias"] = bias(4 * head)
    if encoder:
        hid, out = encoder
        for j, (o, i) in enumerate([(hid, 3), (hid, hid), (hid, hid)]):
            state[f"encode.cnn{j}.weight"], state[f"encode.cnn{j}.bias"] = conv(o, i, 3), bias(o)
        state["encode.cnn3.weight"] = (rng.standard_normal((hid, out, 4, 4)) / np.sqrt(hid * 4)).astype(np.float32)
        state["encode.cnn3.bias"] = bias(out)
    return state


def smooth_frames(h: int, w: int, seed: int = 0, shift: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Two [3,H,W] float32 frames in [0,1]: a smooth random pattern, and the same moved by `shift` px."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    freqs = rng.uniform(0.05, 0.3, (3, 2))
    phases = rng.uniform(0, 6.28, 3)

    def frame(dx: float) -> np.ndarray:
        return np.stack([0.5 + 0.4 * np.sin(fx * (x - dx) + fy * y + ph) for (fx, fy), ph in zip(freqs, phases, strict=True)])

    return frame(0).astype(np.float32), frame(shift).astype(np.float32)
