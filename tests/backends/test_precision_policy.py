"""The precision policy's mechanism: which networks are precision-sensitive, and what Session does.

A precision-sensitive network (`Network.precision_sensitive`, from the graph's `vssr.precision_sensitive`
metadata) computes in fp32 when the backend config leaves the precision to the backend
(`BackendConfig.with_fp32_default`); a precision the user gave is kept. The outputs themselves are
checked in tests/filters/test_default_precision.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests import nets
from tests.arch import edvr_numpy, ifnet_numpy
from tests.arch.test_compact import random_state as compact_state
from tests.arch.test_rrdb import random_state as rrdb_state
from vssr.arch import compact, edvr, ifnet, quicksrnet, rrdb
from vssr.backends import Backend
from vssr.inference import Session
from vssr.network import Network, set_metadata


def test_networks_that_are_precision_sensitive() -> None:
    v = ifnet.VERSIONS["4.22"]
    rife = ifnet_numpy.random_state(v.channels, v.encoder, v.head, v.feat)
    state = edvr_numpy.random_state(num_feat=8)
    sensitive = [ifnet.build_flownet(rife, v), ifnet.build_encoder(rife, v), edvr.build(state),
                 edvr.build_extractor(state), edvr.build_aligner(state)]
    qsr = {k: np.asarray(a) for k, a in np.load(quicksrnet_weights()).items()}
    sensitive += [quicksrnet.build(qsr), rrdb.build(rrdb_state(3, 8, 4, 1, 4))]
    assert all(Network.load(m).precision_sensitive for m in sensitive)
    assert not Network.load(compact.build(compact_state(3, 8, 2, 4))).precision_sensitive
    assert not Network.load(nets.conv3x3()).precision_sensitive


def quicksrnet_weights():  # type: ignore[no-untyped-def]
    from vssr.filters.quicksrnet import shipped_weights

    return next(iter(shipped_weights().values()))


def test_with_fp32_default_keeps_what_the_user_set() -> None:
    assert Backend.ORT().with_fp32_default() == Backend.ORT()
    ov = pytest.importorskip("vssr.backends.ov")
    assert ov.OV().with_fp32_default() == ov.OV(precision="f32")
    for asked in (ov.OV(precision="bf16"), ov.OV(precision="f16"), ov.OV(fp16=True), ov.OV(fp16=False)):
        assert asked.with_fp32_default() == asked


def test_with_fp32_default_on_tensorrt() -> None:
    try:
        rtx = Backend.TRT_RTX()
    except ImportError:
        pytest.skip("tensorrt_rtx is not installed")
    assert rtx.with_fp32_default().fp16 is False  # not "follow the clip": RGBH keeps fp16 I/O only
    for asked in (Backend.TRT_RTX(fp16=True), Backend.TRT_RTX(bf16=True), Backend.TRT_RTX(fp16=False)):
        assert asked.with_fp32_default() == asked


def test_session_resolves_the_default_for_sensitive_networks() -> None:
    ov = pytest.importorskip("vssr.backends.ov")
    if not ov.available():
        pytest.skip("OpenVINO is not importable")
    model = nets.conv3x3()
    plain = Session.create(Network.load(model), ov.OV(num_streams=1, cache=False), width=16, height=16)
    assert plain.backend.precision is None  # the backend's own default (bf16 on BF16 CPUs)
    set_metadata(model, precision_sensitive=True)
    sensitive = Network.load(model)
    exact = Session.create(sensitive, ov.OV(num_streams=1, cache=False), width=16, height=16)
    assert exact.backend.precision == "f32"
    asked = Session.create(sensitive, ov.OV(num_streams=1, cache=False, precision="bf16"), width=16, height=16)
    assert asked.backend.precision == "bf16"
