"""RIFE and EDVR under OpenVINO's bf16 precision hint vs the independent numpy references (fp64).

bf16 keeps 8 bits of mantissa, so a network's output moves by ~1e-2; the grid/flow arithmetic
(`Network.fp32_nodes`) is pinned to f32 by the OV backend, which keeps warps sub-pixel exact.
Tolerances: mean |diff| <= 1e-2 and max |diff| <= 1e-1 on outputs in [0, 1] (bf16's relative step
is 2^-8 = 3.9e-3 per op); f32 on the same path must stay within 1e-4.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.arch import edvr_numpy, ifnet_numpy
from vssr.arch import edvr, ifnet
from vssr.backends import Backend
from vssr.network import Network
from vssr.types import ShapeProfile

pytest.importorskip("openvino")


def run(model, feeds, precision):  # type: ignore[no-untyped-def]
    net = Network.load(model)
    h, w = next(v for v in feeds.values() if v.shape[-1] > 1).shape[2:]
    (runner,) = Backend.OV(precision=precision, num_streams=1, cache=False).load(net, ShapeProfile.static(w, h))
    return {k: np.array(v) for k, v in runner.infer(feeds).items()}


@pytest.mark.parametrize("precision", ["f32", "bf16"])
def test_rife_422_under_bf16(precision: str) -> None:
    version = ifnet.VERSIONS["4.22"]
    state = ifnet_numpy.random_state(version.channels, version.encoder, version.head, version.feat, 4)
    img0, img1 = ifnet_numpy.smooth_frames(64, 64, seed=1, shift=3.0)
    enc = ifnet.build_encoder(state, version)
    feeds = {"img0": img0[None], "img1": img1[None], "timestep": np.full((1, 1, 1, 1), 0.3, np.float32),
             "feat0": run(enc, {"img": img0[None]}, precision)["feat"],
             "feat1": run(enc, {"img": img1[None]}, precision)["feat"]}
    got = run(ifnet.build_flownet(state, version), feeds, precision)["output"][0]
    want = ifnet_numpy.ifnet(state, img0, img1, 0.3, scales=ifnet.flow_scales(version), encoder=True,
                             accumulate_mask=version.accumulate_mask)
    diff = np.abs(got - want)
    if precision == "f32":
        assert diff.max() <= 1e-4
    else:
        assert diff.mean() <= 1e-2 and diff.max() <= 1e-1, (diff.mean(), diff.max())


@pytest.mark.parametrize("precision", ["f32", "bf16"])
def test_edvr_decomposed_under_bf16(precision: str) -> None:
    state = edvr_numpy.random_state(num_feat=16, num_frame=5, seed=2)
    frames = np.random.default_rng(3).random((5, 3, 32, 32), dtype=np.float32)
    model = edvr.build(state, deform="decomposed")
    name = Network.load(model).inputs[0].name
    got = run(model, {name: frames.reshape(1, 15, 32, 32)}, precision)
    out = next(iter(got.values()))[0]
    want = edvr_numpy.edvr(state, frames)
    diff = np.abs(out - want)
    if precision == "f32":
        assert diff.max() <= 1e-4
    else:
        assert diff.mean() <= 1e-2 and diff.max() <= 1e-1, (diff.mean(), diff.max())
