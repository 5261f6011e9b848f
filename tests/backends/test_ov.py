"""OpenVINO backend: the shared runner check, precision choice, cache keys, GIL release, int8 QDQ.

References are independent of OpenVINO: onnx.reference (check_runner), numpy, and onnxruntime for
the QDQ model.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests import nets
from tests.backends.qdq_net import SIZE, is_qdq, qdq_conv
from vssr.backends import Backend, default_backend
from vssr.backends import ov as ov_backend
from vssr.errors import BackendError, MissingBackendError
from vssr.network import Network, set_metadata
from vssr.types import ShapeProfile

openvino = pytest.importorskip("openvino")

PROFILE = ShapeProfile.static(24, 24)
TINY = nets.SINGLE_INPUT


@pytest.fixture(autouse=True)
def engine_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "engines"
    monkeypatch.setenv("VSSR_ENGINE_DIR", str(path))
    return path


@pytest.mark.parametrize("name", TINY)
def test_runner_matches_reference_f32(name: str) -> None:
    model = TINY[name]()
    (runner,) = Backend.OV(precision="f32", num_streams=1).load(Network.load(model), PROFILE)
    nets.check_runner(runner, model)


@pytest.mark.parametrize("name", ["conv3x3", "shuffle_x2"])
def test_runner_bf16_close_to_reference(name: str) -> None:
    model = TINY[name]()
    (runner,) = Backend.OV(precision="bf16", num_streams=1).load(Network.load(model), PROFILE)
    nets.check_runner(runner, model, rtol=3e-2, atol=3e-2)  # bf16 keeps 8 mantissa bits


def test_two_inputs_and_dynamic_profile() -> None:
    net = Network.load(nets.two_input())
    profile = ShapeProfile((8, 8), (16, 16), (32, 32))  # not static: the model keeps dynamic H, W
    runners = Backend.OV(precision="f32", num_streams=2).load(net, profile)
    assert len(runners) == 2
    rng = np.random.default_rng(0)
    for h, w in ((8, 12), (20, 32)):
        x = rng.random((1, 3, h, w), dtype=np.float32)
        gain = np.full((1, 1, 1, 1), 1.5, np.float32)
        out = runners[1].infer({"input": x, "gain": gain})["output"]
        np.testing.assert_allclose(out, x * 1.5, rtol=1e-6)


def test_read_only_and_fp16_io() -> None:
    net = Network.load(nets.conv3x3()).with_io_dtype(np.float16, np.float16)
    (runner,) = Backend.OV(precision="f32", num_streams=1).load(net, PROFILE)
    assert runner.outputs[0].dtype == np.float16
    x = np.random.default_rng(0).random((1, 3, 24, 24), dtype=np.float32).astype(np.float16)
    x.flags.writeable = False  # frames from VapourSynth may be read-only views
    out = runner.infer({"input": x})["output"]
    assert out.dtype == np.float16
    nets.check_runner(runner, nets.conv3x3(), rtol=2e-2, atol=2e-2)


# --- precision ---------------------------------------------------------------------------------
class FakeCore:
    def __init__(self, caps: list[str]) -> None:
        self.caps = caps

    def get_property(self, device: str, name: str) -> list[str]:
        assert name == "OPTIMIZATION_CAPABILITIES"
        return self.caps


@pytest.mark.parametrize(
    ("device", "caps", "want"),
    [
        ("CPU", ["BF16", "FP32", "INT8"], "bf16"),
        ("CPU", ["FP32", "INT8", "WINOGRAD"], "f32"),
        ("GPU", ["FP32", "FP16", "INT8"], "f16"),
        ("GPU.1", ["FP32"], "f32"),
    ],
)
def test_default_precision_from_capabilities(device: str, caps: list[str], want: str) -> None:
    assert ov_backend.default_precision(FakeCore(caps), device) == want


def test_precision_resolution_on_this_machine() -> None:
    core = ov_backend.shared_core()
    caps = [str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
    assert Backend.OV().resolve_precision(core) == ("bf16" if "BF16" in caps else "f32")
    assert Backend.OV(precision="f32").resolve_precision(core) == "f32"
    assert Backend.OV(fp16=True).resolve_precision(core) == "f16"
    assert Backend.OV(fp16=False).resolve_precision(core) == "f32"


def test_precision_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="vssr.backends.ov"):
        Backend.OV(num_streams=1).load(Network.load(nets.identity()), PROFILE)
    assert "chosen from the device's capabilities" in caplog.text


@pytest.mark.parametrize(
    "kwargs",
    [{"precision": "int8"}, {"num_streams": 0}, {"num_threads": 0}, {"ov_streams": 0}, {"hint": "FAST"},
     {"precision": "f32", "fp16": True}, {"device": ""}],
)
def test_invalid_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
        Backend.OV(**kwargs)


def test_compile_config_defaults_use_every_core() -> None:
    config = Backend.OV().compile_config("bf16")
    assert config["PERFORMANCE_HINT"] == "THROUGHPUT"
    assert config["NUM_STREAMS"] == 2  # one OpenVINO stream per frame in flight
    assert Backend.OV(num_streams=3).compile_config("bf16")["NUM_STREAMS"] == 3
    assert config["INFERENCE_NUM_THREADS"] == ov_backend.cpu_count()
    assert "ENABLE_CPU_PINNING" not in config
    tput = Backend.OV(hint="THROUGHPUT", cpu_pinning=False).compile_config("f32")
    assert tput == {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "THROUGHPUT", "ENABLE_CPU_PINNING": False}


def test_compiled_model_gets_the_settings() -> None:
    (runner,) = Backend.OV(precision="f32", num_threads=1, ov_streams=1, num_streams=1).load(
        Network.load(nets.identity()), PROFILE
    )
    compiled = runner._compiled  # type: ignore[attr-defined]
    assert int(compiled.get_property("INFERENCE_NUM_THREADS")) == 1
    assert int(compiled.get_property("NUM_STREAMS")) == 1
    assert compiled.get_property("INFERENCE_PRECISION_HINT") == openvino.Type.f32


# --- cache -------------------------------------------------------------------------------------
def test_cache_key_changes_with_every_build_setting() -> None:
    net = Network.load(nets.conv3x3())
    other_net = Network.load(nets.conv3x3(seed=1))
    base = Backend.OV()
    key = base.cache_digest(net, PROFILE, "bf16", "2026.0")
    variants = [
        base.cache_digest(other_net, PROFILE, "bf16", "2026.0"),
        base.cache_digest(net, ShapeProfile.static(32, 24), "bf16", "2026.0"),
        base.cache_digest(net, PROFILE, "f32", "2026.0"),
        base.cache_digest(net, PROFILE, "bf16", "2026.1"),
        dataclasses.replace(base, num_threads=1).cache_digest(net, PROFILE, "bf16", "2026.0"),
        dataclasses.replace(base, ov_streams=2).cache_digest(net, PROFILE, "bf16", "2026.0"),
        dataclasses.replace(base, cpu_pinning=False).cache_digest(net, PROFILE, "bf16", "2026.0"),
        dataclasses.replace(base, hint="THROUGHPUT").cache_digest(net, PROFILE, "bf16", "2026.0"),
        dataclasses.replace(base, device="GPU").cache_digest(net, PROFILE, "bf16", "2026.0"),
    ]
    assert len({key, *variants}) == len(variants) + 1
    # a runtime-only field does not change the key
    assert dataclasses.replace(base, cache=False).cache_digest(net, PROFILE, "bf16", "2026.0") == key


def test_compiled_models_are_cached_per_setting(engine_dir: Path) -> None:
    net = Network.load(nets.conv3x3())
    for precision in ("f32", "bf16", "f32"):
        (runner,) = Backend.OV(precision=precision, num_streams=1).load(net, PROFILE)
        nets.check_runner(runner, nets.conv3x3(), rtol=3e-2, atol=3e-2)
    blobs = sorted((engine_dir / "openvino").glob("*.blob"))
    assert len(blobs) == 2  # f32 twice -> one entry, reused
    assert all(b.with_name(b.name + ".meta.json").is_file() for b in blobs)
    (runner,) = Backend.OV(precision="f32", num_streams=1, cache=False).load(net, PROFILE)
    assert sorted((engine_dir / "openvino").glob("*.blob")) == blobs


# --- concurrency -------------------------------------------------------------------------------
def test_infer_releases_the_gil() -> None:
    """While a runner computes, another Python thread keeps running (no long GIL hold)."""
    g_model = nets.conv3x3(channels=16, layers=12)
    (runner,) = Backend.OV(precision="f32", num_streams=1, num_threads=1).load(
        Network.load(g_model), ShapeProfile.static(256, 256)
    )
    x = {"input": np.random.default_rng(0).random((1, 16, 256, 256), dtype=np.float32)}
    runner.infer(x)
    start = time.perf_counter()
    runner.infer(x)
    duration = time.perf_counter() - start
    done = threading.Event()
    gaps: list[float] = []

    def python_work() -> None:
        last = time.perf_counter()
        while not done.is_set():
            sum(range(200))  # pure-Python work: needs the GIL
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    old = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        thread = threading.Thread(target=python_work)
        thread.start()
        t0 = time.perf_counter()
        for _ in range(3):
            runner.infer(x)
        elapsed = time.perf_counter() - t0
        done.set()
        thread.join()
    finally:
        sys.setswitchinterval(old)
    assert duration > 0.02, "the probe network is too small to tell"
    # a held GIL would stall the other thread for a whole inference (>= duration)
    assert max(gaps) < max(0.5 * duration, 0.01) or max(gaps) < 0.5 * elapsed / 3, (max(gaps), duration)


def test_runners_overlap_from_threads() -> None:
    """Two runners used from two threads both complete correctly (the glue's pool pattern)."""
    model = nets.conv3x3(layers=2)
    runners = Backend.OV(precision="f32", num_streams=2).load(Network.load(model), PROFILE)
    nets.check_runners_from_threads(runners, model)


# --- int8 QDQ ----------------------------------------------------------------------------------
def test_qdq_int8_model_runs(tmp_path: Path) -> None:
    import onnxruntime as ort

    float_model, qdq_model = qdq_conv(tmp_path)
    assert is_qdq(qdq_model)
    x = np.random.default_rng(5).random((1, 3, SIZE, SIZE), dtype=np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    want = ort.InferenceSession(qdq_model.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(
        None, {"input": x}
    )[0]
    full = ort.InferenceSession(float_model.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(
        None, {"input": x}
    )[0]
    (runner,) = Backend.OV(num_streams=1).load(Network.load(qdq_model), ShapeProfile.static(SIZE, SIZE))
    got = runner.infer({"input": x})["output"]
    step = float(np.ptp(full)) / 255  # one uint8 step of the output range
    # int8 kernels round differently from ORT's: allow a few quantisation steps
    np.testing.assert_allclose(got, want, atol=4 * step)
    assert np.abs(got - full).mean() < 2 * step  # and it is still the same network


# --- import and default ------------------------------------------------------------------------
def test_default_backend_is_openvino() -> None:
    backend = default_backend()
    assert isinstance(backend, ov_backend.OV)
    (runner, *_) = backend.load(Network.load(nets.conv3x3()), PROFILE)
    nets.check_runner(runner, nets.conv3x3(), rtol=3e-2, atol=3e-2)


def test_missing_openvino_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # makes `import openvino` raise ImportError
    with pytest.raises(MissingBackendError, match=r'pip install -e "\.\[ov\]" in the vssr checkout'):
        Backend.OV().load(Network.load(nets.identity()), PROFILE)
    assert not ov_backend.available()


def test_other_openvino_build_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    class Shadowed:
        def find_spec(self, name: str, *args: object) -> None:
            if name == "openvino":
                raise ImportError(
                    "Check 'versions_compatible' failed: OpenVINO Python version (a) mismatches with "
                    "OpenVINO Runtime library version (b)."
                )

    monkeypatch.delitem(sys.modules, "openvino")
    monkeypatch.setattr(sys, "meta_path", [Shadowed(), *sys.meta_path])
    with pytest.raises(BackendError, match="Import vssr before the first use") as info:
        ov_backend.import_openvino()
    assert not isinstance(info.value, MissingBackendError)


# --- fp32 islands ------------------------------------------------------------------------------
def _runtime_precisions(runner: object, layer_type: str) -> dict[str, str]:
    compiled = runner._compiled  # type: ignore[attr-defined]
    result = {}
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) == layer_type:
            result[op.get_friendly_name().split("/")[0]] = info["runtimePrecision"].astype(str)
    return result


def test_declared_fp32_nodes_stay_f32_under_bf16() -> None:
    model = nets.conv3x3(layers=3)
    set_metadata(model, fp32_nodes="n_conv1")
    (runner,) = Backend.OV(precision="bf16", num_streams=1).load(Network.load(model), PROFILE)
    precisions = _runtime_precisions(runner, "Convolution")
    assert precisions["n_conv1"] == "f32"
    assert {precisions["n_conv0"], precisions["n_conv2"]} == {"bf16"}
    nets.check_runner(runner, model, rtol=3e-2, atol=3e-2)
    # without the declaration every conv is bf16 (so the pin above did the work)
    (plain,) = Backend.OV(precision="bf16", num_streams=1).load(Network.load(nets.conv3x3(layers=3)), PROFILE)
    assert set(_runtime_precisions(plain, "Convolution").values()) == {"bf16"}


def test_unavailable_device_is_a_backend_error() -> None:
    devices = ov_backend.shared_core().available_devices
    if "NPU" in devices:
        pytest.skip("this machine has an NPU")
    with pytest.raises(BackendError, match="cannot compile network .* for NPU"):
        Backend.OV(device="NPU", num_streams=1).load(Network.load(nets.identity()), PROFILE)


# --- through VapourSynth -----------------------------------------------------------------------
def test_inference_on_vapoursynth_threads(core) -> None:  # type: ignore[no-untyped-def]
    """vssr.inference with OV: N interleaved ModifyFrame instances share pooled runners (no
    threading.local), and the frames equal ONNX Runtime's on the same arrays."""
    import onnxruntime as ort
    import vapoursynth as vs

    import vssr

    model = nets.pixel_shuffle_x2()
    colors = [[0.1, 0.5, 0.9], [0.7, 0.2, 0.4], [0.3, 0.3, 0.8], [0.9, 0.6, 0.1]]
    parts = [core.std.BlankClip(width=20, height=12, format=vs.RGBS, length=2, color=c) for c in colors]
    clip = core.std.AddBorders(core.std.Splice(parts), left=2, right=2, top=2, bottom=2, color=[1.0, 0.0, 0.5])
    out = vssr.inference(clip, model, backend=Backend.OV(precision="f32", num_streams=2))
    assert (out.width, out.height, out.num_frames) == (48, 32, 8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for n, frame in enumerate(out.frames()):
        src = clip.get_frame(n)
        x = np.stack([np.asarray(src[p]) for p in range(3)])[None].astype(np.float32)
        (want,) = session.run(None, {"input": x})
        got = np.stack([np.asarray(frame[p]) for p in range(3)])
        np.testing.assert_allclose(got, want[0], rtol=1e-5, atol=1e-5)


# --- openvino next to vs-mlrt's ov plugin --------------------------------------------------------
_CORE_THEN_OPENVINO = """
import site, sys
if len(sys.argv) > 1:
    site.addsitedir(sys.argv[1])  # processes the .pth there, as site-packages would at start-up
import vapoursynth as vs
vs.core.std  # creates the core: autoloads plugins, vs-mlrt's ov among them if installed
import openvino
print("ok", openvino.Core().available_devices, hasattr(vs.core, "ov"))
"""


def _run_python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _CORE_THEN_OPENVINO, *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_import_hook_lets_openvino_load_after_the_core(tmp_path: Path) -> None:
    pth = ov_backend.install_import_hook(tmp_path)
    assert pth.read_text() == "import _vssr_openvino_first\n"
    hooked = _run_python(str(tmp_path))
    assert hooked.returncode == 0 and hooked.stdout.startswith("ok"), hooked.stderr[-2000:]
    if hooked.stdout.rstrip().endswith("True"):  # vs-mlrt's ov plugin is installed: the hook is what made it work
        plain = _run_python()
        assert plain.returncode != 0 and "mismatches with OpenVINO Runtime" in plain.stderr
