"""The engine cache without a GPU: key, naming, atomic writes, cross-process lock, rebuilds, pruning."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests import nets
from vssr import files
from vssr.backends.cuda import DeviceInfo
from vssr.backends.trt import TRT, TRT_RTX
from vssr.backends.trt import cache as trt_cache
from vssr.backends.trt.plan import BuildPlan, EngineSpec, engine_spec, resolve_profile
from vssr.backends.trt.runner import select_profile
from vssr.errors import BackendError, ConfigError, MissingBackendError
from vssr.network import Network
from vssr.types import ShapeProfile

trt = pytest.importorskip("tensorrt_rtx")

TILE = ShapeProfile.static(48, 32)
KEY_TILE = ShapeProfile.static(96, 80)  # above the 64x64 default minimum, so static != dynamic
GPU = DeviceInfo("NVIDIA GeForce RTX 4090", (8, 9))

# every config field, with a value different from its default
BUILD_CHANGES: dict[str, object] = {
    "fp16": True,
    "bf16": True,
    "output_dtype": "float16",
    "static_shape": False,
    "min_shapes": (16, 16),
    "opt_shapes": (80, 72),
    "max_shapes": (128, 128),
    "workspace": 256,
    "builder_optimization_level": 5,
    "max_aux_streams": 2,
    "tf32": True,
}
RUNTIME_CHANGES: dict[str, object] = {"num_streams": 3, "use_cuda_graph": True, "device_id": 1, "engine_folder": "/x",
                                   "runtime_cache": False}


def _digest(config: TRT_RTX, network: Network | None = None, device: DeviceInfo | None = GPU,
            version: str = trt.__version__, io_dtype: np.dtype | None = None) -> str:
    network = network or Network.load(nets.pixel_shuffle_x2())
    plan = BuildPlan.make(config, network, KEY_TILE, io_dtype)
    return engine_spec(config, version, plan, device).digest


def test_every_field_is_classified() -> None:
    names = {f.name for f in dataclasses.fields(TRT_RTX)}
    assert names == set(BUILD_CHANGES) | set(RUNTIME_CHANGES), "classify new fields here"


@pytest.mark.parametrize("name", sorted(BUILD_CHANGES))
def test_every_build_option_changes_the_key(name: str) -> None:
    # a static engine is built for the tile: shape settings key dynamic ones
    base = TRT_RTX(static_shape=False) if name.endswith("_shapes") else TRT_RTX()
    assert _digest(dataclasses.replace(base, **{name: BUILD_CHANGES[name]})) != _digest(base)


def test_static_engine_is_built_for_the_tile() -> None:
    """opt_shapes other than the tile with static_shape=True would build an engine that cannot run
    the tiles: refused when the filter is created, naming both ways out."""
    with pytest.raises(ValueError, match=r"opt_shapes \(80, 72\) with static_shape=True.*\(96, 80\).*static_shape=False"):
        _digest(TRT_RTX(opt_shapes=(80, 72)))
    assert _digest(TRT_RTX(opt_shapes=(96, 80))) == _digest(TRT_RTX())


@pytest.mark.parametrize("name", sorted(RUNTIME_CHANGES))
def test_runtime_options_do_not_change_the_key(name: str) -> None:
    base = TRT_RTX()
    assert _digest(dataclasses.replace(base, **{name: RUNTIME_CHANGES[name]})) == _digest(base)


def test_model_runtime_and_device_change_the_key() -> None:
    base = TRT_RTX()
    reference = _digest(base)
    assert _digest(base, Network.load(nets.pixel_shuffle_x2(seed=1))) != reference
    assert _digest(base, device=DeviceInfo(GPU.name, (12, 0))) != reference
    assert _digest(base, device=DeviceInfo("NVIDIA RTX A4000", GPU.compute_capability)) != reference
    assert _digest(base, device=None) != reference
    assert _digest(base, version="1.8.0") != reference


def test_equivalent_settings_share_an_engine() -> None:
    """The key holds the resolved build, not the spelling: opt_shapes = the tile is the default."""
    assert _digest(TRT_RTX(opt_shapes=(96, 80))) == _digest(TRT_RTX())
    fp16_io = np.dtype(np.float16)
    assert _digest(TRT_RTX(), io_dtype=fp16_io) == _digest(TRT_RTX(fp16=True), io_dtype=fp16_io)  # fp16 follows the clip


def test_file_name_is_readable_plus_hash() -> None:
    network = Network.load(nets.pixel_shuffle_x2())
    plan = BuildPlan.make(TRT_RTX(fp16=True), network, TILE)
    name = engine_spec(TRT_RTX(), trt.__version__, plan, GPU).filename
    assert re.fullmatch(r"shuffle_x2\.48x32\.fp16-in32-out32\.[0-9a-f]{16}\.engine", name), name
    plan = BuildPlan.make(TRT_RTX(static_shape=False, max_shapes=(96, 64)), network, TILE)
    name = engine_spec(TRT_RTX(), trt.__version__, plan, GPU).filename
    assert name.startswith("shuffle_x2.48x32-48x32-96x64.fp32-in32-out32."), name


def test_missing_tensorrt_says_how_to_install() -> None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(MissingBackendError, match=r'pip install -e "\.\[trt\]" in the vssr checkout'):
            TRT()
    else:  # pragma: no cover - a machine with full TensorRT
        pytest.skip("tensorrt is installed here")


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="exclusive"):
        TRT_RTX(fp16=True, bf16=True)
    with pytest.raises(ValueError, match="output_dtype"):
        TRT_RTX(output_dtype="int8")
    with pytest.raises(ValueError, match="min_shapes"):
        TRT_RTX(min_shapes=(0, 0))


# --- profiles ---------------------------------------------------------------------------------
def test_profile_defaults_are_sane() -> None:
    network = Network.load(nets.strided_x1())  # multiple of 2
    tile = ShapeProfile.static(200, 120)
    assert resolve_profile(TRT_RTX(), network, tile) == tile
    dynamic = resolve_profile(TRT_RTX(static_shape=False), network, tile)
    assert dynamic == ShapeProfile((64, 64), (200, 120), (200, 120))  # never 0x0, opt = max = tile
    small = resolve_profile(TRT_RTX(static_shape=False), network, ShapeProfile.static(30, 20))
    assert small.min == (30, 20)  # never above the tile
    wide = resolve_profile(TRT_RTX(static_shape=False, max_shapes=(1920, 1080)), network, tile)
    assert wide.max == (1920, 1080) and wide.opt == (200, 120)
    varying = resolve_profile(TRT_RTX(), network, ShapeProfile((100, 100), (200, 120), (200, 120)))
    assert varying.min == (64, 64) and varying.max == (200, 120)
    # every way a profile can miss the tiles names the setting to change
    with pytest.raises(ConfigError, match=r"max_shapes \(100, 100\): its width is below the tiles \(200x120\)"):
        resolve_profile(TRT_RTX(static_shape=False, opt_shapes=(80, 80), max_shapes=(100, 100)), network, tile)
    with pytest.raises(ConfigError, match=r"min_shapes \(256, 64\): its width is above the tiles"):
        resolve_profile(TRT_RTX(static_shape=False, min_shapes=(256, 64), max_shapes=(512, 512)), network, tile)
    with pytest.raises(ConfigError, match=r"opt_shapes \(300, 300\): its width must lie between"):
        resolve_profile(TRT_RTX(static_shape=False, opt_shapes=(300, 300), max_shapes=(250, 250)), network, tile)


@pytest.mark.parametrize(("settings", "named"), [
    ({"workspace": 1.5}, "workspace"), ({"workspace": True}, "workspace"), ({"num_streams": 2.0}, "num_streams"),
    ({"builder_optimization_level": 2.5}, "builder_optimization_level"), ({"max_aux_streams": -1}, "max_aux_streams"),
    ({"fp16": "yes"}, "fp16"), ({"device_id": -1}, "device_id"), ({"min_shapes": 64, "static_shape": False}, "min_shapes"),
    ({"max_shapes": (1920, 0), "static_shape": False}, "max_shapes"), ({"max_shapes": (1920, 1080)}, "static_shape=False"),
    ({"tf32": 1}, "tf32"), ({"runtime_cache": "no"}, "runtime_cache"),
])
def test_bad_settings_are_named_when_the_config_is_made(settings: dict[str, object], named: str) -> None:
    """A wrong type or value fails where the script makes the config, naming it, not later inside
    TensorRT (workspace=1.5 was a TypeError in the build; static_shape=True with max_shapes was
    silently dynamic)."""
    with pytest.raises(ValueError, match=re.escape(named)):
        TRT_RTX(**settings)  # type: ignore[arg-type]


def test_numpy_integers_are_integers() -> None:
    import numpy as np

    config = TRT_RTX(static_shape=False, max_shapes=(np.int64(1920), 1088), num_streams=np.int32(2))
    assert config.max_shapes == (1920, 1088) and config.num_streams == 2


def test_profile_errors_reach_the_script_as_vs_errors(tmp_path: Path) -> None:
    import vapoursynth as vs

    import vssr

    clip = vs.core.std.BlankClip(format=vs.RGBS, width=64, height=48, length=1)
    with pytest.raises(vs.Error, match=r"vssr.inference: max_shapes \(32, 32\): its width is below the tiles"):
        vssr.inference(clip, nets.conv3x3(), TRT_RTX(engine_folder=str(tmp_path), static_shape=False, max_shapes=(32, 32)))


def test_dynamic_profile_selection_per_tile() -> None:
    profiles = [((64, 64), (960, 540), (1920, 1080)), ((32, 32), (256, 256), (512, 512))]
    assert select_profile(profiles, 256, 256) == 1  # opt matches exactly
    assert select_profile(profiles, 300, 300) == 0  # first covering
    assert select_profile(profiles, 40, 40) == 1
    with pytest.raises(BackendError, match="no optimization profile"):
        select_profile(profiles, 4000, 100)


# --- load_or_build ----------------------------------------------------------------------------
def _spec(name: str = "net") -> EngineSpec:
    return EngineSpec(name, TILE, "fp32-in32-out32", {"k": name})


def _strict_load(data: bytes) -> bytes:
    if not data.startswith(b"ENGINE"):
        raise ValueError("bad magic")
    return data


def test_builds_once_then_loads(tmp_path: Path) -> None:
    calls: list[int] = []

    def build() -> bytes:
        calls.append(1)
        return b"ENGINE-1"

    first, path = trt_cache.load_or_build(tmp_path, _spec(), build, _strict_load)
    second, _ = trt_cache.load_or_build(tmp_path, _spec(), build, _strict_load)
    assert first == second == b"ENGINE-1" and len(calls) == 1
    (record,) = trt_cache.list_engines(tmp_path)
    assert record.path == path and record.info["sha256"] == files.sha256_bytes(b"ENGINE-1")
    assert record.info["key"] == {"k": "net"} and record.info["shape"] == "48x32"


def test_corrupt_engine_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / _spec().filename
    path.write_bytes(b"truncated garbage")
    data, _ = trt_cache.load_or_build(tmp_path, _spec(), lambda: b"ENGINE-new", _strict_load)
    assert data == b"ENGINE-new" and path.read_bytes() == b"ENGINE-new"


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def build() -> bytes:
        raise BackendError("parser failed")

    with pytest.raises(BackendError):
        trt_cache.load_or_build(tmp_path, _spec(), build, _strict_load)
    assert not list(tmp_path.glob("*.engine")) and not list(tmp_path.glob(".*.tmp"))


def _die_mid_write(path: str) -> None:
    def writer(f: Any) -> None:
        f.write(b"ENGINE-half")
        f.flush()
        os._exit(3)  # the process dies with the temp file half written

    files.atomic_write(path, writer)


def test_crash_mid_write_never_leaves_a_torn_engine(tmp_path: Path) -> None:
    path = tmp_path / _spec().filename
    path.write_bytes(b"ENGINE-old")
    process = multiprocessing.get_context("spawn").Process(target=_die_mid_write, args=(str(path),))
    process.start()
    process.join(30)
    assert process.exitcode == 3
    assert path.read_bytes() == b"ENGINE-old"  # the old file, whole
    stale = list(tmp_path.glob(".*.tmp"))
    assert stale  # the dead writer's temp file, never renamed; prune removes it once old
    old = time.time() - 2 * 86400
    os.utime(stale[0], (old, old))
    assert stale[0] in trt_cache.prune_engines(tmp_path) and not stale[0].exists()


def _build_counted(folder: str, counter: str, queue: Any) -> None:
    def build() -> bytes:
        with open(counter, "a") as f:
            f.write("built\n")
        time.sleep(0.5)  # long enough for the other process to arrive and wait on the lock
        return b"ENGINE-" + str(os.getpid()).encode()

    data, _ = trt_cache.load_or_build(Path(folder), _spec("shared"), build, _strict_load)
    queue.put(data)


def test_two_processes_build_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    counter = tmp_path / "count.txt"
    processes = [context.Process(target=_build_counted, args=(str(tmp_path), str(counter), queue)) for _ in range(2)]
    for p in processes:
        p.start()
    results = [queue.get(timeout=60) for _ in processes]
    for p in processes:
        p.join(30)
    assert counter.read_text().count("built") == 1
    assert results[0] == results[1]


def test_list_and_prune(tmp_path: Path) -> None:
    _, a = trt_cache.load_or_build(tmp_path, _spec("a"), lambda: b"ENGINE-a", _strict_load)
    _, b = trt_cache.load_or_build(tmp_path, _spec("b"), lambda: b"ENGINE-b", _strict_load)
    kernels_a = trt_cache.runtime_cache_path(a)
    kernels_a.write_bytes(b"JIT kernels of a")  # TensorRT-RTX's runtime cache goes with its engine
    orphan = tmp_path / "gone.1x1.fp32-in32-out32.0123456789abcdef.engine.runtimecache"
    orphan.write_bytes(b"JIT kernels of an engine deleted by hand")
    legacy = b.with_name(b.name + ".rtxcache")  # the old name of a runtime cache, beside a live engine
    legacy.write_bytes(b"JIT kernels under the old name")
    old = time.time() - 40 * 86400
    os.utime(a, (old, old))
    assert [r.path for r in trt_cache.list_engines(tmp_path)] == [b, a]  # kernel caches are not engines
    assert trt_cache.prune_engines(tmp_path, unused_days=30, dry_run=True) == [a, orphan, legacy]
    assert a.exists() and orphan.exists() and legacy.exists()
    removed = trt_cache.prune_engines(tmp_path, unused_days=30)
    assert a in removed and not a.exists() and b.exists()
    assert kernels_a in removed and not kernels_a.exists() and orphan in removed and not orphan.exists()
    assert legacy in removed and not legacy.exists()
    removed = trt_cache.prune_engines(tmp_path, keep=lambda r: r.info.get("model") != "b")
    assert b in removed and not list(tmp_path.glob("*.engine*"))


def test_a_lock_its_holder_deletes_still_excludes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """prune_engines deletes an engine's lock file as its last act while holding it. A process already
    waiting on that file and one arriving afterwards (which creates a new file) must not both get in."""
    path = tmp_path / "x.engine"
    inside: list[str] = []
    entered: list[str] = []
    overlaps: list[tuple[str, ...]] = []
    held, waiting = threading.Event(), threading.Event()
    real_flock = files.fcntl.flock

    def flock(fd: int, operation: int) -> None:
        if threading.current_thread().name == "waiter" and operation & files.fcntl.LOCK_EX:
            waiting.set()  # trying the pruner's file (file_lock polls it without blocking)
        real_flock(fd, operation)

    monkeypatch.setattr(files.fcntl, "flock", flock)

    def critical() -> None:
        with files.file_lock(path):
            tag = threading.current_thread().name
            entered.append(tag)
            inside.append(tag)
            if len(inside) > 1:
                overlaps.append(tuple(inside))
            time.sleep(1.0)  # long enough for the other to arrive even on a loaded machine
            inside.remove(tag)

    def pruner() -> None:
        with files.file_lock(path):
            held.set()
            assert waiting.wait(10)
            time.sleep(0.2)  # let the waiter's flock block
            Path(f"{path}.lock").unlink()

    first = threading.Thread(target=pruner, name="pruner")
    first.start()
    assert held.wait(10)
    waiter = threading.Thread(target=critical, name="waiter")
    waiter.start()
    first.join(20)
    newcomer = threading.Thread(target=critical, name="newcomer")
    newcomer.start()
    for thread in (waiter, newcomer):
        thread.join(20)
    assert not first.is_alive() and not waiter.is_alive() and not newcomer.is_alive()
    assert sorted(entered) == ["newcomer", "waiter"] and not overlaps


def test_an_interrupt_while_locking_leaves_no_lock_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (or any error) right after flock returns: the descriptor is closed, the lock released,
    whatever keeps the traceback alive (an editor keeps sys.last_traceback)."""
    path = tmp_path / "x.engine"
    real_fstat = files.os.fstat
    calls = {"n": 0}

    def fstat(fd: int) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return real_fstat(fd)

    monkeypatch.setattr(files.os, "fstat", fstat)
    try:
        with files.file_lock(path):
            pytest.fail("the interrupted lock was entered")
    except KeyboardInterrupt as interrupt:
        kept = interrupt  # the traceback, and its frames, stay alive
    got: list[bool] = []

    def lock_again() -> None:
        with files.file_lock(path):
            got.append(True)

    thread = threading.Thread(target=lock_again)
    thread.start()
    thread.join(5)
    assert got == [True] and kept is not None  # not blocked by a descriptor the traceback kept


def test_engine_loads_where_its_use_cannot_be_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another user's engine, or a read-only folder: utime fails, the engine still loads."""
    trt_cache.load_or_build(tmp_path, _spec(), lambda: b"ENGINE-a", _strict_load)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(trt_cache.os, "utime", refuse)
    data, _ = trt_cache.load_or_build(tmp_path, _spec(), lambda: pytest.fail("rebuilt"), _strict_load)
    assert data == b"ENGINE-a"


def test_a_read_only_folder_builds_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """An engine folder that cannot be written (a shared read-only cache, a full disk): the engine is
    built and used, with a warning, instead of a PermissionError."""
    def no_lock(path: Any, on_wait: Any = None) -> Any:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(trt_cache.files, "file_lock", no_lock)
    data, _ = trt_cache.load_or_build(tmp_path, _spec("ro"), lambda: b"ENGINE-ro", _strict_load)
    assert data == b"ENGINE-ro" and not list(tmp_path.glob("*.engine"))
    assert any("cannot write engines" in r.getMessage() for r in caplog.records)
    monkeypatch.undo()

    def full_disk(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(trt_cache, "_write", full_disk)
    data, _ = trt_cache.load_or_build(tmp_path, _spec("full"), lambda: b"ENGINE-full", _strict_load)
    assert data == b"ENGINE-full" and any("cannot save the engine" in r.getMessage() for r in caplog.records)


def test_building_ahead_of_time_needs_a_writable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """build_engine's point is the file: an unwritable folder is an error before minutes of building."""
    def no_lock(path: Any, on_wait: Any = None) -> Any:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(trt_cache.files, "file_lock", no_lock)
    with pytest.raises(BackendError, match="cannot write the engine"):
        trt_cache.load_or_build(tmp_path, _spec("aot"), lambda: pytest.fail("built"), _strict_load, must_keep=True)


@pytest.mark.parametrize(("code", "outcome"), [(37, "unlocked"), (5, "error")])  # ENOLCK, EIO
def test_lock_errors_other_than_an_unwritable_folder(
    code: int, outcome: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No locks on the file system (NFS without lockd): build and save without one (writes stay
    atomic). Any other error is not taken for a read-only folder."""
    import errno

    assert (code, outcome) in ((errno.ENOLCK, "unlocked"), (errno.EIO, "error"))

    def failing(path: Any, on_wait: Any = None) -> Any:
        raise OSError(code, "lock failed")

    monkeypatch.setattr(trt_cache.files, "file_lock", failing)
    if outcome == "error":
        with pytest.raises(BackendError, match="lock failed"):
            trt_cache.load_or_build(tmp_path, _spec("e"), lambda: pytest.fail("built"), _strict_load)
        return
    data, path = trt_cache.load_or_build(tmp_path, _spec("nolock"), lambda: b"ENGINE-nolock", _strict_load)
    assert data == b"ENGINE-nolock" and path.read_bytes() == b"ENGINE-nolock"  # saved


def test_waiting_for_another_build_is_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A second vspipe waiting minutes on another's build says why it is idle."""
    caplog.set_level("INFO", logger="vssr")
    path = tmp_path / _spec("busy").filename
    released = threading.Event()

    def builder() -> None:
        with files.file_lock(path):
            released.wait(10)
            trt_cache._write(path, _spec("busy"), b"ENGINE-busy", 0.0)

    thread = threading.Thread(target=builder)
    thread.start()
    time.sleep(0.2)
    timer = threading.Timer(0.5, released.set)
    timer.start()
    data, _ = trt_cache.load_or_build(tmp_path, _spec("busy"), lambda: pytest.fail("built twice"), _strict_load)
    thread.join(10)
    assert data == b"ENGINE-busy"
    assert any("waiting for another process building" in r.getMessage() for r in caplog.records)


def test_prune_removes_idle_locks_of_gone_files_only(tmp_path: Path) -> None:
    _, engine = trt_cache.load_or_build(tmp_path, _spec("kept"), lambda: b"ENGINE-kept", _strict_load)
    stale = tmp_path / "gone.1x1.fp32-in32-out32.0123456789abcdef.engine.lock"
    stale.touch()
    busy = tmp_path / "building.1x1.fp32-in32-out32.0123456789abcdef.engine"
    holding, done = threading.Event(), threading.Event()

    def build() -> None:  # a build in progress holds its lock; its engine does not exist yet
        with files.file_lock(busy):
            holding.set()
            done.wait(10)

    thread = threading.Thread(target=build)
    thread.start()
    holding.wait(10)
    assert trt_cache.prune_engines(tmp_path, dry_run=True) == [stale] and stale.exists()  # not the busy one
    removed = trt_cache.prune_engines(tmp_path)
    done.set()
    thread.join(10)
    assert stale in removed and not stale.exists()
    assert Path(f"{busy}.lock").exists() and Path(f"{engine}.lock") not in removed and engine.exists()


def test_engine_folder_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VSSR_ENGINE_DIR", str(tmp_path))
    assert trt_cache.engine_folder(None) == tmp_path
    assert trt_cache.engine_folder("/elsewhere") == Path("/elsewhere")


def test_timing_cache_is_shared_and_merged_under_its_lock(tmp_path: Path) -> None:
    """One file per TensorRT version + GPU; each build merges its timings into it (TensorRT 10 path)."""
    from vssr.backends.trt.build import attach_timing_cache, save_timing_cache

    class Cache:
        def __init__(self, data: bytes) -> None:
            self.entries = set(data.decode().split()) if data else set()

        def combine(self, other: Cache, ignore_mismatch: bool) -> bool:
            self.entries |= other.entries
            return True

        def serialize(self) -> bytes:
            return " ".join(sorted(self.entries)).encode()

    class Config:
        def create_timing_cache(self, data: bytes) -> Cache:
            return Cache(data)

        def set_timing_cache(self, cache: Cache, ignore_mismatch: bool) -> bool:
            self.cache = cache
            return True

    path = trt_cache.timing_cache_path(tmp_path, "tensorrt-10.13.0", "NVIDIA RTX 4090-sm89")
    assert path.parent == tmp_path / "timing" and path.name == "tensorrt-10-13-0.NVIDIA-RTX-4090-sm89.timing"
    first, second = Config(), Config()
    a = attach_timing_cache(first, path)
    b = attach_timing_cache(second, path)  # two builds started from the same (absent) file
    a.entries.add("conv-tactic-1")
    b.entries.add("deconv-tactic-7")
    save_timing_cache(first, a, path)
    save_timing_cache(second, b, path)
    assert path.read_bytes() == b"conv-tactic-1 deconv-tactic-7"  # merged, not overwritten
    assert attach_timing_cache(Config(), path).entries == {"conv-tactic-1", "deconv-tactic-7"}


def test_runtime_cache_is_saved_when_vspipe_frees_the_script(tmp_path: Path) -> None:
    """VapourSynth never closes a filter; the runtime cache is written by the finalizer that runs
    when vspipe frees the script's nodes (the runners, held by a ModifyFrame callback)."""
    import subprocess
    import sys

    target = tmp_path / "model.engine.runtimecache"
    script = tmp_path / "kernels.vpy"
    script.write_text(
        "import vapoursynth as vs\n"
        "from vssr.backends.trt.cache import RuntimeCache\n"
        "class Cache:  # stands in for TensorRT-RTX's IRuntimeCache: compiled kernels as bytes\n"
        "    def serialize(self): return b'kernels compiled while the script ran'\n"
        "    def deserialize(self, blob): return True\n"
        "class RuntimeConfig:\n"
        "    def create_runtime_cache(self): return Cache()\n"
        "    def set_runtime_cache(self, cache): return True\n"
        f"kernels = RuntimeCache(__import__('pathlib').Path({str(target)!r}))\n"
        "kernels.attach(RuntimeConfig())\n"
        "def frame(n, f, kernels=kernels): return f  # the callback holds it, as runners are held\n"
        "clip = vs.core.std.BlankClip(format=vs.GRAY8, width=16, height=16, length=2)\n"
        "vs.core.std.ModifyFrame(clip, clip, frame).set_output()\n"
        "del kernels\n"
    )
    vspipe = Path(sys.executable).with_name("vspipe")
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([str(vspipe), "-c", "y4m", str(script), "-"], capture_output=True, timeout=120,
                         cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, check=False)
    assert run.returncode == 0, run.stderr.decode()
    assert target.read_bytes() == b"kernels compiled while the script ran"


def test_cli_lists_and_prunes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from vssr import cli

    trt_cache.load_or_build(tmp_path, _spec("listed"), lambda: b"ENGINE-listed" * 100, _strict_load)
    try:
        assert cli.main(["engines", "list", "--folder", str(tmp_path)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert re.fullmatch(r"listed\..*\.engine  0\.0 MiB, last used \d{4}-\d\d-\d\d \d\d:\d\d, built in 0 s", lines[0])
        assert lines[-1] == f"1 engine(s) in {tmp_path}"
        assert cli.main(["engines", "prune", "--folder", str(tmp_path), "--unused-days", "-1"]) == 2
        assert "--unused-days must be >= 0" in capsys.readouterr().err
        assert cli.main(["engines", "prune", "--folder", str(tmp_path), "--unused-days", "0"]) == 0
        assert not list(tmp_path.glob("*.engine"))
    finally:
        logging.getLogger("vssr").setLevel(logging.INFO)  # the CLI quiets it; other tests expect INFO


def test_a_refused_timing_cache_is_an_error(tmp_path: Path) -> None:
    """set_timing_cache returns False for a cache of another device (ignore_mismatch=False): fatal,
    as in Polygraphy, rather than an engine built on another GPU's timings without a word."""
    from unittest import mock

    from vssr.backends.trt.build import attach_timing_cache

    config = mock.create_autospec(trt.IBuilderConfig, instance=True)
    config.set_timing_cache.return_value = False
    path = tmp_path / "timing" / "x.timing"
    with pytest.raises(BackendError, match=r"refused the timing cache .*x\.timing.*delete it"):
        attach_timing_cache(config, path)
    config.set_timing_cache.return_value = True
    assert attach_timing_cache(config, path) is config.create_timing_cache.return_value
