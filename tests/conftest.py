"""Shared fixtures: a VapourSynth core, ../shared data (skipped when absent), the gpu marker."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture
def core():  # type: ignore[no-untyped-def]
    import vapoursynth as vs

    return vs.core


@pytest.fixture(scope="session")
def shared_data() -> Path:
    data = SHARED / "data"
    if not data.is_dir():
        pytest.skip("../shared/data is not present")
    return data


def _why_no_gpu() -> str | None:
    """None when CUDA sees a GPU, else why not (with cuda-python's advice about the driver)."""
    try:
        from vssr.backends import cuda

        rt = cuda.import_cudart()
    except Exception as err:
        return f"cuda-python is not usable: {err}"
    count, error = cuda.device_count(rt)
    if count > 0:
        return None
    advice = cuda.driver_advice(rt) if error == "cudaErrorInsufficientDriver" else ""
    return f"no usable NVIDIA GPU (cudaGetDeviceCount: {error}{'; ' + advice if advice else ''})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any("gpu" in item.keywords for item in items):
        return
    reason = _why_no_gpu()
    if reason is None:
        return
    if config.getoption("markexpr", "").strip() == "gpu":  # asked for them alone: a pass would mislead
        raise pytest.UsageError(f"-m gpu asks for the GPU tests, but this machine has {reason}")
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
