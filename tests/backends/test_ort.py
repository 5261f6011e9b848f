"""ONNX Runtime backend: the shared runner check, explicit threads, int8 QDQ.

References: onnx.reference (check_runner) and numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests import nets
from tests.backends.qdq_net import SIZE, is_qdq, qdq_conv
from vssr.backends import Backend
from vssr.backends.base import cpu_count
from vssr.errors import BackendError
from vssr.network import Network, set_metadata
from vssr.types import ShapeProfile

PROFILE = ShapeProfile.static(24, 24)
TINY = nets.SINGLE_INPUT


@pytest.mark.parametrize("name", TINY)
def test_runner_matches_reference(name: str) -> None:
    model = TINY[name]()
    runners = Backend.ORT(num_streams=2).load(Network.load(model), PROFILE)
    assert len(runners) == 2
    for runner in runners:
        nets.check_runner(runner, model)


def test_two_inputs() -> None:
    (runner,) = Backend.ORT(num_streams=1).load(Network.load(nets.two_input()), PROFILE)
    x = np.random.default_rng(0).random((1, 3, 10, 14), dtype=np.float32)
    out = runner.infer({"input": x, "gain": np.full((1, 1, 1, 1), 0.5, np.float32)})["output"]
    np.testing.assert_allclose(out, x * 0.5, rtol=1e-6)


@pytest.mark.parametrize("streams", [1, 2, 3, 8])
def test_threads_times_streams_never_exceed_cores(streams: int) -> None:
    config = Backend.ORT(num_streams=streams)
    assert config.intra_op_threads >= 1
    if streams <= cpu_count():
        assert config.intra_op_threads * streams <= cpu_count()
    options = config.session_options()
    assert options.intra_op_num_threads == config.intra_op_threads
    assert options.inter_op_num_threads == 1


def test_explicit_threads_are_kept() -> None:
    config = Backend.ORT(num_streams=2, threads=3)
    assert config.session_options().intra_op_num_threads == 3


@pytest.mark.parametrize("kwargs", [{"num_streams": 0}, {"threads": 0}, {"providers": ("Vulkan",)}, {"providers": ()}])
def test_invalid_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
        Backend.ORT(**kwargs)


def test_unloadable_model_is_a_backend_error() -> None:
    net = Network.load(nets.conv3x3())
    broken = net.model.__class__()
    broken.CopyFrom(net.model)
    broken.graph.node[0].op_type = "NoSuchOp"
    set_metadata(broken, scale=1)  # Network.load then needs no shape inference
    with pytest.raises(BackendError, match="onnxruntime cannot load"):
        Backend.ORT().load(Network.load(broken), PROFILE)


def test_runners_from_threads() -> None:
    model = nets.conv3x3(layers=2)
    nets.check_runners_from_threads(Backend.ORT(num_streams=2).load(Network.load(model), PROFILE), model)


def test_qdq_int8_model_runs(tmp_path: Path) -> None:
    float_model, qdq_model = qdq_conv(tmp_path)
    assert is_qdq(qdq_model)
    x = np.random.default_rng(5).random((1, 3, SIZE, SIZE), dtype=np.float32)
    (full,) = Backend.ORT(num_streams=1).load(Network.load(float_model), ShapeProfile.static(SIZE, SIZE))
    (runner,) = Backend.ORT(num_streams=1).load(Network.load(qdq_model), ShapeProfile.static(SIZE, SIZE))
    want = full.infer({"input": x})["output"].copy()
    got = runner.infer({"input": x})["output"]
    step = float(np.ptp(want)) / 255  # one uint8 step of the output range
    assert np.abs(got - want).mean() < 2 * step
    assert np.abs(got - want).max() < 12 * step
