"""Independent float64 numpy references for the Real-ESRGAN architectures (PyTorch semantics)."""

from __future__ import annotations

import numpy as np


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """torch.nn.functional.conv2d, stride 1, zero padding k//2; x (N,C,H,W), w (O,C,k,k)."""
    k = w.shape[2]
    p = k // 2
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (p, p), (p, p)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))  # N,C,H,W,k,k
    y = np.einsum("nchwij,ocij->nohw", win, w.astype(np.float64), optimize=True)
    return y if b is None else y + b.astype(np.float64)[None, :, None, None]


def prelu(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x, x * slope[None, :, None, None])


def lrelu(x: np.ndarray, a: float = 0.2) -> np.ndarray:
    return np.where(x >= 0, x, a * x)


def pixel_shuffle(x: np.ndarray, r: int) -> np.ndarray:
    n, c, h, w = x.shape
    return x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, c // (r * r), h * r, w * r)


def pixel_unshuffle(x: np.ndarray, r: int) -> np.ndarray:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4).reshape(n, c * r * r, h // r, w // r)


def nearest(x: np.ndarray, r: int) -> np.ndarray:
    return x.repeat(r, axis=2).repeat(r, axis=3)


def srvgg(state: dict[str, np.ndarray], x: np.ndarray, scale: int) -> np.ndarray:
    last = max(int(k.split(".")[1]) for k in state)
    y = x.astype(np.float64)
    for i in range(0, last, 2):
        y = prelu(conv2d(y, state[f"body.{i}.weight"], state[f"body.{i}.bias"]), state[f"body.{i + 1}.weight"])
    y = conv2d(y, state[f"body.{last}.weight"], state[f"body.{last}.bias"])
    return pixel_shuffle(y, scale) + nearest(x.astype(np.float64), scale)


def rrdbnet(state: dict[str, np.ndarray], x: np.ndarray, scale: int, num_block: int) -> np.ndarray:
    def conv(t: np.ndarray, key: str) -> np.ndarray:
        return conv2d(t, state[f"{key}.weight"], state[f"{key}.bias"])

    def rdb(t: np.ndarray, prefix: str) -> np.ndarray:
        feats = [t]
        for k in range(1, 5):
            feats.append(lrelu(conv(np.concatenate(feats, axis=1), f"{prefix}.conv{k}")))
        return conv(np.concatenate(feats, axis=1), f"{prefix}.conv5") * 0.2 + t

    feat = x.astype(np.float64)
    if scale in (1, 2):
        feat = pixel_unshuffle(feat, 4 // scale)
    feat = conv(feat, "conv_first")
    body = feat
    for b in range(num_block):
        body = rdb(rdb(rdb(body, f"body.{b}.rdb1"), f"body.{b}.rdb2"), f"body.{b}.rdb3") * 0.2 + body
    feat = feat + conv(body, "conv_body")
    feat = lrelu(conv(nearest(feat, 2), "conv_up1"))
    feat = lrelu(conv(nearest(feat, 2), "conv_up2"))
    return conv(lrelu(conv(feat, "conv_hr")), "conv_last")
