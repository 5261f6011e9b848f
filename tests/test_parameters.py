"""Every public parameter of every public function and backend config refuses bad values when the
filter (or config) is made: a vs.Error naming the parameter, the value and what is accepted.

The table is checked against the signatures: a public callable or parameter without bad cases
fails `test_every_public_parameter_has_cases`. Good values that must keep working (numpy
integers, pairs as lists, a 240-character weights file name) are tested below the table.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import shutil
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

import vssr
from tests import nets
from tests.arch import edvr_numpy, ifnet_numpy
from tests.weights.torchsave import Tensor, save_zip
from vssr.arch import ifnet

DATA = Path(__file__).parent / "data"
ORT1 = vssr.Backend.ORT(num_streams=1, threads=1)


def blank(fmt: int = vs.RGBS, width: int = 32, height: int = 24, length: int = 4, fps: int = 24) -> vs.VideoNode:
    return vs.core.std.BlankClip(format=fmt, width=width, height=height, length=length, fpsnum=fps, fpsden=1)


def rife_pkl(folder: Path, version: str = "4.6") -> Path:
    v = ifnet.VERSIONS[version]
    state = ifnet_numpy.random_state(v.channels, v.encoder, v.head, v.feat, 0)
    path = folder / f"flownet_v{version}.pkl"
    return save_zip(OrderedDict((f"module.{k}", Tensor.of(a)) for k, a in state.items()), path)


def onnx_file(folder: Path) -> Path:
    path = folder / "shuffle_x2.onnx"
    path.write_bytes(nets.pixel_shuffle_x2().SerializeToString())
    return path


EDVR_STATE = edvr_numpy.random_state(num_feat=8, groups=8, seed=11)


@dataclass(frozen=True)
class Made:
    """A bad value made when the test runs: it needs the test's folder or a VapourSynth core."""

    label: str
    make: Callable[[Path], object]


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


DIRECTORY = Made("a directory", lambda tmp: tmp)
MISSING = Made("a missing file", lambda tmp: tmp / "missing.onnx")
YUV_CLIP = Made("a YUV clip without _Matrix", lambda tmp: blank(vs.YUV420P8))  # YUV with _Matrix is converted
FORMAT_BAD = ["RGBS", 1.5, Made("a VideoNode", lambda tmp: blank())]

CLIP_BAD = [None, "clip", YUV_CLIP]
BACKEND_BAD = ["ORT", 2, vssr.Backend.ORT]  # the class, not a config
TILESIZE_BAD = [0, 1.5, "64", True, (64,), (64, 1.5), np.float32(64)]
OVERLAP_BAD = [-1, 1.5, "8", False, (8, -1), 4, (0, 2)]  # the baseline has no tilesize: 4 and (0, 2) mean nothing
STREAMS_BAD = [0, -1, 1.5, "2", True, 1000]
FP16_BAD = ["yes", 1, 0]


@dataclass(frozen=True)
class Target:
    """A public callable: arguments that work, and bad values per parameter."""

    func: Callable[..., object]
    good: Callable[[Path], dict[str, object]]
    bad: dict[str, list[object]] = field(default_factory=dict)


TARGETS: dict[str, Target] = {
    "RealESRGAN": Target(
        vssr.RealESRGAN,
        lambda tmp: {"clip": blank(), "model": onnx_file(tmp), "backend": ORT1},
        {
            "clip": CLIP_BAD,
            "model": [None, 123, DIRECTORY, MISSING, Made("a .pth directory", lambda tmp: _folder(tmp / "d.pth"))],
            "backend": BACKEND_BAD,
            "tilesize": TILESIZE_BAD,
            "overlap": OVERLAP_BAD,
            "format": FORMAT_BAD,
        },
    ),
    "QuickSRNet": Target(
        vssr.QuickSRNet,
        lambda tmp: {"clip": blank(), "backend": ORT1},
        {
            "clip": [None, YUV_CLIP],
            "size": ["huge", 1, None],
            "scale": [5, "2", True, 0, None],
            "weights": [123, DIRECTORY, MISSING],
            "backend": BACKEND_BAD,
            "tilesize": TILESIZE_BAD,
            "overlap": OVERLAP_BAD,
            "int8": ["fast", True, 8],
            "calibration_frames": [0, 1.5, "16", True, 10**6],
            "int8_symmetric": ["no", 1, None],
            "format": FORMAT_BAD,
        },
    ),
    "RIFE": Target(
        vssr.RIFE,
        lambda tmp: {"clip": blank(), "model": rife_pkl(tmp), "backend": ORT1},
        {
            "clip": CLIP_BAD,
            "multi": [0, 1.5, "2", True, 2**31, 2**30],  # 2**30 x 4 frames: past VapourSynth's frame count
            "factor_num": [2.5, "5", 0, True],
            "factor_den": [0, 2.5, "2", None],
            "fps_num": ["60", 60.0, 0, -1],
            "fps_den": [0, "1001", 1.5],
            "model": [None, 123, DIRECTORY, MISSING],
            "version": [4.6, "9.9"],
            "scale": [True, 3, "1", 0],
            "ensemble": ["yes", 1, None],
            "sc": ["no", 1],
            "sc_threshold": [True, 0, 1.5, "0.1"],
            "backend": BACKEND_BAD,
            "format": FORMAT_BAD,
        },
    ),
    "EDVR": Target(
        vssr.EDVR,
        lambda tmp: {"clip": blank(), "model": EDVR_STATE, "backend": ORT1},
        {
            "clip": CLIP_BAD,
            "model": [None, 123, DIRECTORY, MISSING],
            "num_frame": ["5", 5.0, 0, True, 7],  # 7: the model was trained for 5
            "backend": BACKEND_BAD,
            "tilesize": TILESIZE_BAD,
            "overlap": OVERLAP_BAD,
            "split": ["yes", 1],
            "edge": ["wrap", 1],
            "deform": ["fast", None],
            "format": FORMAT_BAD,
        },
    ),
    "inference": Target(
        vssr.inference,
        lambda tmp: {"clips": blank(), "network": nets.pixel_shuffle_x2(), "backend": ORT1},
        {
            "clips": [None, [], "clip", Made("[clip, None]", lambda tmp: [blank(), None]), YUV_CLIP],
            "network": [None, 123, DIRECTORY, MISSING],
            "backend": BACKEND_BAD,
            "tilesize": TILESIZE_BAD,
            "overlap": OVERLAP_BAD,
            "scale": ["x", 0, -2, True, float("nan"), 3],  # 3: the network is x2
            "func": [123, ""],
            "format": FORMAT_BAD,
        },
    ),
    "Session.create": Target(
        vssr.Session.create,
        lambda tmp: {"network": vssr.Network.load(nets.identity()), "width": 32, "height": 24, "backend": ORT1},
        {
            "network": [None, "net.onnx"],
            "backend": BACKEND_BAD,
            "width": [0, 1.5, "32", True],
            "height": [0, 1.5, "24", False],
            "tilesize": TILESIZE_BAD,
            "overlap": OVERLAP_BAD,
            "dtype": ["int8", np.int8, None],
            "func": [123],
        },
    ),
    "quantize": Target(
        vssr.quantize,
        lambda tmp: {"network": nets.conv3x3(), "calibration": [np.full((3, 16, 16), 0.5, np.float32)]},
        {
            "network": [None, 123, DIRECTORY, MISSING],
            "calibration": [None, 42, MISSING, Made("an empty folder", lambda tmp: _folder(tmp / "empty"))],
            "frames": [0, 1.5, "16", True, 10**6],
            "crop": [0, 1.5, "256"],
            "method": ["kl", 1, None],
            "per_channel": ["yes", 1],
            "symmetric": ["no", 0],
            "seed": [-1, 1.5, "0", 2**40],
        },
    ),
    "Backend.ORT": Target(
        vssr.Backend.ORT,
        lambda tmp: {},
        {
            "num_streams": STREAMS_BAD,
            "fp16": FP16_BAD,
            "threads": [0, 1.5, "2", True, 2000],
            "providers": ["CPU", ("Vulkan",), (), [1]],
            "device_id": [-1, 1.5, "0"],
            "verbosity": [5, -1, "3", 1.5],
        },
    ),
    "Backend.OV": Target(
        vssr.Backend.OV,
        lambda tmp: {},
        {
            "num_streams": STREAMS_BAD,
            "fp16": FP16_BAD,
            "device": [3, ""],
            "precision": ["int8", 16],
            "ov_streams": [0, 1.5, 65],
            "num_threads": [0, "2", True],
            "cpu_pinning": ["yes", 1],
            "hint": ["FAST", 1],
            "cache": ["no", 1, None],
            "bf16": ["yes", 1],
        },
    ),
}

_TRT_BAD: dict[str, list[object]] = {
    "num_streams": [*STREAMS_BAD, 17],
    "fp16": FP16_BAD,
    "bf16": ["yes", 1, None],
    "output_dtype": ["int8", np.float16],
    "static_shape": ["no", 0],
    "min_shapes": [(1.5, 8), "64x64", (64,)],
    "opt_shapes": [(0, 8), 64],
    "max_shapes": [(64, "64"), [64]],
    "workspace": [0, 1.5, "1024"],
    "builder_optimization_level": [6, -1, "3", True],
    "max_aux_streams": [-1, 1.5],
    "tf32": ["no", 1],
    "use_cuda_graph": ["yes", 1],
    "device_id": [-1, "0"],
    "engine_folder": [123, b"/tmp"],
}
TARGETS["Backend.TRT"] = Target(vssr.Backend.TRT, lambda tmp: {}, _TRT_BAD)
TARGETS["Backend.TRT_RTX"] = Target(vssr.Backend.TRT_RTX, lambda tmp: {}, {**_TRT_BAD, "runtime_cache": ["no", 1]})

SPOKEN = {"clips": "clip"}
"""inference(clips=): messages say "clip" for one clip and "clips[i]" for one of several."""

EXEMPT = {
    "BackendConfig": "abstract: made through Backend.*",
    "Network": "the lower layer's type (raises ModelError); the functions check the paths they are given",
}
TRT_MODULES = {"Backend.TRT": "tensorrt", "Backend.TRT_RTX": "tensorrt_rtx"}


def _public_callables() -> list[str]:
    names = []
    for name in vssr.__all__:
        obj = getattr(vssr, name)
        if (isinstance(obj, type) and issubclass(obj, BaseException)) or name in EXEMPT:
            continue
        if name == "Backend":
            names += [f"Backend.{b}" for b in dir(vssr.Backend)]
        elif name == "Session":
            names.append("Session.create")
        else:
            names.append(name)
    return names


def test_every_public_parameter_has_cases() -> None:
    callables = _public_callables()
    assert sorted(callables) == sorted(TARGETS), "a public callable without a bad-value table"
    for name in callables:
        params = [p for p in inspect.signature(TARGETS[name].func).parameters if p not in ("self", "cls")]
        missing = [p for p in params if not TARGETS[name].bad.get(p)]
        assert not missing, f"{name}: parameters without bad values: {missing}"
        unknown = set(TARGETS[name].bad) - set(params)
        assert not unknown, f"{name}: cases for parameters it does not have: {unknown}"


def _cases() -> list[object]:
    return [
        pytest.param(name, param, value, id=f"{name}-{param}-{value.label if isinstance(value, Made) else repr(value)}")
        for name, target in TARGETS.items()
        for param, values in target.bad.items()
        for value in values
    ]


def _plain(value: object) -> bool:
    if isinstance(value, tuple | list):
        return all(_plain(v) for v in value)
    return isinstance(value, bool | int | float | str | bytes) or value is None


def _shown(value: object) -> str | None:
    """How the message must show the value, when it is a plain value."""
    if isinstance(value, Path):
        return str(value)
    if _plain(value):
        return repr(value) if isinstance(value, str | bytes) and value else str(value)
    return None


@pytest.mark.parametrize(("name", "param", "value"), _cases())
def test_bad_value_is_a_vs_error_at_creation(name: str, param: str, value: object, tmp_path: Path) -> None:
    if name in TRT_MODULES:
        pytest.importorskip(TRT_MODULES[name])
    target = TARGETS[name]
    if isinstance(value, Made):
        value = value.make(tmp_path)
    kwargs = {**target.good(tmp_path), param: value}
    with pytest.raises(vs.Error) as info:
        target.func(**kwargs)
    message = str(info.value)
    assert f"vssr.{name.removesuffix('.create')}" in message
    assert SPOKEN.get(param, param) in message, message
    shown = _shown(value)
    if shown is not None:
        assert shown in message, message
    assert any(w in message for w in ("must", "use ", "give ", "pass ", "leave ", "resize ")), message


@pytest.mark.parametrize("name", list(TARGETS))
def test_good_arguments_pass(name: str, tmp_path: Path) -> None:
    """The table's baseline arguments are valid, so each bad case fails for its own value."""
    if name in TRT_MODULES:
        pytest.importorskip(TRT_MODULES[name])
    TARGETS[name].func(**TARGETS[name].good(tmp_path))


OVERLAP_USERS = [name for name, target in TARGETS.items() if "overlap" in target.bad]


@pytest.mark.parametrize("name", OVERLAP_USERS)
def test_one_overlap_rule_everywhere(name: str, tmp_path: Path) -> None:
    """docs/parameters.md: overlap only with tilesize. Unset or 0 without tilesize is fine; any other
    overlap without tilesize is refused at creation, naming both (RealESRGAN and QuickSRNet dropped
    it silently, EDVR and inference refused it with different words)."""
    assert set(OVERLAP_USERS) == {"RealESRGAN", "QuickSRNet", "EDVR", "inference", "Session.create"}
    target = TARGETS[name]
    with pytest.raises(vs.Error, match=rf"vssr\.{re.escape(name)}: overlap=\(8, 8\) without tilesize: .*"
                                       r"pass tilesize= too, or leave overlap unset"):
        target.func(**{**target.good(tmp_path), "overlap": (8, 8)})
    for harmless in (None, 0, (0, 0), np.int64(0)):
        target.func(**{**target.good(tmp_path), "overlap": harmless})


def test_overlap_defaults_only_with_tiles() -> None:
    from vssr.glue.checks import tile_overlap

    assert tile_overlap(None, None, "f", default=8) == (0, 0)
    assert tile_overlap(16, None, "f", default=8) == (8, 8)
    assert tile_overlap((16, 32), [np.int32(2), 3], "f", default=8) == (2, 3)
    assert tile_overlap(None, 0, "f", default=8) == (0, 0)


@pytest.mark.parametrize(("name", "expected"), [("RealESRGAN", (8, 8)), ("QuickSRNet", "radius"), ("inference", (0, 0))])
def test_filters_tile_with_their_default_overlap(name: str, expected: object, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """With tilesize and no overlap, each filter hands Session.create its own default."""
    from vssr.arch import quicksrnet
    from vssr.filters.quicksrnet import shipped_weights
    from vssr.weights import npz

    seen: list[object] = []
    create = vssr.Session.create.__func__  # type: ignore[attr-defined]

    def recording(cls: type, *args: object, **kwargs: object) -> object:
        seen.append(kwargs["overlap"])
        return create(cls, *args, **kwargs)

    monkeypatch.setattr(vssr.Session, "create", classmethod(recording))
    target = TARGETS[name]
    target.func(**{**target.good(tmp_path), "tilesize": 24})
    if expected == "radius":
        radius = quicksrnet.receptive_radius(npz.load(shipped_weights()[("small", Fraction(2))]))
        expected = (radius, radius)
    assert seen == [expected]


# --- good values that must keep working ------------------------------------------------------
def test_backend_configs_take_numpy_integers_as_plain_ints() -> None:
    config = vssr.Backend.ORT(num_streams=np.int64(2), threads=np.int32(1), device_id=np.uint8(0), verbosity=np.int8(3))
    assert (config.num_streams, config.threads, config.device_id, config.verbosity) == (2, 1, 0, 3)
    assert all(type(v) is int for v in (config.num_streams, config.threads, config.device_id, config.verbosity))
    assert config.build_digest() == vssr.Backend.ORT(num_streams=2, threads=1).build_digest()  # same cache keys
    assert dataclasses.replace(config, num_streams=64).num_streams == 64  # the documented bound is accepted
    ov = vssr.Backend.OV(num_streams=np.int64(1), ov_streams=np.int16(1), cache=np.bool_(False))
    assert type(ov.num_streams) is int and ov.cache is False


def test_backend_errors_are_also_value_errors() -> None:
    """vs.Error for scripts, still a ValueError for code that caught the configs' old errors."""
    with pytest.raises(ValueError, match=r"vssr\.Backend\.ORT: num_streams must be an int in 1\.\.64, not 1\.5"):
        vssr.Backend.ORT(num_streams=1.5)
    assert isinstance(vssr.Backend.ORT(), vssr.backends.ort.ORT)


def test_trt_shapes_take_lists_and_numpy_ints() -> None:
    pytest.importorskip("tensorrt_rtx")
    config = vssr.Backend.TRT_RTX(static_shape=False, min_shapes=[np.int64(16), 16], num_streams=np.int32(16))
    assert config.min_shapes == (16, 16) and all(type(v) is int for v in config.min_shapes)


def test_inference_takes_numpy_sizes(core: vs.Core) -> None:
    clip = core.std.BlankClip(format=vs.RGBS, width=32, height=24, length=2, color=[0.2, 0.5, 0.8])
    net = nets.pixel_shuffle_x2()
    whole = vssr.inference(clip, net, ORT1)
    tiled = vssr.inference(clip, net, ORT1, tilesize=np.int64(16), overlap=[np.int32(2), 2], scale=np.int64(2))
    assert (tiled.width, tiled.height) == (64, 48)
    for p in range(3):
        assert np.array_equal(np.asarray(tiled.get_frame(1)[p]), np.asarray(whole.get_frame(1)[p]))
    assert vssr.inference(clip, net, ORT1, scale=Fraction(2)).width == 64


def test_rife_rates_take_numpy_integers(tmp_path: Path) -> None:
    model = rife_pkl(tmp_path)
    clip = blank(length=4)
    assert vssr.RIFE(clip, np.int64(2), model=model, backend=ORT1, sc_threshold=np.float32(0.2)).num_frames == 8
    out = vssr.RIFE(clip, factor_num=np.int64(5), factor_den=np.int16(2), model=model, backend=ORT1)
    assert out.num_frames == 10 and out.fps == Fraction(60)
    out = vssr.RIFE(clip, fps_num=np.uint32(48), fps_den=np.int64(1), model=model, backend=ORT1, sc=np.bool_(False))
    assert out.num_frames == 8 and out.fps == Fraction(48)
    assert vssr.RIFE(clip, multi=2**28, model=model, backend=ORT1).num_frames == 2**30  # within VapourSynth's limit


def test_quicksrnet_and_edvr_take_numpy_values() -> None:
    out = vssr.QuickSRNet(blank(), "small", np.int64(2), backend=ORT1, tilesize=np.int64(16), overlap=np.int64(4),
                          calibration_frames=np.int32(2))
    assert (out.width, out.height) == (64, 48)
    out = vssr.EDVR(blank(), EDVR_STATE, num_frame=np.int64(5), backend=ORT1, split=np.bool_(True))
    assert (out.width, out.height) == (128, 96)


def test_long_weights_file_name_gets_a_short_cache_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 240-character stem: the converted ONNX in the models cache must still be a valid file name."""
    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "models"))
    weights = tmp_path / ("w" * 240 + ".pth")
    shutil.copy(DATA / "torch_compact_x4.pth", weights)
    out = vssr.RealESRGAN(blank(width=16, height=16, length=1), model=weights, backend=ORT1)
    out.get_frame(0)
    (cached,) = (tmp_path / "models").glob("*.onnx")
    assert len(cached.name) < 100


# --- network/clip compatibility, at creation, on every CPU backend ---------------------------
BACKENDS = {"ORT": lambda: ORT1, "OV": lambda: vssr.Backend.OV(num_streams=1)}


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_static_network_on_another_frame_size(backend: str, core: vs.Core) -> None:
    config = BACKENDS[backend]()
    clip = core.std.BlankClip(format=vs.RGBS, width=32, height=24, length=1)
    with pytest.raises(vs.Error, match=r"clip: network 'static16x16' takes a static 16x16 input .* frames of 32x24; "
                                       r"use tilesize=\(16, 16\)"):
        vssr.inference(clip, nets.static(), config)
    with pytest.raises(vs.Error, match=r"tilesize: .* tiles of 16x8; use tilesize=\(16, 16\)"):
        vssr.inference(clip, nets.static(), config, tilesize=(16, 8))
    small = core.std.BlankClip(format=vs.RGBS, width=8, height=8, length=1)
    with pytest.raises(vs.Error, match="frames of 8x8; resize the clip to 16x16"):
        vssr.inference(small, nets.static(), config)
    out = vssr.inference(clip, nets.static(), config, tilesize=16, overlap=2)  # tiles of its size: works
    out.get_frame(0)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_scale_must_match_the_network(backend: str, core: vs.Core) -> None:
    clip = core.std.BlankClip(format=vs.RGBS, width=32, height=24, length=1)
    with pytest.raises(vs.Error, match=r"scale=3, but network 'shuffle_x2' makes outputs 2x its input"):
        vssr.inference(clip, nets.pixel_shuffle_x2(), BACKENDS[backend](), scale=3)


def test_zero_duration_props_are_a_clear_error(tmp_path: Path, core: vs.Core) -> None:
    clip = core.std.BlankClip(format=vs.RGBS, width=32, height=24, length=2, fpsnum=0, fpsden=1)
    clip = clip.std.SetFrameProps(_DurationNum=1, _DurationDen=0)
    out = vssr.RIFE(clip, model=rife_pkl(tmp_path), backend=ORT1)
    with pytest.raises(vs.Error, match=r"frame 0 has the duration 1/0 \(_DurationNum/_DurationDen\)"):
        out.get_frame(0)
