"""Verified cache entries: every cache kind (converted ONNX, int8 ONNX, OpenVINO compiled models)
rebuilds a damaged entry (0 bytes, cut, flipped bytes, another valid file copied over it, no
sidecar) with a warning naming it, and the result equals a fresh build. Leftovers of killed
writers are removed; a waiter names the lock holder and gives up after VSSR_LOCK_TIMEOUT."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests import nets
from tests.arch.test_compact import random_state
from tests.weights import torchsave
from vssr import cachefile, files, zoo
from vssr.network import Network
from vssr.types import ShapeProfile

ROOT = Path(__file__).resolve().parents[1]
FUNC = "RealESRGAN"


def _damage(kind: str, entry: Path, other: Path) -> None:
    data = entry.read_bytes()
    if kind == "empty":
        entry.write_bytes(b"")
    elif kind == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif kind == "flipped":
        middle = len(data) // 2
        entry.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 100]) + data[middle + 100:])
    elif kind == "swapped":  # another valid entry of the same kind copied over this one
        entry.write_bytes(other.read_bytes())
    elif kind == "no-sidecar":  # a writer killed between the entry and its sidecar
        cachefile.meta_path(entry).unlink()
    else:
        raise AssertionError(kind)


DAMAGE = ["empty", "truncated", "flipped", "swapped", "no-sidecar"]


def _rebuilt(caplog: pytest.LogCaptureFixture, entry: Path) -> bool:
    return any(str(entry) in r.getMessage() and "building it again" in r.getMessage() for r in caplog.records)


# --- the module -----------------------------------------------------------------------------------
def test_entry_and_sidecar_roundtrip(tmp_path: Path) -> None:
    entry = tmp_path / "a.bin"
    calls: list[int] = []

    def build() -> bytes:
        calls.append(1)
        return b"payload"

    assert cachefile.load_or_build(entry, {"k": 1}, build, bytes.decode, env="X") == "payload"
    assert cachefile.load_or_build(entry, {"k": 1}, build, bytes.decode, env="X") == "payload"
    assert len(calls) == 1 and cachefile.verified(entry, {"k": 1}) and not cachefile.verified(entry, {"k": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "a.bin.meta.json"]  # no lock file left


def test_a_refused_entry_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Bytes that verify but that the runtime refuses (it changed under the same key) are rebuilt."""
    entry = tmp_path / "a.bin"
    cachefile.write(entry, b"old", {"k": 1})

    def load(data: bytes) -> bytes:
        if data == b"old":
            raise ValueError("stale")
        return data

    assert cachefile.load_or_build(entry, {"k": 1}, lambda: b"new", load, env="X") == b"new"
    assert any("cannot be loaded (stale)" in r.getMessage() for r in caplog.records)


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def fail() -> bytes:
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError, match="conversion failed"):
        cachefile.load_or_build(tmp_path / "a.bin", {"k": 1}, fail, bytes, env="X")
    assert list(tmp_path.iterdir()) == []


# --- converted ONNX ---------------------------------------------------------------------------------
def _pth(path: Path, seed: int) -> Path:
    state = random_state(3, 4, 1, 2, seed=seed)
    return torchsave.save_zip({"params": {k: torchsave.Tensor.of(v) for k, v in state.items()}}, path)


@pytest.mark.parametrize("kind", DAMAGE)
def test_converted_onnx_damaged(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "fresh"))
    fresh = zoo.network("realesrgan", _pth(tmp_path / "a.pth", 0), func=FUNC)
    other_net = zoo.network("realesrgan", _pth(tmp_path / "b.pth", 1), func=FUNC)
    models = tmp_path / "fresh"
    entry = next(models.glob("realesrgan-a.*.onnx"))
    other = next(models.glob("realesrgan-b.*.onnx"))
    assert fresh.digest != other_net.digest
    _damage(kind, entry, other)
    again = zoo.network("realesrgan", tmp_path / "a.pth", func=FUNC)
    assert again.digest == fresh.digest and _rebuilt(caplog, entry)
    assert cachefile.verified(entry, _key_of(entry))


def _key_of(entry: Path) -> dict[str, object]:
    import json

    key: dict[str, object] = json.loads(cachefile.meta_path(entry).read_text())["key"]
    return key


# --- int8 ONNX -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", DAMAGE)
def test_int8_onnx_damaged(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           caplog: pytest.LogCaptureFixture) -> None:
    from vssr.quant import quantize

    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "models"))
    net = Network.load(nets.conv3x3())
    rng = np.random.default_rng(0)
    calib = [rng.random((3, 16, 16), dtype=np.float32) for _ in range(2)]
    fresh = quantize(net, calib, method="minmax", crop=None)
    other_net = quantize(net, calib, method="percentile", crop=None)
    entries = sorted((tmp_path / "models" / "int8").glob("*.onnx"))
    entry = next(e for e in entries if "_minmax_" in e.name)
    other = next(e for e in entries if "_percentile_" in e.name)
    assert fresh.digest != other_net.digest
    _damage(kind, entry, other)
    again = quantize(net, calib, method="minmax", crop=None)
    assert again.digest == fresh.digest and _rebuilt(caplog, entry)


# --- OpenVINO compiled models ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", DAMAGE)
def test_openvino_blob_damaged(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("openvino")
    from vssr.backends import Backend

    monkeypatch.setenv("VSSR_ENGINE_DIR", str(tmp_path / "engines"))
    profile = ShapeProfile.static(24, 24)
    model, other_model = nets.conv3x3(layers=2), nets.conv3x3(seed=1, layers=2)
    config = Backend.OV(precision="f32", num_streams=1)
    (fresh,) = Backend.OV(precision="f32", num_streams=1, cache=False).load(Network.load(model), profile)
    config.load(Network.load(model), profile)
    config.load(Network.load(other_model), profile)
    blobs = sorted((tmp_path / "engines" / "openvino").glob("*.blob"), key=lambda p: p.stat().st_mtime_ns)
    entry, other = blobs
    _damage(kind, entry, other)
    (runner,) = config.load(Network.load(model), profile)
    x = {"input": np.random.default_rng(0).random((1, 3, 24, 24), dtype=np.float32)}
    expected = fresh.infer(x)["output"].copy()
    np.testing.assert_array_equal(runner.infer(x)["output"], expected)
    assert _rebuilt(caplog, entry)


def test_openvino_empty_folders_of_failed_compiles_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openvino")
    from vssr.backends import Backend

    monkeypatch.setenv("VSSR_ENGINE_DIR", str(tmp_path / "engines"))
    empty = tmp_path / "engines" / "openvino" / "0123456789abcdef01234567"
    empty.mkdir(parents=True)
    Backend.OV(precision="f32", num_streams=1).load(Network.load(nets.conv3x3()), ShapeProfile.static(24, 24))
    assert not empty.exists()


# --- leftovers, locks --------------------------------------------------------------------------------
def test_leftovers_of_dead_writers_are_removed_live_ones_kept(tmp_path: Path) -> None:
    stale_tmp = tmp_path / ".x.onnx.abc123.tmp"
    stale_tmp.write_bytes(b"half")
    stale_lock = tmp_path / "x.onnx.lock"
    stale_lock.write_bytes(b"process 1 on host\n")
    live_lock = tmp_path / "y.onnx"
    writing = threading.Event()
    release = threading.Event()

    def live_writer(f: object) -> None:
        writing.set()
        release.wait(10)

    thread = threading.Thread(target=lambda: files.atomic_write(tmp_path / "z.onnx", live_writer))
    with files.file_lock(live_lock):
        thread.start()
        assert writing.wait(10)
        removed = files.remove_leftovers(tmp_path)
        assert sorted(removed) == sorted([stale_tmp, stale_lock])
        assert Path(f"{live_lock}.lock").exists() and len(list(tmp_path.glob(".z.onnx.*.tmp"))) == 1
    release.set()
    thread.join(10)
    assert (tmp_path / "z.onnx").is_file() and not list(tmp_path.glob("*.tmp"))


def test_a_waiter_names_the_holder_and_gives_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vssr")
    entry = tmp_path / "m.onnx"
    holder = subprocess.Popen(  # a live but stuck process holding the lock
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from vssr import files
            with files.file_lock({str(entry)!r}):
                print("held", flush=True)
                time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("VSSR_LOCK_TIMEOUT", "0.5")
        start = time.monotonic()
        with pytest.raises(files.LockTimeoutError, match=rf"process {holder.pid} on .*VSSR_LOCK_TIMEOUT"):
            cachefile.load_or_build(entry, {"k": 1}, lambda: b"x", bytes, env="VSSR_MODEL_DIR")
        assert time.monotonic() - start < 5
        assert any(f"waiting for process {holder.pid}" in r.getMessage() for r in caplog.records)
    finally:
        holder.kill()
        holder.wait()
    assert cachefile.load_or_build(entry, {"k": 1}, lambda: b"x", bytes, env="VSSR_MODEL_DIR") == b"x"
    monkeypatch.setenv("VSSR_LOCK_TIMEOUT", "soon")
    with pytest.raises(files.BackendError, match="VSSR_LOCK_TIMEOUT='soon'"):
        files.lock_timeout()


_SLOW_CONVERSION = """
import os, sys, time
import vssr.files as files
real_fsync = os.fsync

def fsync_then_stall(fd):  # the converted model is in the temporary file: get killed here
    real_fsync(fd)
    open(sys.argv[2], "w").close()
    time.sleep(60)

files.os.fsync = fsync_then_stall
from vssr import zoo
zoo.network("realesrgan", sys.argv[1], func="RealESRGAN")
"""


def test_sigkill_mid_write_then_next_run_cleans_and_converts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    weights = _pth(tmp_path / "w.pth", 0)
    marker = tmp_path / "writing"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VSSR_MODEL_DIR": str(models)}
    child = subprocess.Popen([sys.executable, "-c", _SLOW_CONVERSION, str(weights), str(marker)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert list(models.glob(".*.tmp")) and list(models.glob("*.lock"))  # what a killed writer leaves
    monkeypatch.setenv("VSSR_MODEL_DIR", str(models))
    net = zoo.network("realesrgan", weights, func=FUNC)
    names = sorted(p.name for p in models.iterdir())
    assert len(names) == 2 and names[0].endswith(".onnx") and names[1] == names[0] + ".meta.json"
    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "fresh"))
    assert zoo.network("realesrgan", weights, func=FUNC).digest == net.digest


# --- unwritable cache locations ------------------------------------------------------------------------
def _under_a_file(tmp_path: Path) -> Path:
    blocker = tmp_path / "file"
    blocker.write_text("a regular file where the cache folder should be")
    return blocker / "models"


def _read_only_folder(tmp_path: Path) -> Callable[[], None]:
    """chmod 555 (or, as root, which ignores permissions, chattr +i); returns the undo."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", str(folder)], check=False, capture_output=True).returncode:
            folder.chmod(0o755)
            pytest.skip("running as root without chattr +i: a read-only folder cannot be made")
        return lambda: (subprocess.run(["chattr", "-i", str(folder)], check=True), folder.chmod(0o755))[-1]
    return lambda: folder.chmod(0o755)


@pytest.mark.parametrize("where", ["read-only", "under-a-file", "is-a-file"])
def test_unwritable_model_folder_converts_in_memory(where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    weights = _pth(tmp_path / "w.pth", 0)
    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "fresh"))
    fresh = zoo.network("realesrgan", weights, func=FUNC)
    undo: Callable[[], None] = lambda: None
    if where == "read-only":
        undo = _read_only_folder(tmp_path)
        folder = tmp_path / "ro"
    elif where == "under-a-file":
        folder = _under_a_file(tmp_path)
    else:
        folder = tmp_path / "file"
        folder.write_text("not a folder")
    monkeypatch.setenv("VSSR_MODEL_DIR", str(folder))
    try:
        for _ in range(2):
            assert zoo.network("realesrgan", weights, func=FUNC).digest == fresh.digest
    finally:
        undo()
    warnings = [r.getMessage() for r in caplog.records if "cannot write the cache folder" in r.getMessage()]
    assert len(warnings) == 1 and str(folder) in warnings[0] and "VSSR_MODEL_DIR" in warnings[0]


def test_unwritable_engine_folder_compiles_openvino_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("openvino")
    from vssr.backends import Backend

    monkeypatch.setenv("VSSR_ENGINE_DIR", str(_under_a_file(tmp_path)))
    model = nets.conv3x3()
    (runner,) = Backend.OV(precision="f32", num_streams=1).load(Network.load(model), ShapeProfile.static(24, 24))
    nets.check_runner(runner, model)
    assert any("VSSR_ENGINE_DIR" in r.getMessage() for r in caplog.records)


def test_read_only_checkout_as_an_unprivileged_user(request: pytest.FixtureRequest) -> None:
    """A checkout its user may not write (its models/ is root's): run as `nobody` (root ignores
    modes), with no VSSR_MODEL_DIR."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    shared = Path(tempfile.mkdtemp(prefix="vssr-nobody-"))  # pytest's tmp_path is private to root
    request.addfinalizer(lambda: shutil.rmtree(shared, ignore_errors=True))
    shared.chmod(0o755)
    weights = _pth(shared / "w.pth", 0)
    weights.chmod(0o644)
    script = textwrap.dedent(f"""
        import os, logging
        from vssr import zoo  # imported as root: the interpreter may live where nobody can read
        from vssr.weights import pth
        from vssr.arch import compact
        import encodings.cp437, encodings.latin_1  # zipfile and pickle look these up lazily
        os.setgid(65534); os.setuid(65534)
        logging.basicConfig(level=logging.WARNING)
        net = zoo.network("realesrgan", {str(weights)!r}, func="RealESRGAN")
        print("digest", net.digest)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSSR_")}
    env.update(PYTHONPATH=str(ROOT), HOME=str(shared))  # the checkout's models/, owned by root
    if (ROOT / "models").stat().st_mode & 0o002:
        pytest.skip("the checkout's models/ is writable by everyone")
    before = sorted((ROOT / "models").iterdir())
    result = subprocess.run([sys.executable, "-c", script], check=False, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"cannot write the cache folder {ROOT / 'models'}" in result.stderr and "VSSR_MODEL_DIR" in result.stderr
    assert sorted((ROOT / "models").iterdir()) == before


def test_processes_starting_together_compile_openvino_once(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    onnx_path = tmp_path / "net.onnx"
    onnx.save_model(nets.conv3x3(layers=2), onnx_path)
    go = tmp_path / "go"
    script = textwrap.dedent(f"""
        import logging, os, time
        logging.basicConfig(level=logging.INFO)
        from vssr.backends import Backend
        from vssr.network import Network
        from vssr.types import ShapeProfile
        net = Network.load({str(onnx_path)!r})
        while not os.path.exists({str(go)!r}):
            time.sleep(0.005)
        Backend.OV(precision="f32", num_streams=1).load(net, ShapeProfile.static(24, 24))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VSSR_ENGINE_DIR": str(tmp_path / "engines")}
    children = [subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True)
                for _ in range(3)]
    time.sleep(3)  # all imported and waiting for the start signal
    go.touch()
    logs = [child.communicate(timeout=120)[1] for child in children]
    assert all(child.returncode == 0 for child in children), logs
    assert sum("compiling" in log for log in logs) == 1, logs
    names = sorted(p.name for p in (tmp_path / "engines" / "openvino").iterdir())
    assert len(names) == 2 and names[0].endswith(".blob") and names[1] == names[0] + ".meta.json"  # no lock left


# --- python -m vssr caches ---------------------------------------------------------------------------
def test_caches_command_lists_and_prunes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from vssr import caches, cli

    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("VSSR_ENGINE_DIR", str(tmp_path / "engines"))
    weights = [_pth(tmp_path / f"{name}.pth", seed) for seed, name in enumerate(("a", "b", "c"))]
    for path in weights:
        zoo.network("realesrgan", path, func=FUNC)
    models = tmp_path / "models"
    a, b, c = (next(models.glob(f"realesrgan-{n}.*.onnx")) for n in "abc")
    _damage("flipped", b, a)
    old = time.time() - 10 * 86400
    os.utime(c, (old, old))
    leftover = models / f".{a.name}.x1y2z3.tmp"
    leftover.write_bytes(b"half")
    orphan = models / "gone.onnx.meta.json"
    orphan.write_text("{}")
    empty = tmp_path / "engines" / "openvino" / "0123456789abcdef01234567"
    empty.mkdir(parents=True)
    users = [models / "README.md", models / "rife" / "flownet_v4.22.pkl", models / "mine"]  # never touched
    users[1].parent.mkdir()
    users[0].write_text("readme")
    users[1].write_bytes(b"weights")
    users[2].mkdir()

    assert cli.main(["caches", "list"]) == 0
    listing = capsys.readouterr().out
    assert "4 cached item(s)" in listing and "older vssr" in listing  # + the empty folder of an old version and f"{b}  " in listing and "DAMAGED" in listing.split(str(b))[1].split("\n")[0]
    assert cli.main(["caches", "prune", "--dry-run"]) == 0
    assert all(p.exists() for p in (b, leftover, orphan, empty))
    assert cli.main(["caches", "prune"]) == 0
    assert not any(p.exists() for p in (b, cachefile.meta_path(b), leftover, orphan, empty))
    assert a.exists() and c.exists() and all(p.exists() for p in users)
    assert sorted(caches.prune(unused_days=5)) == sorted([c, cachefile.meta_path(c)])
    (left,) = [e for e in caches.entries() if e.kind != "lock"]
    assert left.path == a and left.intact


def test_other_folder_errors_are_a_vs_error_naming_folder_and_variable(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Not an unwritable folder (an I/O error, a broken mount): no silent fallback, a vs.Error."""
    import errno

    import vapoursynth as vs

    def broken(*args: object, **kwargs: object) -> object:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setattr(files, "file_lock", broken)
    with pytest.raises(vs.Error, match=rf"vssr\.RealESRGAN: cannot use the cache folder {tmp_path / 'models'} .*"
                                       "set VSSR_MODEL_DIR to another folder"):
        zoo.network("realesrgan", _pth(tmp_path / "w.pth", 0), func=FUNC)
    monkeypatch.undo()
    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("VSSR_LOCK_TIMEOUT", "-1")
    with pytest.raises(vs.Error, match=r"VSSR_LOCK_TIMEOUT='-1' must be a number of seconds >= 0"):
        zoo.network("realesrgan", tmp_path / "w.pth", func=FUNC)
