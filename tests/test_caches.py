"""`vssr engines list|prune` covers every cache: TensorRT engines (+ RTX runtime caches), OpenVINO
compiled models, converted ONNX, idle lock files; file_lock leaves no lock file behind."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from vssr import cachefile, caches, files
from vssr.cli import main


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    engines, models = tmp_path / "engines", tmp_path / "models"
    monkeypatch.setenv("VSSR_ENGINE_DIR", str(engines))
    monkeypatch.setenv("VSSR_MODEL_DIR", str(models))
    engine = engines / "net.0123.engine"
    engine.parent.mkdir(parents=True)
    cachefile.write(engine, b"e" * 1000, {"engine": "net"})
    (engines / "net.0123.engine.json").write_text(json.dumps({"build_seconds": 12.0}))
    (engines / "net.0123.engine.runtimecache").write_bytes(b"k" * 500)
    (engines / "openvino").mkdir()
    cachefile.write(engines / "openvino" / "abcdef.blob", b"o" * 300,
                    {"kind": "openvino-compiled", "digest": "abcdef", "what": "realesrgan-animevideov3, CPU bf16, 64x64"})
    (models / "int8").mkdir(parents=True)
    cachefile.write(models / "realesrgan-x.0011.onnx", b"x" * 200, {"converted": "x"})
    cachefile.write(models / "int8" / "q.onnx", b"q" * 100, {"int8": "q"})
    (models / "stale.onnx.lock").write_bytes(b"")
    return engines, models


def test_list_covers_every_cache(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    found = {(e.kind, e.path.name): e for e in caches.entries()}
    assert found["tensorrt", "net.0123.engine"].bytes == 1500  # with its RTX runtime cache
    assert found["openvino", "abcdef.blob"].detail == "realesrgan-animevideov3, CPU bf16, 64x64"
    assert found["onnx", "realesrgan-x.0011.onnx"].detail == "converted"
    assert found["int8", "q.onnx"].detail == "int8"
    assert ("lock", "stale.onnx.lock") in found
    assert main(["engines", "list"]) == 0
    out = capsys.readouterr().out
    assert "net.0123.engine  1500 B, last used " in out and "built in 12 s" in out
    assert "5 cached item(s)" in out and "DAMAGED" not in out


def test_prune_by_age_and_leftovers(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    engines, models = dirs
    assert main(["engines", "prune"]) == 0  # no age: only leftovers (the idle lock)
    assert not (models / "stale.onnx.lock").exists() and (models / "int8" / "q.onnx").exists()
    old = time.time() - 3 * 86400
    for path in [*engines.rglob("*"), *models.rglob("*")]:
        os.utime(path, (old, old))
    (models / "realesrgan-x.0011.onnx").touch()  # used just now: kept
    assert main(["engines", "prune", "--unused-days", "1", "--dry-run"]) == 0
    assert (engines / "net.0123.engine").exists()
    removed = set(caches.prune(1.0))
    assert {engines / "net.0123.engine", engines / "openvino" / "abcdef.blob", models / "int8" / "q.onnx"} <= removed
    left = sorted(p.name for p in [*engines.rglob("*"), *models.rglob("*")] if p.is_file())  # with its sidecar
    assert left == ["realesrgan-x.0011.onnx", "realesrgan-x.0011.onnx.meta.json"]


def test_held_locks_are_kept_and_file_lock_leaves_none(tmp_path: Path) -> None:
    target = tmp_path / "m.onnx"
    with files.file_lock(target):
        assert (tmp_path / "m.onnx.lock").exists()
        assert caches.prune(None, engine_dir=tmp_path / "e", model_dir=tmp_path) == []  # held: kept
    assert not (tmp_path / "m.onnx.lock").exists()
    cachefile.load_or_build(target, {"k": 1}, lambda: b"data", bytes, env="VSSR_MODEL_DIR")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.meta.json"]


def test_prune_never_touches_the_users_own_models(dirs: tuple[Path, Path]) -> None:
    """A model the user keeps in models/ has no sidecar and no vssr cache name: not a cache entry."""
    _, models = dirs
    mine = [models / "my_own_model.onnx", models / "int8" / "mine.onnx"]
    for path in mine:
        path.write_bytes(b"user's file")
    assert not {e.path for e in caches.entries()} & set(mine)
    caches.prune(0.0)
    assert all(p.read_bytes() == b"user's file" for p in mine)


def test_prune_removes_the_cache_folders_of_older_versions(dirs: tuple[Path, Path]) -> None:
    engines, _ = dirs
    legacy = engines / "openvino" / "2e39f4bf8fee99e21650feb3"  # OpenVINO's CACHE_DIR, before verified blobs
    legacy.mkdir()
    (legacy / "8164842514431349571.blob").write_bytes(b"b" * 100)
    assert any(e.path == legacy and "older vssr" in e.detail for e in caches.entries())
    assert legacy in caches.prune(None) and not legacy.exists()


def test_an_entry_repaired_while_prune_waits_is_kept(dirs: tuple[Path, Path]) -> None:
    """prune decides under the entry's lock: a writer that finishes meanwhile keeps its entry."""
    _, models = dirs
    entry = models / "realesrgan-y.0123456789abcdef.onnx"
    entry.write_bytes(b"y" * 10)  # no sidecar yet: a writer between the entry and its sidecar
    (damaged,) = [e for e in caches.entries() if e.path == entry]
    assert not damaged.intact
    cachefile.write(entry, b"y" * 10, {"converted": "y"})  # the writer finishes before prune locks it
    assert entry not in caches.prune(None) and cachefile.intact(entry)
