"""Real serialized engines built with tensorrt_rtx on the CPU (no GPU needed to build).

These catch what no mock can: ops the ONNX parser refuses, shape profiles it rejects, fp16 graphs
it cannot type. Deserializing and running needs a GPU: see test_trt_runtime.py (mocks) and the
`gpu` tests at the end (skipped without a GPU).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import pytest

from tests import nets
from vssr.backends.trt import TRT_RTX
from vssr.backends.trt.build import network_from_onnx
from vssr.backends.trt.plan import BuildPlan
from vssr.errors import BackendError
from vssr.network import Network
from vssr.types import ShapeProfile

trt = pytest.importorskip("tensorrt_rtx")

TINY: dict[str, Callable[[], onnx.ModelProto]] = {
    "identity": nets.identity,
    "conv3x3": lambda: nets.conv3x3(layers=2),
    "pixel_shuffle_x2": nets.pixel_shuffle_x2,
    "strided_x1": nets.strided_x1,
    "two_input": nets.two_input,
}


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("static", [True, False], ids=["static", "dynamic"])
@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_nets_build(name: str, static: bool, precision: str, tmp_path: Path) -> None:
    network = Network.load(TINY[name]())
    config = TRT_RTX(
        engine_folder=str(tmp_path),
        fp16=precision == "fp16",
        bf16=precision == "bf16",
        static_shape=static,
        max_shapes=None if static else (128, 96),
    )
    path = config.build_engine(network, ShapeProfile.static(64, 48))
    info = json.loads(path.with_name(path.name + ".json").read_text())
    assert path.stat().st_size == info["bytes"] > 1000
    assert info["precision"] == f"{precision}-in32-out32"
    assert info["shape"] == ("64x48" if static else "64x48-64x48-128x96")
    mtime = path.stat().st_mtime_ns
    assert config.build_engine(network, ShapeProfile.static(64, 48)) == path  # found, not rebuilt
    assert path.stat().st_mtime_ns >= mtime and len(list(tmp_path.glob("*.engine"))) == 1


@pytest.mark.parametrize("out", ["float16", "float32"])
def test_fp16_io_follows_the_clip_and_output_is_chosen(out: str, tmp_path: Path) -> None:
    """RGBH in -> fp16 input tensor; output as asked (fp16 in / fp32 out is the TRT 11 case vs-mlrt broke)."""
    network = Network.load(nets.conv3x3())
    config = TRT_RTX(engine_folder=str(tmp_path), output_dtype=out)
    plan = BuildPlan.make(config, network, ShapeProfile.static(32, 32), io_dtype=np.dtype(np.float16))
    assert plan.compute == "fp16"  # fp16 compute follows fp16 input unless fp16=False
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    parsed, _parser = network_from_onnx(trt, builder, plan.model_bytes)
    assert parsed.get_input(0).dtype == trt.float16
    assert parsed.get_output(0).dtype == (trt.float16 if out == "float16" else trt.float32)
    path = config.build_engine(network, ShapeProfile.static(32, 32), io_dtype=np.dtype(np.float16))
    assert path.name.startswith(f"conv3x3x1.32x32.fp16-in16-out{out[-2:]}.")


def test_parser_error_names_the_failing_node() -> None:
    model = nets.conv3x3()
    node = onnx.helper.make_node("NoSuchOp", ["output"], ["weird"], name="the_bad_node", domain="vssr.test")
    model.graph.node.append(node)
    model.graph.output[0].name = "weird"
    model.opset_import.append(onnx.helper.make_opsetid("vssr.test", 1))
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    with pytest.raises(BackendError, match=r"node the_bad_node \(NoSuchOp\)"):
        network_from_onnx(trt, builder, model.SerializeToString())


def test_progress_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="vssr.backends.trt.build"):
        TRT_RTX(engine_folder=str(tmp_path)).build_engine(Network.load(nets.conv3x3()), ShapeProfile.static(32, 32))
    phases = [r.getMessage() for r in caplog.records if r.getMessage().startswith("TensorRT build:")]
    assert any("Building engine" in p for p in phases), phases


# --- strongly typed on every TensorRT; precision read back from the built engine --------------
_TENSOR = re.compile(rb'tensor=\{[^\n]*?name="([^"]+)"[^\n]*?type=(\w+)')
_CONV = re.compile(rb'corrltn=\{ name="([^"]+)" output=\{([^}]*)\} input=\{([^}]*)\}')


def engine_convolutions(data: bytes) -> dict[str, tuple[str, str, str]]:
    """Convolution layer (ONNX node name) -> (data, weight, output) element types, read from the
    layer information a serialized TensorRT-RTX engine carries (its compiled graph lists every
    tensor with its type and every convolution with its operands). The engine inspector needs a
    GPU to deserialize; this needs only the bytes the CPU built."""
    types = {name.decode(): kind.decode() for name, kind in _TENSOR.findall(data)}
    layers = {}
    for name, outputs, inputs in _CONV.findall(data):
        ins = [n.decode() for n in re.findall(rb'"([^"]+)"', inputs)]
        out = re.findall(rb'"([^"]+)"', outputs)[0].decode()
        layers[name.decode()] = (types[ins[0]], types[ins[1]], types[out])
    return layers


class _AsTensorRT10:
    """The real tensorrt_rtx module as TensorRT 10 looks to vssr: precision builder flags exist
    (FP16, BF16, INT8, OBEY_PRECISION_CONSTRAINTS). Records the network flags and config flags used."""

    def __init__(self) -> None:
        self.network_flags: list[int] = []
        self.config_flags: list[object] = []
        names = {n: getattr(trt.BuilderFlag, n) for n in dir(trt.BuilderFlag) if n.isupper()}
        self.BuilderFlag = SimpleNamespace(**names, FP16="FP16", BF16="BF16", INT8="INT8",
                                           OBEY_PRECISION_CONSTRAINTS="OBEY_PRECISION_CONSTRAINTS")
        self.__version__ = "10.13.0"
        self.__name__ = "tensorrt"

    def __getattr__(self, name: str) -> Any:
        return getattr(trt, name)

    def Builder(self, logger: Any) -> Any:  # TensorRT's name
        real, recorder = trt.Builder(logger), self

        class Config:
            def __init__(self, config: Any) -> None:
                object.__setattr__(self, "real", config)

            def __getattr__(self, name: str) -> Any:
                return getattr(self.real, name)

            def __setattr__(self, name: str, value: Any) -> None:
                setattr(self.real, name, value)

            def set_flag(self, flag: Any) -> None:
                recorder.config_flags.append(flag)
                if not isinstance(flag, str):
                    self.real.set_flag(flag)

        class Builder:
            logger = real.logger

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            def create_network(self, flags: int) -> Any:
                recorder.network_flags.append(flags)
                return real.create_network(flags)

            def create_builder_config(self) -> Any:
                return Config(real.create_builder_config())

            def build_serialized_network(self, network: Any, config: Any) -> Any:
                return real.build_serialized_network(network, config.real)

        return Builder()


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_tensorrt_10_builds_strongly_typed_without_precision_flags(precision: str, tmp_path: Path) -> None:
    """TensorRT 10 has FP16/BF16 builder flags; vssr uses none of them (nor OBEY_PRECISION_CONSTRAINTS
    or per-layer pins): the network is strongly typed and the precision is the lowered ONNX's.
    Weak typing is deprecated since 10.12; with OBEY a pinned layer lacking an fp32 kernel failed the build."""
    from vssr.backends.trt.build import build_engine_bytes

    tensorrt10 = _AsTensorRT10()
    settings = TRT_RTX(fp16=precision == "fp16", bf16=precision == "bf16")
    plan = BuildPlan.make(settings, Network.load(nets.conv3x3(layers=2)), ShapeProfile.static(32, 32))
    data = build_engine_bytes(tensorrt10, settings, plan, None, tmp_path)
    strongly_typed = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert tensorrt10.network_flags == [strongly_typed]
    assert not {"FP16", "BF16", "INT8", "OBEY_PRECISION_CONSTRAINTS"} & set(map(str, tensorrt10.config_flags))
    low = {"fp16": "half", "bf16": "bf16"}[precision]
    assert set(engine_convolutions(data).values()) == {(low, low, low)}


def test_int8_quicksrnet_builds_strongly_typed_in_int8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A symmetric int8 QDQ QuickSRNet (vssr's quantizer, as QuickSRNet(int8=..., int8_symmetric=True)
    writes it) built strongly typed: every convolution of the engine reads int8 data and int8
    weights, with no INT8 flag (the Q/DQ nodes type the graph); fp16 elsewhere when asked."""
    from vssr.arch import quicksrnet
    from vssr.quant.qdq import quantize_arrays

    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "models"))
    network = Network.load(quicksrnet.build(quicksrnet.random_state("small", 2)), name="quicksrnet")
    rng = np.random.default_rng(0)
    int8 = quantize_arrays(network, [rng.random((3, 32, 32), dtype=np.float32) for _ in range(2)],
                           method="minmax", symmetric=True)
    for fp16 in (False, True):
        path = TRT_RTX(engine_folder=str(tmp_path), fp16=fp16).build_engine(int8, ShapeProfile.static(32, 32))
        convolutions = engine_convolutions(path.read_bytes())
        assert len(convolutions) == sum(n.op_type == "Conv" for n in network.model.graph.node)
        assert {(data, weight) for data, weight, _ in convolutions.values()} == {("int8", "int8")}, convolutions


def _builder_config(settings: TRT_RTX) -> Any:
    from vssr.backends.trt.build import config_from_settings

    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    return builder, config_from_settings(trt, builder, settings)


def test_tf32_is_off_unless_asked() -> None:
    """TensorRT turns TF32 on by default: an "fp32" engine would compute with 10-bit mantissas."""
    assert not _builder_config(TRT_RTX())[1].get_flag(trt.BuilderFlag.TF32)
    assert _builder_config(TRT_RTX(tf32=True))[1].get_flag(trt.BuilderFlag.TF32)


@pytest.mark.parametrize(("capability", "target"), [((7, 5), "SM75"), ((8, 9), "SM89"), ((13, 0), "CURRENT")])
def test_rtx_engines_target_the_gpu_present(capability: tuple[int, int], target: str) -> None:
    """TensorRT-RTX's default targets start at Ampere: a Turing (7.5) GPU needs asking for."""
    from vssr.backends.cuda import DeviceInfo
    from vssr.backends.trt.build import target_gpu

    _, config = _builder_config(TRT_RTX())
    assert not target_gpu(trt, config, None) and config.num_compute_capabilities == 0  # AOT: the defaults
    assert target_gpu(trt, config, DeviceInfo("GPU", capability))
    assert config.num_compute_capabilities == 1
    assert config.get_compute_capability(0) == getattr(trt.ComputeCapability, target)


def test_turing_engine_builds_on_the_cpu(tmp_path: Path) -> None:
    from vssr.backends.cuda import DeviceInfo
    from vssr.backends.trt.build import build_engine_bytes

    plan = BuildPlan.make(TRT_RTX(fp16=True), Network.load(nets.conv3x3()), ShapeProfile.static(32, 32))
    data = build_engine_bytes(trt, TRT_RTX(fp16=True), plan, DeviceInfo("GeForce RTX 2080", (7, 5)), tmp_path)
    assert len(data) > 1000


def test_size_arithmetic_builds_in_fp16() -> None:
    """Exported size arithmetic (Shape -> Cast -> Mul -> Floor -> Cast -> Resize sizes) lowered to fp16:
    TensorRT-RTX refused the graph when the float part was lowered too (f32 vs f16 at the Floor)."""
    from tests.onnxpasses.test_precision import size_arithmetic_net
    from vssr.backends.trt.build import engine_bytes_from_network, profile_from_shapes
    from vssr.onnxpasses.precision import lower_precision

    low = lower_precision(size_arithmetic_net(), input_dtype=np.float16, output_dtype=np.float16)
    builder, config = _builder_config(TRT_RTX())
    network, _parser = network_from_onnx(trt, builder, low.SerializeToString())
    config.add_optimization_profile(profile_from_shapes(trt, builder, {"x": ((1, 1, 2, 16), (1, 1, 2, 2049), (1, 1, 2, 4096))}))
    assert len(engine_bytes_from_network(builder, network, config)) > 1000


def _conv_bn() -> onnx.ModelProto:
    """conv -> BatchNormalization -> relu -> conv -> BatchNormalization, PyTorch-export style."""
    rng = np.random.default_rng(3)
    h = onnx.helper
    inits = []
    nodes = []
    x = "input"
    for i, (cin, cout) in enumerate(((3, 8), (8, 3))):
        inits += [onnx.numpy_helper.from_array(rng.normal(0, 0.3, (cout, cin, 3, 3)).astype(np.float32), f"w{i}"),
                  onnx.numpy_helper.from_array(rng.normal(0, 0.1, cout).astype(np.float32), f"b{i}")]
        for name, value in (("gamma", rng.uniform(0.5, 1.5, cout)), ("beta", rng.normal(0, 0.1, cout)),
                            ("mean", rng.normal(0, 0.2, cout)), ("var", rng.uniform(0.5, 2.0, cout))):
            inits.append(onnx.numpy_helper.from_array(value.astype(np.float32), f"{name}{i}"))
        nodes += [h.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], name=f"conv{i}", pads=[1, 1, 1, 1]),
                  h.make_node("BatchNormalization", [f"c{i}", f"gamma{i}", f"beta{i}", f"mean{i}", f"var{i}"],
                              [f"n{i}"], name=f"bn{i}", epsilon=1e-3)]
        x = f"n{i}"
        if i == 0:
            nodes.append(h.make_node("Relu", [x], ["r0"], name="relu0"))
            x = "r0"
    nodes.append(h.make_node("Identity", [x], ["output"], name="out"))
    graph = h.make_graph(nodes, "conv_bn", [h.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 3, None, None])],
                         [h.make_tensor_value_info("output", onnx.TensorProto.FLOAT, [1, 3, None, None])], inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])


def test_batch_norm_is_folded_into_the_convolutions(tmp_path: Path) -> None:
    """BatchNormalization after a Conv is folded into its weights before lowering, not kept as an
    fp32 island between Casts (which blocks conv + BN fusion under strong typing): the plan's
    graph has no BN, computes the same, and every convolution of the built engine runs in fp16."""
    import onnxruntime as ort

    model = _conv_bn()
    network = Network.load(model, name="conv_bn")
    plan = BuildPlan.make(TRT_RTX(), network, ShapeProfile.static(16, 16))
    built = onnx.load_model_from_string(plan.model_bytes)
    assert "BatchNormalization" not in {n.op_type for n in built.graph.node}
    x = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)

    def run(graph: onnx.ModelProto) -> np.ndarray:
        session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {"input": x})[0]

    np.testing.assert_allclose(run(built), run(model), rtol=1e-5, atol=1e-5)
    path = TRT_RTX(engine_folder=str(tmp_path), fp16=True).build_engine(network, ShapeProfile.static(16, 16))
    convolutions = engine_convolutions(path.read_bytes())
    assert len(convolutions) == 2 and all(w == o == "half" for _, w, o in convolutions.values()), convolutions


# --- shipped models, as their builders land ------------------------------------------------------
def _compact() -> onnx.ModelProto:
    from vssr.arch import compact

    rng = np.random.default_rng(0)
    feat, convs, scale = 16, 2, 2
    state = {"body.0.weight": rng.normal(0, 0.1, (feat, 3, 3, 3)), "body.0.bias": np.zeros(feat)}
    for i in range(convs + 1):
        state[f"body.{2 * i + 1}.weight"] = np.full(feat, 0.2)
        if i < convs:
            state[f"body.{2 * i + 2}.weight"] = rng.normal(0, 0.1, (feat, feat, 3, 3))
            state[f"body.{2 * i + 2}.bias"] = np.zeros(feat)
    last = 2 * convs + 2
    state[f"body.{last}.weight"] = rng.normal(0, 0.1, (3 * scale * scale, feat, 3, 3))
    state[f"body.{last}.bias"] = np.zeros(3 * scale * scale)
    return compact.build({k: v.astype(np.float32) for k, v in state.items()})


def _zoo_realesrgan(name: str = "animevideov3") -> Callable[[], onnx.ModelProto]:
    """A shipped Real-ESRGAN model through the zoo (skipped when its weights are absent)."""
    def make() -> onnx.ModelProto:
        from vssr import zoo

        try:
            return zoo.network("realesrgan", name, func="test").model
        except Exception as err:
            pytest.skip(f"zoo weights unavailable: {err}")

    return make


def _shipped_quicksrnet() -> onnx.ModelProto:
    """QuickSRNet with the weights vssr ships (models/quicksrnet/small_x2.npz)."""
    from vssr.arch import quicksrnet
    from vssr.filters.quicksrnet import shipped_weights

    (path, *_) = shipped_weights().values() or [None]
    if path is None:
        pytest.skip("no shipped QuickSRNet weights")
    with np.load(path) as data:
        return quicksrnet.build({k: np.asarray(data[k], np.float32) for k in data.files})


def _rife_422(part: str) -> Callable[[], onnx.ModelProto]:
    """RIFE v4.22 (random weights): its encoder (run once per frame) and its flownet."""
    def make() -> onnx.ModelProto:
        from tests.arch import ifnet_numpy
        from vssr.arch import ifnet

        v = ifnet.VERSIONS["4.22"]
        state = ifnet_numpy.random_state(v.channels, v.encoder, v.head, v.feat)
        return ifnet.build_encoder(state, v) if part == "encoder" else ifnet.build_flownet(state, v)

    return make


def _quicksrnet() -> onnx.ModelProto:
    from vssr.arch import quicksrnet

    return quicksrnet.build(quicksrnet.random_state("small", 2))


def _rife() -> onnx.ModelProto:
    from tests.arch import ifnet_numpy
    from vssr.arch import ifnet

    v = ifnet.VERSIONS["4.6"]
    return ifnet.build_flownet(ifnet_numpy.random_state(v.channels, v.encoder, v.head, v.feat), v)


def _edvr(deform: str) -> Callable[[], onnx.ModelProto]:
    def make() -> onnx.ModelProto:
        from tests.arch import edvr_numpy
        from vssr.arch import edvr

        return edvr.build(edvr_numpy.random_state(num_feat=8, groups=4), deform=deform)  # type: ignore[arg-type]

    return make


NO_DEFORM_PLUGIN = pytest.mark.xfail(
    reason="TensorRT-RTX ships no DeformConv plugin: the ONNX parser refuses the native op "
    "(edvr deform='decomposed' builds)",
    raises=BackendError,
    strict=False,
)
SHIPPED = [
    pytest.param(_compact, id="realesrgan-compact"),
    pytest.param(_zoo_realesrgan(), id="realesrgan-animevideov3-zoo"),
    pytest.param(_zoo_realesrgan("x4plus-anime"), id="realesrgan-x4plus-anime-zoo", marks=pytest.mark.slow),
    pytest.param(_zoo_realesrgan("x4plus"), id="realesrgan-x4plus-zoo", marks=pytest.mark.slow),
    pytest.param(_quicksrnet, id="quicksrnet"),
    pytest.param(_shipped_quicksrnet, id="quicksrnet-shipped-small-x2"),
    pytest.param(_rife, id="rife-4.6", marks=pytest.mark.slow),
    pytest.param(_rife_422("encoder"), id="rife-4.22-encoder", marks=pytest.mark.slow),
    pytest.param(_rife_422("flownet"), id="rife-4.22-flownet", marks=pytest.mark.slow),
    pytest.param(_edvr("native"), id="edvr-native", marks=[pytest.mark.slow, NO_DEFORM_PLUGIN]),
    pytest.param(_edvr("decomposed"), id="edvr-decomposed", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("static", [True, False], ids=["static", "dynamic"])
@pytest.mark.parametrize("make", SHIPPED)
def test_shipped_models_build(make: Callable[[], onnx.ModelProto], static: bool, precision: str, tmp_path: Path) -> None:
    try:
        model = make()
    except (ImportError, AttributeError) as err:
        pytest.skip(f"model builder not there yet: {err}")
    network = Network.load(model)
    side = max(64, network.size.multiple)
    config = TRT_RTX(
        engine_folder=str(tmp_path),
        fp16=precision == "fp16",
        static_shape=static,
        max_shapes=None if static else (2 * side, 2 * side),
    )
    path = config.build_engine(network, ShapeProfile.static(side, side))
    # the precision that runs, read from the engine: the lowered graph's, fp32 islands kept
    from vssr.onnxpasses.precision import fp32_node_names

    islands = fp32_node_names(network.model, network.fp32_nodes)
    convolutions = engine_convolutions(path.read_bytes())
    assert convolutions
    for name, (data, weight, output) in convolutions.items():
        want = "float" if precision == "fp32" or name in islands else "half"
        # the compute type is the weights' and the result's; a Cast in front of the convolution
        # may be fused into it, which then reads its data in fp32 (EDVR's conv_l2_1)
        assert (weight, output) == (want, want) and data in {want, "float"}, (name, data, weight, output)


def test_build_ahead_of_time_and_list(tmp_path: Path) -> None:
    from vssr.backends.trt import cache as trt_cache

    network = Network.load(nets.conv3x3())
    config = TRT_RTX(engine_folder=str(tmp_path), fp16=True)
    path = config.build_engine(network, ShapeProfile.static(32, 32))
    (record,) = trt_cache.list_engines(tmp_path)
    assert record.path == path and record.info["precision"] == "fp16-in32-out32"
    from vssr.backends import cuda

    rt = cuda.import_cudart()
    gpus, _ = cuda.device_count(rt)
    device = "no-gpu" if gpus == 0 else "{0}-sm{1[0]}{1[1]}".format(*dataclasses.astuple(cuda.device_info(rt, 0)))
    assert record.info["key"]["device"] == device  # built for the GPU present, if any
    assert record.info["key"]["runtime"].startswith("tensorrt_rtx-")
    path.write_bytes(b"corrupt")  # no GPU to deserialize with: the sidecar digest catches it
    assert config.build_engine(network, ShapeProfile.static(32, 32)) == path
    assert path.stat().st_size == record.bytes


def _qdq(tmp: Path, symmetric: bool) -> onnx.ModelProto:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    onnx.save(nets.conv3x3(layers=2), tmp / "float.onnx")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.batches = iter([{"input": rng.random((1, 3, 16, 16), dtype=np.float32)} for _ in range(4)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    options = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False} if symmetric else {}
    quantize_static(
        str(tmp / "float.onnx"), str(tmp / "qdq.onnx"), Reader(), quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8, weight_type=QuantType.QInt8,
        extra_options=options,
    )
    return onnx.load(tmp / "qdq.onnx")


@pytest.mark.parametrize("fp16", [False, True])
def test_int8_qdq_builds_when_symmetric(fp16: bool, tmp_path: Path) -> None:
    """TensorRT takes int8 QDQ with zero points 0 and float biases; ORT's defaults (uint8 activations,
    int32-quantized biases) are refused, naming the node."""
    config = TRT_RTX(engine_folder=str(tmp_path), fp16=fp16)
    path = config.build_engine(Network.load(_qdq(tmp_path, symmetric=True), name="qdq"), ShapeProfile.static(16, 16))
    assert path.stat().st_size > 1000
    with pytest.raises(BackendError, match=r"node conv0\.bias_DequantizeLinear|zero point"):
        config.build_engine(Network.load(_qdq(tmp_path, symmetric=False), name="qdq"), ShapeProfile.static(16, 16))


# --- plugins: DeformConv ------------------------------------------------------------------------
def _dcn_pack_network(mode: str) -> Network:
    """One EDVR DCNv2 pack (8 channels, 1 deformable group) as its own network."""
    from vssr.arch.deform import modulated_deform_conv
    from vssr.arch.ops import GraphBuilder

    rng = np.random.default_rng(0)
    c = 8
    pack = {
        "weight": rng.normal(0, 0.3, (c, c, 3, 3)).astype(np.float32),
        "bias": rng.normal(0, 0.1, c).astype(np.float32),
        "conv_offset.weight": rng.normal(0, 0.1, (27, c, 3, 3)).astype(np.float32),
        "conv_offset.bias": rng.normal(0, 0.5, 27).astype(np.float32),
    }
    g = GraphBuilder(f"dcn_{mode}")
    x = g.input("input", c)
    fp32_nodes: list[str] = []
    g.output(modulated_deform_conv(g, x, x, pack, "dcn", mode=mode, fp32_nodes=fp32_nodes), "output", c)  # type: ignore[arg-type]
    return Network.load(g.model(scale=1, **({"fp32_nodes": ",".join(fp32_nodes)} if fp32_nodes else {})))


def test_plugin_registry_is_read_from_the_real_module() -> None:
    """tensorrt_rtx 1.7 registers two plugins and not DeformConv's: EDVR decomposes on TRT_RTX."""
    from vssr.backends.trt.build import DEFORM_CONV_PLUGIN, has_plugin

    assert has_plugin(trt, "ROIAlign_TRT")  # proves the registry walk works on the real bindings
    assert not has_plugin(trt, DEFORM_CONV_PLUGIN)
    assert not TRT_RTX().supports_op("DeformConv") and TRT_RTX().supports_op("GridSample")


def test_deform_conv_follows_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Full TensorRT's plugin library has ModulatedDeformConv2d: then DeformConv counts as supported
    and EDVR's deform='auto' takes the native op (registry faked: full TensorRT is not installable here)."""
    from vssr.backends.trt.build import DEFORM_CONV_PLUGIN
    from vssr.filters.edvr import _resolve_deform

    creator = SimpleNamespace(name=DEFORM_CONV_PLUGIN, plugin_version="1")
    monkeypatch.setattr(trt, "get_plugin_registry", lambda: SimpleNamespace(all_creators=[creator]))
    config = TRT_RTX()
    assert config.supports_op("DeformConv")
    assert _resolve_deform("auto", config) == "native"
    monkeypatch.setattr(trt, "get_plugin_registry", lambda: SimpleNamespace(all_creators=[]))
    assert _resolve_deform("auto", config) == "decomposed"


def test_native_deform_conv_fails_with_a_way_out_and_the_decomposition_builds(tmp_path: Path) -> None:
    config = TRT_RTX(engine_folder=str(tmp_path), fp16=True)
    with pytest.raises(BackendError, match=r"node n_dcn \(DeformConv\).*deform='decomposed'"):
        config.build_engine(_dcn_pack_network("native"), ShapeProfile.static(32, 32))
    path = config.build_engine(_dcn_pack_network("decomposed"), ShapeProfile.static(32, 32))
    assert path.stat().st_size > 1000
    assert not list(tmp_path.glob("dcn_native*.engine"))  # the failed build left nothing
