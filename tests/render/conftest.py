"""Fixtures of the render tests: a tiny BT.601 clip with sound, tiny random-weight models."""

from __future__ import annotations

import shutil
from collections import OrderedDict
from pathlib import Path

import onnx
import pytest

from tests import nets
from tests.render.helpers import make_clip


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    return make_clip(tmp_path_factory.mktemp("clip") / "src.mkv")


@pytest.fixture(scope="session")
def sr_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2x upscaler (conv3x3 + PixelShuffle) as an ONNX file, for RealESRGAN(model=...)."""
    path = tmp_path_factory.mktemp("nets") / "shuffle_x2.onnx"
    onnx.save(nets.pixel_shuffle_x2(), path)
    return path


@pytest.fixture(scope="session")
def rife_pkl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.filters.test_rife import pkl

    return pkl(tmp_path_factory.mktemp("rife"), "4.22")


@pytest.fixture(scope="session")
def edvr_pth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.arch import edvr_numpy
    from tests.weights.torchsave import Tensor, save_zip

    state = edvr_numpy.random_state(num_feat=8, groups=8, seed=11)
    return save_zip({"params": OrderedDict((k, Tensor.of(v)) for k, v in state.items())},
                    tmp_path_factory.mktemp("edvr") / "edvr_tiny.pth")
