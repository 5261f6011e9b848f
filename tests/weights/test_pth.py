"""vssr.weights.pth: torch checkpoints read without torch, through an allow-list unpickler.

References: files written by real torch 2.13.0 (tests/data/torch_params_ema*.pth, with the values
torch itself exported to torch_params_ema_expected.npz), and files written here without torch by
tests/weights/torchsave.py. Comparisons are exact (no arithmetic happens on load).
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from tests.weights import torchsave
from vssr.errors import ModelError
from vssr.weights import canonical, pth

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize("name", ["torch_params_ema.pth", "torch_params_ema_legacy.pth"])
def test_real_torch_files(name: str) -> None:
    """Written by torch.save (zip and legacy formats): fp32/fp16/bf16/fp64/int64, views, Parameters."""
    expected = np.load(DATA / "torch_params_ema_expected.npz")
    state = pth.load(DATA / name)
    assert sorted(state) == sorted(k.removeprefix("module.") for k in expected)
    for key in expected:
        got = state[key.removeprefix("module.")]
        assert got.shape == expected[key].shape
        assert got.dtype == (np.float32 if expected[key].dtype.kind == "f" else expected[key].dtype)
        np.testing.assert_array_equal(got, expected[key])
    raw = pth.load_raw(DATA / name)
    assert set(raw) == {"params_ema", "params", "iter"} and raw["iter"] == 1000
    assert raw["params_ema"]["module.half"].dtype == np.float16  # load_raw keeps stored precision
    assert not np.any(raw["params"]["module.conv.weight"])


@pytest.mark.parametrize("save", [torchsave.save_zip, torchsave.save_legacy])
def test_roundtrip_without_torch(tmp_path: Path, save) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    shared = rng.normal(size=40).astype(np.float32)
    half = rng.normal(size=(3, 4)).astype(np.float16)
    bf16_values = rng.normal(size=6).astype(np.float32)
    bf16_bits = (bf16_values.view(np.uint32) >> 16).astype(np.uint16)
    tensors = {
        "body.0.weight": torchsave.Tensor.of(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), parameter=True),
        "view": torchsave.Tensor(shared, 5, (3, 4), (1, 6)),  # offset 5, column-major-like strides
        "base": torchsave.Tensor(shared, 0, (40,), (1,)),
        "half": torchsave.Tensor.of(half),
        "bf16": torchsave.Tensor.of(bf16_bits),
        "empty": torchsave.Tensor(shared, 0, (0, 3), (3, 1)),
    }
    path = save({"params": OrderedDict((f"netG.{k}", v) for k, v in tensors.items())}, tmp_path / "x.pth")
    state = pth.load(path)
    assert set(state) == set(tensors)
    np.testing.assert_array_equal(state["view"], np.lib.stride_tricks.as_strided(
        shared[5:], (3, 4), (4, 24)))
    np.testing.assert_array_equal(state["base"], shared)
    np.testing.assert_array_equal(state["half"], half.astype(np.float32))
    np.testing.assert_array_equal(state["bf16"], (bf16_bits.astype(np.uint32) << 16).view(np.float32))
    assert state["empty"].shape == (0, 3)
    assert all(v.dtype == np.float32 and v.flags.c_contiguous for v in state.values())


def test_legacy_storage_views(tmp_path: Path) -> None:
    """torch < 1.0 legacy files put tensors on storage views: (view_key, element offset, size)."""
    storage = np.arange(30, dtype=np.float32)
    path = torchsave.save_legacy(
        {"a": torchsave.Tensor(storage, 2, (2, 3), (3, 1), view=10), "b": torchsave.Tensor.of(storage)},
        tmp_path / "views.pth",
    )
    state = pth.load(path)
    np.testing.assert_array_equal(state["a"], storage[12:18].reshape(2, 3))
    np.testing.assert_array_equal(state["b"], storage)


def test_os_system_is_rejected(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Touch:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    path = torchsave.save_pickle({"state_dict": {"w": Touch()}}, tmp_path / "evil.pth")
    with pytest.raises(ModelError, match=r"refusing to load.*(posix|os)\.system"):
        pth.load(path)
    assert not marker.exists()


def test_builtins_eval_is_rejected_in_legacy_stream(tmp_path: Path) -> None:
    class Eval:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (eval, ("1+1",))

    path = tmp_path / "evil_legacy.pth"
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, f, protocol=2)
        pickle.dump({"w": Eval()}, f, protocol=2)
    with pytest.raises(ModelError, match=r"builtins\.eval"):
        pth.load(path)


def test_storage_overrun_is_rejected(tmp_path: Path) -> None:
    """as_strided does not bounds-check: a lying size/stride must fail, not read foreign memory."""
    storage = np.arange(10, dtype=np.float32)
    path = torchsave.save_zip({"w": torchsave.Tensor(storage, 4, (3, 3), (3, 1))}, tmp_path / "bad.pth")
    with pytest.raises(ModelError, match="overruns"):
        pth.load(path)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        pth.load(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00\x01not a checkpoint" * 10)
    with pytest.raises(ModelError, match="junk.pth"):
        pth.load(junk)
    nopkl = tmp_path / "nopkl.pth"
    with zipfile.ZipFile(nopkl, "w") as z:
        z.writestr("archive/other", b"x")
    with pytest.raises(ModelError, match="data.pkl"):
        pth.load(nopkl)
    truncated = tmp_path / "truncated.pth"
    good = torchsave.save_zip({"w": torchsave.Tensor.of(np.ones(8, np.float32))}, tmp_path / "good.pth")
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(truncated, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            dst.writestr(item, data[:5] if item.endswith("data/0") else data)
    with pytest.raises(ModelError, match="truncated"):
        pth.load(truncated)


def test_canonical_unwrap_and_prefixes() -> None:
    w = np.ones((2, 2), np.float32)
    assert set(canonical.state_dict({"state_dict": {"model": {"module.netG.a": w}}})) == {"a"}
    assert set(canonical.state_dict({"epoch": 3, "a": w})) == {"a"}  # tensors beside plain values
    # A single nested dict under an unknown name is used (and logged).
    assert set(canonical.state_dict({"weights": {"a": w}, "epoch": 1})) == {"a"}
    with pytest.raises(ModelError, match="cannot tell"):
        canonical.state_dict({"gen": {"a": w}, "disc": {"b": w}})
    with pytest.raises(ModelError, match="no tensors"):
        canonical.state_dict({"params": {"a": 1}})
    # Only prefixes shared by every key are stripped.
    assert set(canonical.state_dict({"module.a": w, "b": w})) == {"module.a", "b"}


def test_params_ema_preferred(tmp_path: Path) -> None:
    ema, plain = np.full(3, 2, np.float32), np.zeros(3, np.float32)
    path = torchsave.save_zip(
        {"params": {"w": torchsave.Tensor.of(plain)}, "params_ema": {"w": torchsave.Tensor.of(ema)}},
        tmp_path / "both.pth",
    )
    np.testing.assert_array_equal(pth.load(path)["w"], ema)


def test_plain_pickle_of_numpy_is_rejected(tmp_path: Path) -> None:
    """Even numpy's own reconstructors are outside the allow-list."""
    buf = io.BytesIO()
    pickle.dump({"w": np.ones(3)}, buf, protocol=2)
    path = tmp_path / "np.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
    with pytest.raises(ModelError, match="numpy"):
        pth.load(path)
