"""Pad to a network's size rule and crop back: pure numpy.

Padding goes on the right and bottom, mirrored (reflect) where the frame is large enough and
edge-replicated beyond that, so that borders look like picture content, not black bars.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import SizeReq

__all__ = ["PadPlan", "pad_array"]


def pad_array(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad an (..., H, W) array on the bottom/right to (height, width): reflect, then replicate."""
    h, w = array.shape[-2:]
    if (h, w) == (height, width):
        return array
    lead = [(0, 0)] * (array.ndim - 2)
    ph, pw = height - h, width - w
    rh, rw = min(ph, h - 1), min(pw, w - 1)
    out = np.pad(array, [*lead, (0, rh), (0, rw)], mode="reflect") if rh or rw else array
    if ph > rh or pw > rw:
        out = np.pad(out, [*lead, (0, ph - rh), (0, pw - rw)], mode="edge")
    return out


@dataclass(frozen=True, slots=True)
class PadPlan:
    """Frame size -> padded size for a SizeReq; computed once when the filter is created."""

    width: int
    height: int
    padded_width: int
    padded_height: int

    @classmethod
    def for_size(cls, width: int, height: int, size: SizeReq) -> PadPlan:
        return cls(width, height, size.padded(width), size.padded(height))

    @property
    def needed(self) -> bool:
        return (self.width, self.height) != (self.padded_width, self.padded_height)

    def pad(self, array: np.ndarray) -> np.ndarray:
        return pad_array(array, self.padded_height, self.padded_width)
