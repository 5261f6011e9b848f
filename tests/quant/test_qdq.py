"""vssr.quant.quantize: QDQ structure (TensorRT-compatible zero points), int8 kernels on ORT, cache, accuracy."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from vssr import data, metrics
from vssr.arch import quicksrnet
from vssr.network import Network
from vssr.quant import qdq, quantize

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = data.path("quicksrnet", "small_x2.npz")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "models"))


def _net(seed: int = 0) -> Network:
    return Network.load(quicksrnet.build(quicksrnet.random_state("small", 2, seed=seed, features=8, layers=1)))


def _calib(n: int = 3, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((3, 24, 24), dtype=np.float32) for _ in range(n)]


def _session(net: Network) -> tuple[ort.InferenceSession, Counter[str]]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    with tempfile.TemporaryDirectory() as tmp:
        opts.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        sess = ort.InferenceSession(net.model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        ops = Counter(n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node)
    return sess, ops


def _initializer(model: onnx.ModelProto, name: str) -> np.ndarray:
    return next(numpy_helper.to_array(i) for i in model.graph.initializer if i.name == name)


@pytest.mark.parametrize("symmetric", [False, True])
def test_qdq_structure_and_int8_kernels(symmetric: bool) -> None:
    q = quantize(_net(), _calib(), method="minmax", symmetric=symmetric)
    model = q.model
    nodes = {n.name: n for n in model.graph.node}
    # the float tail stays float: the final clip and depth-to-space read dequantized data
    assert nodes["depth_to_space"].op_type == "DepthToSpace"
    producers = {o: n for n in model.graph.node for o in n.output}
    assert producers[nodes["final_clip"].input[0]].op_type == "DequantizeLinear"
    assert producers[nodes["depth_to_space"].input[0]].op_type == "Clip"
    # weights: per-channel symmetric int8
    for n in model.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0].endswith("weight_quantized"):
            assert _initializer(model, n.input[0]).dtype == np.int8
            assert _initializer(model, n.input[1]).ndim == 1  # one scale per output channel
            assert not _initializer(model, n.input[2]).any()
    # activations: symmetric -> int8 with zero point 0 (TensorRT); else uint8
    act_zps = [_initializer(model, n.input[2]) for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert act_zps
    for zp in act_zps:
        assert zp.dtype == (np.int8 if symmetric else np.uint8)
        if symmetric:
            assert not zp.any()
    sess, ops = _session(q)
    assert ops["QLinearConv"] == 3  # every conv runs on ORT's int8 kernels
    if not symmetric:
        assert ops["Clip"] == 1  # ReLU1s folded into the uint8 ranges; only the float final clip is left
    x = _calib(1, seed=5)[0][None]
    y = sess.run(None, {"input": x})[0]
    assert y.shape == (1, 3, 48, 48) and y.min() >= 0.0 and y.max() <= 1.0


def test_cache_key_and_reuse(monkeypatch: pytest.MonkeyPatch) -> None:
    net, data = _net(), _calib()
    a = quantize(net, data, method="minmax")
    calls = []
    original = qdq._quantize_model
    monkeypatch.setattr(qdq, "_quantize_model", lambda *args: calls.append(args))
    b = quantize(net, [d.copy() for d in data], method="minmax")  # same model, data, settings: cached
    assert not calls and b.digest == a.digest and b.name == "quicksrnet_f8-m1_x2_int8"
    files = list((Path(qdq.models_dir()) / "int8").glob("*.onnx"))
    assert len(files) == 1
    monkeypatch.setattr(qdq, "_quantize_model", original)
    c = quantize(net, _calib(seed=1), method="minmax")  # other data: another file
    d = quantize(net, data, method="percentile")  # other settings: another file
    assert len({a.digest, c.digest, d.digest}) == 3
    assert len(list((Path(qdq.models_dir()) / "int8").glob("*.onnx"))) == 3


def test_quantize_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        quantize(_net(), _calib(), method="kl")
    with pytest.raises(ValueError, match="needs calibration data"):
        quantize(_net(), None)
    with pytest.raises(ValueError, match="calibration must be"):
        quantize(_net(), 42)
    naive = quantize(_net(), None, method="naive")  # no data needed: fixed [-1, 1] ranges
    scales = [_initializer(naive.model, n.input[1]) for n in naive.model.graph.node if n.op_type == "QuantizeLinear"]
    np.testing.assert_allclose(scales, 2.0 / 255.0, rtol=1e-6)


def test_shipped_model_int8_accuracy(shared_data: Path) -> None:
    """The int8 path against the fp32 path on held-out Set5 (disjoint from the T91 calibration images).

    fp32: small_x2.npz. int8: small_x2_qat.npz (quantization-aware fine-tuned) where shipped, as
    vssr.QuickSRNet(int8=...) picks it, calibrated with minmax on 16 T91 crops. Bound: 0.15 dB
    (the issue's target).
    """
    if not SHIPPED.is_file():
        pytest.skip("vssr/data/quicksrnet/small_x2.npz is not present")
    qat = SHIPPED.with_name("small_x2_qat.npz")
    net = Network.load(quicksrnet.build(dict(np.load(SHIPPED))))
    net8 = Network.load(quicksrnet.build(dict(np.load(qat if qat.is_file() else SHIPPED))))
    q = quantize(net8, shared_data / "sr-train" / "T91", frames=16, crop=128, method="minmax")
    images = metrics.load_sr_set(shared_data / "sr-bench" / "Set5", 2)

    def upscaler(n: Network):  # type: ignore[no-untyped-def]
        sess = _session(n)[0]
        return lambda lr: sess.run(None, {"input": lr.transpose(2, 0, 1)[None].astype(np.float32) / 255})[0][
            0
        ].transpose(1, 2, 0)

    fp32 = metrics.score_sr_set(upscaler(net), images, 2)[0]
    int8 = metrics.score_sr_set(upscaler(q), images, 2)[0]
    assert fp32 - int8 < 0.15
