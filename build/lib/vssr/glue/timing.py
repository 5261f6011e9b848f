"""Exact frame-rate arithmetic for frame interpolation: Fractions only, no per-frame lists.

Output frame n is shown at time n / fps_out. In source-frame units that is
p = n / factor (factor = fps_out / fps_in), so it lies between source frames floor(p) and
floor(p) + 1 at fraction t = p - floor(p). Every output frame is computed from n alone (random
access: a previewer can ask for frame 10000 first) in O(1) time and memory.

End-of-clip policy: the output keeps the input's duration. It has floor(N x factor) frames for
N source frames; output frames whose time falls at or after the last source frame show that
frame (a held copy, never extrapolated). With multi=2 and N frames: 2N frames, the last one a
copy of source frame N-1 (as vs-mlrt and vs-rife do).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

__all__ = ["Position", "Retime", "rate_factor"]


@dataclass(frozen=True, slots=True)
class Position:
    """Where an output frame lies in the source: between `left` and `right` at time `t`."""

    left: int
    right: int
    t: Fraction
    """In [0, 1). 0 means the output frame is exactly source frame `left`."""

    @property
    def exact(self) -> bool:
        """True when no interpolation is needed (a source frame, or held at the end)."""
        return self.t == 0 or self.left == self.right

    @property
    def nearest(self) -> int:
        """The source frame closest in time (left on a tie)."""
        return self.right if self.t > Fraction(1, 2) else self.left


def rate_factor(
    *,
    multi: int | None = None,
    factor: Fraction | None = None,
    fps_in: Fraction | None = None,
    fps_out: Fraction | None = None,
) -> Fraction:
    """fps_out / fps_in from exactly one way of asking for it.

    Raises:
        ValueError: none or several given, non-positive values, or fps_out with an unknown fps_in.
    """
    given = [name for name, v in (("multi", multi), ("factor", factor), ("fps", fps_out)) if v is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of multi, factor_num/factor_den, fps_num/fps_den (got {given or 'none'})")
    if multi is not None:
        if isinstance(multi, bool) or not isinstance(multi, int) or multi < 1:
            raise ValueError(f"multi must be a positive int, not {multi!r}")
        return Fraction(multi)
    if factor is not None:
        if factor <= 0:
            raise ValueError(f"the factor must be positive, not {factor}")
        return Fraction(factor)
    assert fps_out is not None  # len(given) == 1
    if fps_out <= 0:
        raise ValueError(f"the target frame rate must be positive, not {fps_out}")
    if not fps_in:
        raise ValueError("the clip has no constant frame rate, so fps_num/fps_den cannot be used; use multi or factor")
    return Fraction(fps_out) / Fraction(fps_in)


@dataclass(frozen=True, slots=True)
class Retime:
    """A frame-rate change of `factor` applied to a clip of `src_frames` frames."""

    src_frames: int
    factor: Fraction

    def __post_init__(self) -> None:
        if self.src_frames < 1:
            raise ValueError("the clip must have at least one frame")
        if self.factor <= 0:
            raise ValueError(f"the factor must be positive, not {self.factor}")

    @property
    def num_frames(self) -> int:
        """floor(src_frames x factor), at least 1: the same duration as the source."""
        return max(1, (self.src_frames * self.factor.numerator) // self.factor.denominator)

    def fps(self, fps_in: Fraction) -> Fraction:
        """The output frame rate; 0 (variable) stays 0."""
        return Fraction(fps_in) * self.factor if fps_in else Fraction(0)

    def position(self, n: int) -> Position:
        """Source position of output frame n (0 <= n < num_frames)."""
        if not 0 <= n < self.num_frames:
            raise IndexError(f"output frame {n} is outside 0..{self.num_frames - 1}")
        num, den = self.factor.numerator, self.factor.denominator
        left, rem = divmod(n * den, num)  # p = n * den / num
        last = self.src_frames - 1
        if left >= last:
            return Position(last, last, Fraction(0))
        return Position(left, left + 1, Fraction(rem, num))

    # --- the frames that need a network run ---------------------------------------------------
    # Output n is at a source time iff n * den is a multiple of num, i.e. (den and num coprime) iff
    # n is a multiple of num. Frames from `held_from` on repeat the last source frame. The other
    # frames are numbered k = 0, 1, ... in order, so a filter can give only them to its workers.

    @property
    def held_from(self) -> int:
        """The first output frame at or after the last source frame's time."""
        last = self.src_frames - 1
        num, den = self.factor.numerator, self.factor.denominator
        return min(self.num_frames, -(-(last * num) // den))  # ceil(last * num / den)

    @property
    def interpolated_frames(self) -> int:
        """How many output frames lie strictly between two source frames."""
        held = self.held_from
        return held - -(-held // self.factor.numerator)  # minus the multiples of num below `held`

    def interpolated_index(self, n: int) -> int | None:
        """k for an interpolated output frame n; None for a frame at a source time or held."""
        num = self.factor.numerator
        if n % num == 0 or n >= self.held_from:
            return None
        return n - n // num - 1

    def interpolated_frame(self, k: int) -> int:
        """The output frame number of the k-th interpolated frame (inverse of interpolated_index)."""
        if not 0 <= k < self.interpolated_frames:
            raise IndexError(f"interpolated frame {k} is outside 0..{self.interpolated_frames - 1}")
        num = self.factor.numerator
        return k + k // (num - 1) + 1

    def timestamp(self, n: int, fps_in: Fraction) -> Fraction:
        """Presentation time of output frame n in seconds (needs a known input frame rate)."""
        if not fps_in:
            raise ValueError("the clip has no constant frame rate")
        return Fraction(n) / self.fps(fps_in)
