"""Frame-rate arithmetic: counts, fps, timestamps, positions; checked against a float-free brute force."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vssr.glue.timing import Position, Retime, rate_factor


def brute_position(n: int, src_frames: int, fps_in: Fraction, fps_out: Fraction) -> tuple[int, int, Fraction]:
    """From timestamps: output time n/fps_out against source times k/fps_in."""
    time = Fraction(n) / fps_out
    left = max(k for k in range(src_frames) if Fraction(k) / fps_in <= time)
    if left == src_frames - 1:
        return left, left, Fraction(0)
    return left, left + 1, (time - Fraction(left) / fps_in) * fps_in


@pytest.mark.parametrize("multi", [2, 3, 4])
def test_integer_multi(multi: int) -> None:
    r = Retime(10, rate_factor(multi=multi))
    assert r.num_frames == 10 * multi
    assert r.fps(Fraction(24000, 1001)) == Fraction(24000 * multi, 1001)
    for k in range(10):
        assert r.position(k * multi) == Position(k, min(k + 1, 9), Fraction(0))
    for i in range(1, multi):
        assert r.position(3 * multi + i) == Position(3, 4, Fraction(i, multi))
    # end of clip: the frames after the last source frame hold it
    for n in range(9 * multi, 10 * multi):
        p = r.position(n)
        assert (p.left, p.right, p.exact) == (9, 9, True)


def test_factor_5_2() -> None:
    r = Retime(8, rate_factor(factor=Fraction(5, 2)))
    assert r.num_frames == 20
    ts = [r.position(n) for n in range(5)]
    assert [(p.left, p.right, p.t) for p in ts] == [
        (0, 1, Fraction(0)), (0, 1, Fraction(2, 5)), (0, 1, Fraction(4, 5)), (1, 2, Fraction(1, 5)), (1, 2, Fraction(3, 5))
    ]
    assert r.position(5) == Position(2, 3, Fraction(0))


def test_ntsc_film_to_60000_1001() -> None:
    fps_in, fps_out = Fraction(24000, 1001), Fraction(60000, 1001)
    factor = rate_factor(fps_in=fps_in, fps_out=fps_out)
    assert factor == Fraction(5, 2)
    r = Retime(48, factor)
    assert r.num_frames == 120 and r.fps(fps_in) == fps_out
    assert r.timestamp(0, fps_in) == 0
    assert r.timestamp(119, fps_in) == Fraction(119 * 1001, 60000)
    # the output keeps the source duration exactly
    assert Fraction(r.num_frames) / r.fps(fps_in) == Fraction(48) / fps_in
    for n in range(r.num_frames):
        p = r.position(n)
        assert (p.left, p.right, p.t) == brute_position(n, 48, fps_in, fps_out)


@given(
    src=st.integers(1, 40),
    num=st.integers(1, 9),
    den=st.integers(1, 9),
    fps_num=st.integers(1, 60000),
    fps_den=st.integers(1, 1001),
)
def test_matches_timestamp_brute_force(src: int, num: int, den: int, fps_num: int, fps_den: int) -> None:
    fps_in = Fraction(fps_num, fps_den)
    r = Retime(src, Fraction(num, den))
    assert r.num_frames == max(1, src * num // den)
    for n in range(r.num_frames):
        p = r.position(n)
        assert (p.left, p.right, p.t) == brute_position(n, src, fps_in, r.fps(fps_in))
        assert 0 <= p.t < 1


def test_nearest_and_errors() -> None:
    assert Position(3, 4, Fraction(1, 2)).nearest == 3
    assert Position(3, 4, Fraction(3, 5)).nearest == 4
    r = Retime(5, Fraction(2))
    with pytest.raises(IndexError):
        r.position(10)
    with pytest.raises(ValueError, match="exactly one"):
        rate_factor(multi=2, factor=Fraction(3))
    with pytest.raises(ValueError, match="exactly one"):
        rate_factor()
    with pytest.raises(ValueError, match="multi"):
        rate_factor(multi=0)
    with pytest.raises(ValueError, match="no constant frame rate"):
        rate_factor(fps_in=Fraction(0), fps_out=Fraction(60))
    assert Retime(5, Fraction(2)).fps(Fraction(0)) == 0


@given(src=st.integers(1, 30), num=st.integers(1, 9), den=st.integers(1, 9))
def test_interpolated_numbering_is_a_bijection(src: int, num: int, den: int) -> None:
    r = Retime(src, Fraction(num, den))
    needing = [n for n in range(r.num_frames) if not r.position(n).exact]
    assert r.interpolated_frames == len(needing)
    assert [r.interpolated_frame(k) for k in range(len(needing))] == needing
    for n in range(r.num_frames):
        k = r.interpolated_index(n)
        assert (k is None) == r.position(n).exact
        if k is not None:
            assert r.interpolated_frame(k) == n
