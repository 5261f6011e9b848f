"""The engine cache without a GPU: key, naming, atomic writes, cross-process lock, rebuilds, pruning."""

from __future__ import annotations

import dataclasses
import json
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
from vssr import cachefile, files
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
    assert record.path == path and record.intact and record.info["build_seconds"] >= 0
    assert record.info["key"] == {"k": "net"} and record.info["shape"] == "48x32"
    meta = json.loads(cachefile.meta_path(path).read_text())  # the sidecar that vouches for the bytes
    assert meta["key"] == {"k": "net"} and meta["size"] == 8 and meta["sha256"] == files.sha256_bytes(b"ENGINE-1")
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, f"{path.name}.json", f"{path.name}.meta.json"]


def test_engine_its_sidecar_vouches_for_but_the_runtime_refuses_is_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Deserializing stays the second check: bytes that match their sidecar but do not load
    (another TensorRT or GPU under the same key) are rebuilt, not an error."""
    path = tmp_path / _spec().filename
    cachefile.write(path, b"refused by the runtime", _spec().key)
    data, _ = trt_cache.load_or_build(tmp_path, _spec(), lambda: b"ENGINE-new", _strict_load)
    assert data == b"ENGINE-new" and path.read_bytes() == b"ENGINE-new" and cachefile.verified(path, _spec().key)
    assert any(str(path) in r.getMessage() and "cannot be loaded (bad magic)" in r.getMessage() for r in caplog.records)


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def build() -> bytes:
        raise BackendError("parser failed")

    with pytest.raises(BackendError):
        trt_cache.load_or_build(tmp_path, _spec(), build, _strict_load)
    assert not list(tmp_path.glob("*.engine")) and not list(tmp_path.glob(".*.tmp"))


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
    """A pruned engine takes its sidecars and runtime cache with it; damaged engines and runtime
    caches, sidecars and runtime caches without their file, and old-name caches are leftovers."""
    _, a = trt_cache.load_or_build(tmp_path, _spec("a"), lambda: b"ENGINE-a", _strict_load)
    _, b = trt_cache.load_or_build(tmp_path, _spec("b"), lambda: b"ENGINE-b", _strict_load)
    _, c = trt_cache.load_or_build(tmp_path, _spec("c"), lambda: b"ENGINE-c", _strict_load)
    kernels_a, kernels_b = trt_cache.runtime_cache_path(a), trt_cache.runtime_cache_path(b)
    cachefile.write(kernels_a, b"JIT kernels of a", {"engine": a.name})  # goes with its engine
    cachefile.write(kernels_b, b"JIT kernels of b", {"engine": b.name})
    kernels_b.write_bytes(b"JIT kernels of b, damaged")  # a damaged runtime cache of a live engine
    orphan = tmp_path / "gone.1x1.fp32-in32-out32.0123456789abcdef.engine.runtimecache"
    orphan.write_bytes(b"JIT kernels of an engine deleted by hand")
    orphan_meta = tmp_path / "gone.1x1.fp32-in32-out32.0123456789abcdef.engine.meta.json"
    orphan_meta.write_text("{}")  # a sidecar whose engine was deleted by hand
    legacy = b.with_name(b.name + ".rtxcache")  # the old name of a runtime cache, beside a live engine
    legacy.write_bytes(b"JIT kernels under the old name")
    c.write_bytes(b"ENGINE-C")  # damaged: removed, with its sidecars, by any prune
    old = time.time() - 40 * 86400
    os.utime(a, (old, old))
    os.utime(c, (old - 1, old - 1))
    records = trt_cache.list_engines(tmp_path)
    assert [(r.path, r.intact) for r in records] == [(b, True), (a, True), (c, False)]  # kernel caches are not engines

    def meta(p: Path) -> Path:
        return cachefile.meta_path(p)

    def info(p: Path) -> Path:
        return p.with_name(p.name + ".json")

    a_files = [a, meta(a), info(a), kernels_a, meta(kernels_a)]
    c_files = [c, meta(c), info(c)]
    expected = [*a_files, *c_files, kernels_b, meta(kernels_b), legacy, orphan, orphan_meta]
    assert trt_cache.prune_engines(tmp_path, unused_days=30, dry_run=True) == expected
    assert all(p.exists() for p in expected)
    assert trt_cache.prune_engines(tmp_path, unused_days=30) == expected
    assert not any(p.exists() for p in expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == [b.name, info(b).name, meta(b).name]
    assert trt_cache.prune_engines(tmp_path) == []  # nothing else is a leftover
    removed = trt_cache.prune_engines(tmp_path, keep=lambda r: r.info.get("model") != "b")
    assert removed == [b, meta(b), info(b)] and not list(tmp_path.iterdir())


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


def _unwritable(where: str, tmp_path: Path) -> tuple[Path, Any]:
    """An engine folder that cannot be written, and the undo."""
    from tests.test_cachefile import _read_only_folder

    if where == "read-only":
        return tmp_path / "ro", _read_only_folder(tmp_path)
    (tmp_path / "file").write_bytes(b"a regular file")
    return (tmp_path / "file" if where == "is-a-file" else tmp_path / "file" / "engines"), lambda: None


@pytest.mark.parametrize("where", ["read-only", "is-a-file", "under-a-file"])
def test_an_unwritable_folder_builds_in_memory(where: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An engine folder that cannot be written (a shared read-only cache, a regular file where the
    folder should be or on its path): engines are built and used, with one warning for the folder
    naming the variable, instead of an OSError."""
    folder, undo = _unwritable(where, tmp_path)
    try:
        before = sorted(tmp_path.rglob("*"))
        for name in ("one", "two"):
            data, _ = trt_cache.load_or_build(folder, _spec(name), lambda n=name: b"ENGINE-" + n.encode(), _strict_load)
            assert data == b"ENGINE-" + name.encode()
        assert sorted(tmp_path.rglob("*")) == before  # nothing written
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1 and f"cannot write the cache folder {folder}" in warnings[0]
        assert "set VSSR_ENGINE_DIR to a writable folder" in warnings[0]
    finally:
        undo()


def test_a_full_disk_uses_the_engine_for_this_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    def full_disk(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "atomic_write", full_disk)
    data, path = trt_cache.load_or_build(tmp_path, _spec("full"), lambda: b"ENGINE-full", _strict_load)
    assert data == b"ENGINE-full" and not path.exists()
    assert any(f"cannot write the cache folder {tmp_path} (No space left" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("where", ["read-only", "is-a-file"])
def test_building_ahead_of_time_needs_a_writable_folder(where: str, tmp_path: Path) -> None:
    """build_engine's point is the file: an unwritable folder is an error before minutes of building."""
    folder, undo = _unwritable(where, tmp_path)
    try:
        with pytest.raises(BackendError, match=rf"cannot write the engine {re.escape(str(folder))}/aot\..*VSSR_ENGINE_DIR"):
            trt_cache.load_or_build(folder, _spec("aot"), lambda: pytest.fail("built"), _strict_load, must_keep=True)
    finally:
        undo()


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
            cachefile.write(path, b"ENGINE-busy", _spec("busy").key)

    thread = threading.Thread(target=builder)
    thread.start()
    time.sleep(0.2)
    timer = threading.Timer(0.5, released.set)
    timer.start()
    data, _ = trt_cache.load_or_build(tmp_path, _spec("busy"), lambda: pytest.fail("built twice"), _strict_load)
    thread.join(10)
    assert data == b"ENGINE-busy"
    assert any(f"waiting for process {os.getpid()} on " in r.getMessage() and f"holds {path}.lock" in r.getMessage()
               for r in caplog.records)


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
    assert Path(f"{busy}.lock").exists()  # held: kept
    done.set()
    thread.join(10)
    assert stale in removed and not stale.exists()
    assert Path(f"{engine}.lock") not in removed and engine.exists()
    assert not Path(f"{busy}.lock").exists()  # its holder removes it when done (files.file_lock)


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


def test_cli_lists_and_prunes(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    from vssr import cli

    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "models"))  # the other caches: empty here
    trt_cache.load_or_build(tmp_path, _spec("listed"), lambda: b"ENGINE-listed" * 100, _strict_load)
    try:
        assert cli.main(["engines", "list", "--folder", str(tmp_path)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert re.fullmatch(r"tensorrt  .*/listed\..*\.engine  1300 B, last used \d{4}-\d\d-\d\d \d\d:\d\d, built in 0 s",
                            lines[0]), lines[0]
        assert lines[-1] == "1 cached item(s), 0.0 MiB"
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


# --- damaged entries: rebuilt, never used ------------------------------------------------------
DAMAGES = ["empty", "truncated", "flipped", "swapped", "swapped-with-sidecar", "no-sidecar"]
"""`swapped`: another valid entry's bytes copied over this one; `-with-sidecar`: its sidecar too;
`no-sidecar`: its writer died between the entry and the sidecar, or it predates sidecars."""


def _damage(entry: Path, how: str, other: Path) -> None:
    """test_cachefile's damages (the same for every cache kind), plus a swap that brings its sidecar."""
    from tests.test_cachefile import _damage as damage_entry

    assert other.read_bytes() != entry.read_bytes()
    damage_entry(how.removesuffix("-with-sidecar"), entry, other)
    if how == "swapped-with-sidecar":
        cachefile.meta_path(entry).write_bytes(cachefile.meta_path(other).read_bytes())


def _warned_about(entry: Path, caplog: pytest.LogCaptureFixture) -> bool:
    return any(r.levelname == "WARNING" and f"cache entry {entry} " in r.getMessage()
               and r.getMessage().endswith("building it again") for r in caplog.records)


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> Any:
    from tests.backends.fake_gpu import FakeGpu
    from vssr.backends import cuda

    gpu = FakeGpu()
    monkeypatch.setattr(cuda, "import_cudart", lambda: gpu.module)
    return gpu


def _load_and_close(folder: Path, model: Any, tile: ShapeProfile) -> None:
    """A whole filter's life on the fake GPU: engine built or loaded, warm-up run (the fake JIT
    compiles a kernel for the tile), a 24x24 tile checked against onnx.reference, runners closed
    (the runtime cache written)."""
    for runner in TRT_RTX(engine_folder=str(folder)).load(Network.load(model), tile):
        if tile.opt == (24, 24):
            nets.check_runner(runner, model)
        runner.close()


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_engine_is_rebuilt_and_equals_a_fresh_build(
    damage: str, fake_gpu: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Real TensorRT-RTX builds (deterministic, 0.2 s on the CPU) on the fake GPU. The fake runtime
    deserializes anything, as a real one may for a valid engine of another network: only the
    sidecar stands between the damaged bytes and the GPU."""
    from tests.backends.fake_gpu import run_built_graphs, trt

    model, tile = nets.conv3x3(), ShapeProfile.static(24, 24)
    run_built_graphs(fake_gpu, monkeypatch)  # a deserialized engine runs the graph vssr built for it
    runtime = trt.Runtime.return_value
    fresh, used, other = tmp_path / "fresh", tmp_path / "used", tmp_path / "other"
    for folder, net in ((fresh, model), (used, model), (other, nets.conv3x3(seed=1))):
        _load_and_close(folder, net, tile)
    (reference,), (engine,), (swap,) = (list(f.glob("*.engine")) for f in (fresh, used, other))
    _damage(engine, damage, swap)
    runtime.deserialize_cuda_engine.reset_mock()
    caplog.clear()
    _load_and_close(used, model, tile)
    (loaded,) = [call.args[0] for call in runtime.deserialize_cuda_engine.call_args_list]
    assert loaded == engine.read_bytes() == reference.read_bytes()  # the rebuilt engine, as a fresh build
    assert _warned_about(engine, caplog)
    key = json.loads(cachefile.meta_path(reference).read_text())["key"]
    assert cachefile.verified(engine, key) and json.loads(cachefile.meta_path(engine).read_text())["key"] == key
    assert sorted(p.name for p in used.iterdir()) == sorted(p.name for p in fresh.iterdir())  # no leftovers


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_runtime_cache_is_never_used_and_rebuilt_as_fresh(
    damage: str, fake_gpu: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """TensorRT-RTX's runtime cache on the fake JIT (a kernel per shape, serialized as text): a
    damaged one is never handed to `IRuntimeCache.deserialize`; the cache starts empty and the
    file written at the end equals what a fresh run writes, with a sidecar that vouches for it."""
    from tests.backends.fake_gpu import run_built_graphs

    model = nets.conv3x3()
    tiles = {"fresh": ShapeProfile.static(24, 24), "used": ShapeProfile.static(24, 24),
             "other": ShapeProfile.static(32, 32)}
    run_built_graphs(fake_gpu, monkeypatch)
    for name, tile in tiles.items():
        _load_and_close(tmp_path / name, model, tile)
    kernels = {name: trt_cache.runtime_cache_path(next((tmp_path / name).glob("*.engine"))) for name in tiles}
    assert kernels["used"].read_bytes() == b"1x3x24x24" and kernels["other"].read_bytes() == b"1x3x32x32"
    _damage(kernels["used"], damage, kernels["other"])
    caplog.clear()
    fake_gpu.kernel_caches.clear()
    _load_and_close(tmp_path / "used", model, tiles["used"])
    (cache,) = fake_gpu.kernel_caches
    cache.deserialize.assert_not_called()
    assert _warned_about(kernels["used"], caplog)
    assert kernels["used"].read_bytes() == kernels["fresh"].read_bytes() == b"1x3x24x24"
    meta_used, meta_fresh = (json.loads(cachefile.meta_path(kernels[n]).read_text()) for n in ("used", "fresh"))
    assert meta_used["key"] == meta_fresh["key"] and meta_used["sha256"] == meta_fresh["sha256"]
    engine = kernels["used"].with_name(kernels["used"].name.removesuffix(".runtimecache"))
    assert meta_used["key"]["engine_sha256"] == files.sha256_file(engine)  # kernels of this very engine
    assert cachefile.verified(kernels["used"], meta_used["key"])


def test_kernels_of_a_replaced_engine_are_not_offered_to_it(
    fake_gpu: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The runtime cache is keyed on its engine's sha256: when the engine is rebuilt into other
    bytes, the kernels compiled for the old one start over."""
    from tests.backends.fake_gpu import run_built_graphs

    model, tile = nets.conv3x3(), ShapeProfile.static(24, 24)
    run_built_graphs(fake_gpu, monkeypatch)
    _load_and_close(tmp_path, model, tile)
    (engine,) = tmp_path.glob("*.engine")
    kernels = trt_cache.runtime_cache_path(engine)
    key = json.loads(cachefile.meta_path(engine).read_text())["key"]
    cachefile.write(engine, engine.read_bytes() + b"\0", key)  # another valid engine under the same key
    fake_gpu.kernel_caches.clear()
    _load_and_close(tmp_path, model, tile)
    fake_gpu.kernel_caches[0].deserialize.assert_not_called()
    assert any(f"cache entry {kernels} was written for another key" in r.getMessage() for r in caplog.records)
    assert json.loads(cachefile.meta_path(kernels).read_text())["key"]["engine_sha256"] == files.sha256_file(engine)


# --- writers killed mid-write: the next run cleans up -------------------------------------------
_KILLED_WRITER = """
import os, sys, time
from pathlib import Path
from tests import nets
from vssr.backends.trt import TRT_RTX
from vssr.backends.trt.cache import RuntimeCache
from vssr.network import Network
from vssr.types import ShapeProfile

folder, kind, marker = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
real_fsync = os.fsync

def fsync(fd):  # the bytes are in the temporary file, not yet renamed: tell the test, wait for the kill
    real_fsync(fd)
    marker.write_text("in the temporary file")
    time.sleep(60)

if kind == "engine":
    os.fsync = fsync
engine = TRT_RTX(engine_folder=str(folder)).build_engine(Network.load(nets.conv3x3()), ShapeProfile.static(16, 16))

class Kernels:  # TensorRT-RTX's IRuntimeCache as the fake JIT leaves it: kernels as bytes
    def serialize(self): return b"1x3x16x16"
    def deserialize(self, blob): return True

class RuntimeConfig:
    def create_runtime_cache(self): return Kernels()
    def set_runtime_cache(self, cache): return True

os.fsync = fsync
kernels = RuntimeCache(engine.with_name(engine.name + ".runtimecache"))
kernels.attach(RuntimeConfig())
kernels.release()
"""


@pytest.mark.parametrize("kind", ["engine", "runtime cache"])
def test_a_writer_killed_mid_write_leaves_what_the_next_run_cleans(kind: str, tmp_path: Path) -> None:
    """SIGKILL while the bytes are in the temporary file (its lock and the entry's lock held): the
    next run removes both leftovers and leaves exactly the engine, its sidecars, as a fresh build."""
    import signal
    import subprocess
    import sys

    folder, marker, fresh = tmp_path / "engines", tmp_path / "marker", tmp_path / "fresh"
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(folder), kind.split()[0], str(marker)],
                             cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), child.stderr.read().decode() if child.poll() is not None else "no write in 120 s"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    left = sorted(p.name for p in folder.iterdir())
    assert [n for n in left if n.endswith(".tmp")] and [n for n in left if n.endswith(".lock")], left
    network, tile = Network.load(nets.conv3x3()), ShapeProfile.static(16, 16)
    engine = TRT_RTX(engine_folder=str(folder)).build_engine(network, tile)  # the next run
    reference = TRT_RTX(engine_folder=str(fresh)).build_engine(network, tile)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in fresh.iterdir()) == sorted(
        [engine.name, f"{engine.name}.json", f"{engine.name}.meta.json"])
    assert engine.read_bytes() == reference.read_bytes()
