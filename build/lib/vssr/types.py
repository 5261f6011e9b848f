"""Shared aliases and small frozen dataclasses used across the layers (no vapoursynth here)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = ["ShapeProfile", "SizeReq", "StateDict", "TensorSpec", "Tensors"]

type StateDict = dict[str, np.ndarray]
"""Canonical (PyTorch) key -> float32 array."""

type Tensors = dict[str, np.ndarray]
"""Input/output name -> NCHW array, C-contiguous."""


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Name, element type and shape of one graph input or output."""

    name: str
    dtype: np.dtype
    """float32 or float16."""
    shape: tuple[int | None, ...]
    """None marks a dynamic dimension."""

    @property
    def channels(self) -> int | None:
        return self.shape[1] if len(self.shape) == 4 else None

    @property
    def is_image(self) -> bool:
        """A 4-D NCHW tensor whose spatial size follows the frame (padded and tiled)."""
        return len(self.shape) == 4 and not (self.shape[2] == 1 and self.shape[3] == 1)


@dataclass(frozen=True, slots=True)
class SizeReq:
    """What spatial sizes a network accepts."""

    multiple: int = 1
    """H and W are padded up to a multiple of this."""
    minimum: int = 0
    """H and W are padded up to at least this."""

    def padded(self, size: int) -> int:
        size = max(size, self.minimum)
        return -(-size // self.multiple) * self.multiple


@dataclass(frozen=True, slots=True)
class ShapeProfile:
    """Spatial input sizes a built artifact must serve, each (width, height).

    Static when min == opt == max. The TensorRT backend builds exactly this; runtimes with
    dynamic shapes ignore it.
    """

    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]

    @classmethod
    def static(cls, width: int, height: int) -> ShapeProfile:
        return cls((width, height), (width, height), (width, height))

    @property
    def is_static(self) -> bool:
        return self.min == self.opt == self.max

    def covers(self, width: int, height: int) -> bool:
        return (self.min[0] <= width <= self.max[0]) and (self.min[1] <= height <= self.max[1])


def as_fraction(value: float | Fraction) -> Fraction:
    return value if isinstance(value, Fraction) else Fraction(value).limit_denominator(1000)
