"""Tiling and padding: tiled output equals untiled output exactly when overlap >= receptive field."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import nets
from vssr.backends import Backend
from vssr.glue.checks import VssrError
from vssr.glue.padding import pad_array
from vssr.glue.tiling import axis_spans
from vssr.inference import Session
from vssr.network import Network


@given(
    total=st.integers(1, 300), tile=st.integers(1, 200), overlap=st.integers(0, 20), multiple=st.sampled_from([1, 2, 4])
)
def test_spans_cover_the_axis_once_with_context(total: int, tile: int, overlap: int, multiple: int) -> None:
    total = -(-total // multiple) * multiple
    tile = max(multiple, tile // multiple * multiple)
    if tile < total and tile <= 2 * (-(-overlap // multiple) * multiple):
        with pytest.raises(ValueError):
            axis_spans(total, tile, overlap, multiple)
        return
    spans = axis_spans(total, tile, overlap, multiple)
    covered = np.zeros(total, int)
    for s in spans:
        assert s.size == spans[0].size  # one tile shape: one static engine
        assert s.start % multiple == 0 and s.keep_start % multiple == 0
        assert s.start <= s.keep_start <= s.keep_end <= s.start + s.size
        covered[s.keep_start : s.keep_end] += 1
        # at least `overlap` pixels of real context on interior sides
        if s.keep_start > 0:
            assert s.keep_start - s.start >= overlap
        if s.keep_end < total:
            assert s.start + s.size - s.keep_end >= overlap
    assert (covered == 1).all()


def test_pad_reflects_then_replicates() -> None:
    a = np.arange(3, dtype=np.float32).reshape(1, 1, 1, 3)
    np.testing.assert_array_equal(pad_array(a, 1, 7)[0, 0, 0], [0, 1, 2, 1, 0, 0, 0])
    b = np.arange(4, dtype=np.float32).reshape(1, 1, 4, 1)
    np.testing.assert_array_equal(pad_array(b, 6, 1)[0, 0, :, 0], [0, 1, 2, 3, 2, 1])


_NETS = {
    "conv_rf2": (lambda c: nets.conv3x3(c, layers=2), 2),
    "shuffle_x2": (lambda c: nets.pixel_shuffle_x2(c), 1),
    "strided_m2": (lambda c: nets.strided_x1(c), 1),
}


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(sorted(_NETS)),
    channels=st.sampled_from([1, 3]),
    width=st.integers(5, 61),
    height=st.integers(5, 47),
    tile=st.integers(8, 40),
    extra=st.integers(0, 3),
    fp16=st.booleans(),
)
def test_tiled_equals_untiled(name: str, channels: int, width: int, height: int, tile: int, extra: int, fp16: bool) -> None:
    build, radius = _NETS[name]
    network = Network.load(build(channels))
    overlap = radius + extra + network.size.multiple  # context also covers the stride alignment
    dtype = np.float16 if fp16 else np.float32
    m = network.size.multiple
    margin = -(-overlap // m) * m  # the overlap kept on each side of a tile, on the stride grid
    if tile // m * m <= 2 * margin:  # Session floors the tile to the multiple; too small is a user error
        tile = 2 * margin + 2 * m
    backend = Backend.ORT(threads=1)
    whole = Session.create(network, backend, width=width, height=height, dtype=dtype)
    tiled = Session.create(network, backend, width=width, height=height, tilesize=tile, overlap=overlap, dtype=dtype)
    x = np.random.default_rng(width * height).random((1, channels, height, width), dtype=np.float32).astype(dtype)
    a = whole.run({"input": x})["output"]
    b = tiled.run({"input": x})["output"]
    s = network.scale
    assert a.shape == b.shape == (1, channels, int(height * s), int(width * s))
    assert a.dtype == b.dtype == dtype
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("tile", "overlap", "said"), [(9, 4, "4"), (8, 4, "4"), (9, 3, "4 on the stride-2 grid")])
def test_tile_without_room_after_the_overlap_is_a_user_error(tile: int, overlap: int, said: str) -> None:
    """strided_x1 works on a stride-2 grid: a 9 tile is an 8 tile, and an overlap of 3 keeps 4 each side."""
    network = Network.load(nets.strided_x1(1))
    with pytest.raises(VssrError, match=rf"tilesize height 8 must be larger than twice the overlap \({said}\)"):
        Session.create(network, Backend.ORT(threads=1), width=5, height=9, tilesize=tile, overlap=overlap)


def test_scale_read_from_graph() -> None:
    assert Network.load(nets.pixel_shuffle_x2()).scale == 2
    assert Network.load(nets.conv3x3()).scale == 1
    assert Network.load(nets.strided_x1()).size.multiple == 2
    assert Fraction(1) == Network.load(nets.identity()).scale
