"""Seeded RIFE weights and frames, made identically by the reference generator and by the tests.

`tests/data/make_rife_refs.py` (torch, run by hand in a throwaway environment) reads each vs-rife
IFNet's parameter list, fills it with `seeded_state`, runs vs-rife's code and stores the parameter
list and the outputs; the tests rebuild the same weights from the same list and seed without torch.
Numpy only and Python 3.11-compatible (the generator's interpreter), no vssr import.

Every value comes from `Generator.random` (uniform doubles from PCG64, stable across numpy
versions), seeded by (seed, crc32 of the key), so weights do not depend on key order. Scales are
small: the flows of random networks stay within a few pixels, so warps sample real picture content
rather than the clamped border, and the 4.0/4.1 "flow > 32 px" restart is not taken (except in the
cases made for it, with a larger `lastconv_gain`).
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np

__all__ = ["FRAME_SEED", "REFS", "WEIGHT_SEED", "frames", "load_refs", "seeded_state", "spec_from_shapes"]

WEIGHT_SEED = 2026
FRAME_SEED = 7

# (key, shape, kind): kind is conv | deconv | bias | beta | prelu (what the generator read from torch)
Spec = list[tuple[str, tuple[int, ...], str]]  # a plain alias: the generator runs Python 3.11


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], half_width: float, centre: float = 0.0) -> np.ndarray:
    return (centre + (rng.random(shape) * 2.0 - 1.0) * half_width).astype(np.float32)


def seeded_state(spec: Spec, seed: int = WEIGHT_SEED, lastconv_gain: float = 0.25) -> dict[str, np.ndarray]:
    """A state dict for the parameter list `spec`: He-like uniform weights, small biases; the blocks'
    last layer scaled by `lastconv_gain` (0.25: flows of a few pixels)."""
    state = {}
    for key, shape, kind in spec:
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        if kind == "beta":
            state[key] = _uniform(rng, shape, 0.1, 1.0)
        elif kind == "prelu":
            state[key] = _uniform(rng, shape, 0.05, 0.25)
        elif kind == "bias":
            state[key] = _uniform(rng, shape, 0.02)
        else:
            k = shape[2] * shape[3]
            # Conv2d is (out, in, k, k); ConvTranspose2d (in, out, k, k) with stride 2 sums in*k*k/4 terms
            fan_in = shape[1] * k if kind == "conv" else shape[0] * k / 4
            gain = lastconv_gain if key.startswith("block") and "lastconv" in key else 1.0
            state[key] = _uniform(rng, shape, gain * math.sqrt(3.0 / fan_in))
    return state


def frames(width: int, height: int, seed: int = FRAME_SEED, shift: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Two [3,H,W] float32 frames: a smooth pattern and the same moved by `shift` px right and
    half that down; values on a 1/255 grid (robust to libm), a few out-of-range pixels in the
    second frame's top-left corner (the IFNet clamps them, v4.7-v4.13-lite encoders do not)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    freqs = rng.random((3, 2)) * 0.25 + 0.05
    phases = rng.random(3) * 6.28

    def frame(dx: float) -> np.ndarray:
        planes = [0.5 + 0.4 * np.sin(fx * (x - dx) + fy * (y - dx / 2) + ph) for (fx, fy), ph in zip(freqs, phases, strict=True)]
        return (np.round(np.stack(planes) * 255.0) / 255.0).astype(np.float32)

    first, second = frame(0.0), frame(shift)
    second[:, :2, :2] = np.array([1.25, -0.25, 1.5], np.float32)[:, None, None]
    return first, second


_DECONVS = ("encode.1.weight", "encode.6.weight", "encode.cnn3.weight")
REFS = Path(__file__).resolve().parents[1] / "data" / "rife_refs.npz"


def spec_from_shapes(shapes: dict[str, tuple[int, ...]]) -> Spec:
    """The generator's parameter list for a key -> shape table (vssr's `ifnet.expected_shapes`)."""
    spec = []
    for key, shape in shapes.items():
        if key.endswith(".bias"):
            kind = "bias"
        elif key.endswith(".beta"):
            kind = "beta"
        elif len(shape) == 1:
            kind = "prelu"
        elif "lastconv" in key or key in _DECONVS:
            kind = "deconv"
        else:
            kind = "conv"
        spec.append((key, tuple(shape), kind))
    return spec


def load_refs() -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, outputs) of tests/data/rife_refs.npz; outputs as float32 in [0, 1]."""
    import json

    with np.load(REFS) as data:
        meta = json.loads(str(data["meta"]))
        outputs = {k: data[k].astype(np.float32) / 65535.0 for k in data.files if k != "meta"}
    for group in meta["groups"]:
        group["spec"] = [(k, tuple(s), kind) for k, s, kind in group["spec"]]
    return meta, outputs
