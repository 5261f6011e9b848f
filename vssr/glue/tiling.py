"""Tiles with overlap and seamless stitching: pure numpy.

Along each axis, tiles of equal size start at multiples of the network's size multiple and advance
by at most `tile - 2 * overlap`; the last tile is clamped to the frame edge, so every tile has one
shape (one static engine serves them all). Neighbouring tiles are cut at the middle of their
overlap, so each kept pixel has at least `overlap` pixels of real context on every interior side:
when the network's receptive-field radius is <= overlap, the stitched result equals the untiled one
exactly (no blending needed, no seams).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["Span", "TilePlan", "axis_spans"]


@dataclass(frozen=True, slots=True)
class Span:
    """One tile along one axis: input [start, start + size), kept output [keep_start, keep_end)."""

    start: int
    size: int
    keep_start: int
    keep_end: int


def ceil_to(value: int, multiple: int) -> int:
    """`value` rounded up to a multiple of `multiple`."""
    return -(-value // multiple) * multiple


def axis_spans(total: int, tile: int, overlap: int, multiple: int = 1) -> tuple[Span, ...]:
    """Tiles covering [0, total) (total is already a multiple of `multiple`)."""
    if tile >= total:
        return (Span(0, total, 0, total),)
    tile = tile // multiple * multiple
    margin = ceil_to(overlap, multiple)
    step = (tile - 2 * margin) // multiple * multiple
    if step <= 0:
        raise ValueError(f"tile {tile} leaves no room after an overlap of {overlap} on both sides")
    starts = [*range(0, total - tile, step), total - tile]
    cuts = [0]
    for a, b in itertools.pairwise(starts):
        lo, hi = b + margin, a + tile - margin  # both multiples of `multiple`; lo <= hi
        cuts.append((lo + hi) // 2 // multiple * multiple if hi > lo else lo)
    cuts.append(total)
    return tuple(Span(s, tile, cuts[i], cuts[i + 1]) for i, s in enumerate(starts))


@dataclass(frozen=True, slots=True)
class TilePlan:
    """Tiles of a padded frame; `scale` maps input positions to output positions."""

    xs: tuple[Span, ...]
    ys: tuple[Span, ...]

    @classmethod
    def for_frame(
        cls, width: int, height: int, tile: tuple[int, int], overlap: tuple[int, int], multiple: int
    ) -> TilePlan:
        return cls(
            axis_spans(width, tile[0], overlap[0], multiple),
            axis_spans(height, tile[1], overlap[1], multiple),
        )

    @property
    def tile_size(self) -> tuple[int, int]:
        """(width, height) of every tile."""
        return self.xs[0].size, self.ys[0].size

    @property
    def single(self) -> bool:
        return len(self.xs) == 1 and len(self.ys) == 1

    def __iter__(self) -> Iterator[tuple[Span, Span]]:
        for y in self.ys:
            for x in self.xs:
                yield x, y


def scaled(value: int, scale: Fraction) -> int:
    out = value * scale
    if out.denominator != 1:
        raise ValueError(f"position {value} x scale {scale} is not an integer")
    return int(out)
