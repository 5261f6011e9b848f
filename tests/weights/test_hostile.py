"""Hostile and broken weight files are refused in milliseconds, under a memory ceiling.

Each file is crafted here (a 663-byte-class .pth whose tensor has stride 0 over one element, a
DEFLATE bomb storage entry, pickles whose opcodes make the C unpickler allocate gigabytes, an .npz whose header declares 80 GB, ncnn counts beyond the .bin, ONNX
external data outside its folder or past its file's end, truncated and malformed files) and loaded
in a fresh subprocess whose address space is capped at 400 MB above what its imports use
(RLIMIT_AS): a reader that materialises what the file declares dies of MemoryError there instead of
swapping. Each must end in a ModelError naming the file, within a second.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.weights import torchsave

ROOT = Path(__file__).resolve().parents[2]
CEILING = 400 << 20
SECONDS = 1.0

_RUNNER = textwrap.dedent("""
    import json, resource, sys, time
    from vssr.errors import ModelError
    from vssr.weights import ncnn, npz, onnxfile, pth, rife
    readers = {"pth": pth.load_raw, "pkl": rife.load_state, "npz": npz.load, "ncnn": ncnn.load,
               "onnx": onnxfile.load_model}
    reader, path, ceiling = sys.argv[1], sys.argv[2], int(sys.argv[3])
    status = open("/proc/self/status").read()
    used = int(status.split("VmSize:")[1].split()[0]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (used + ceiling, resource.RLIM_INFINITY))
    start = time.perf_counter()
    try:
        readers[reader](path)
        outcome, message = "loaded", ""
    except ModelError as err:
        outcome, message = "refused", str(err)
    except MemoryError:
        outcome, message = "MemoryError", ""
    print(json.dumps({"outcome": outcome, "message": message, "seconds": time.perf_counter() - start}))
""")


def _load_capped(reader: str, path: Path) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, reader, str(path), str(CEILING)],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome


def _refused(reader: str, path: Path, match: str) -> None:
    outcome = _load_capped(reader, path)
    assert outcome["outcome"] == "refused", outcome
    message = str(outcome["message"])
    named = path.with_suffix(".bin") if reader == "ncnn" else path  # ncnn's counts are checked against its .bin
    assert os.fspath(named) in message and match in message, message
    assert float(str(outcome["seconds"])) < SECONDS, outcome


# --- crafted files --------------------------------------------------------------------------------------
def _write_zip(path: Path, entries: list[tuple[str, bytes, int, int, int]]) -> Path:
    """A zip of (name, stored bytes, method, crc32, declared uncompressed size), written by hand so
    that an entry's compressed bytes and declared size can be anything."""
    body, central = b"", b""
    for name, data, method, crc, size in entries:
        encoded = name.encode()
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, len(data), size,
                               len(encoded), 0, 0, 0, 0, 0, len(body)) + encoded
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data), size,
                            len(encoded), 0) + encoded + data
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(body), 0)
    path.write_bytes(body + central + end)
    return path


def _zeros_bomb(size: int, prefix: bytes = b"") -> tuple[bytes, int]:
    """Raw DEFLATE of `prefix` + `size` zero bytes (size a multiple of 16 MiB) and its crc32, made
    in a fraction of a second: after a full flush (history reset, byte-aligned) 16 MiB of zeros
    compress to the same block every time, so that block is repeated."""
    chunk = 16 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH) if prefix else b""
    block = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc, zeros = zlib.crc32(prefix), bytes(chunk)
    for _ in range(size // chunk):
        crc = zlib.crc32(zeros, crc)
    stream = head + block * (size // chunk) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    assert zlib.decompressobj(-15).decompress(stream[: len(head) + 2 * len(block)], len(prefix) + 99) == \
        prefix + bytes(99)
    return stream, crc


class _Declared:
    """Stands for a storage array in torchsave's pickler: declares `size` elements, holds none."""

    def __init__(self, size: int) -> None:
        self.size, self.dtype = size, np.dtype(np.float32)


def _pickled(storage_numel: int, size: tuple[int, ...], stride: tuple[int, ...], *, legacy: bool = False) -> bytes:
    tensor = torchsave.Tensor(_Declared(storage_numel), 0, size, stride)  # type: ignore[arg-type]
    data, _ = torchsave._pickle({"weight": tensor}, legacy=legacy)
    return data


def stride0_pth(tmp: Path) -> Path:
    """The issue's 663-byte file: 400M elements with stride 0 over a 1-element storage."""
    tensor = torchsave.Tensor(np.zeros(1, np.float32), 0, (400_000_000,), (0,))
    path = torchsave.save_zip({"params": {"body.0.weight": tensor}}, tmp / "stride0.pth")
    assert path.stat().st_size < 1000
    return path


def overlapping_pth(tmp: Path) -> Path:
    """Overlapping strides (1, 1): 30000 x 10001 elements (1.2 GB) over a 40000-element storage,
    every element inside it (the last one touched is 29999 + 10000)."""
    tensor = torchsave.Tensor(np.zeros(40000, np.float32), 0, (30000, 10001), (1, 1))
    return torchsave.save_zip({"params": {"w": tensor}}, tmp / "overlap.pth")


def bomb_pth(tmp: Path, declared: int | None = None) -> Path:
    """data/0 is 1 GiB of zeros deflated to ~1 MB; the pickle says the storage is that big."""
    size = 1 << 30
    stream, crc = _zeros_bomb(size)
    numel = (size if declared is None else declared) // 4
    pkl = _pickled(numel, (numel,), (1,))
    return _write_zip(tmp / "bomb.pth", [
        ("archive/data.pkl", pkl, 0, zlib.crc32(pkl), len(pkl)),
        ("archive/data/0", stream, 8, crc, size if declared is None else declared),
    ])


def lying_bomb_pth(tmp: Path) -> Path:
    """The bomb's header declares 4 bytes: only 4 bytes may ever be inflated from it."""
    return bomb_pth(tmp, declared=4)


def huge_legacy_pth(tmp: Path) -> Path:
    """Legacy stream format declaring a storage of 10**11 elements, followed by none of them."""
    path = tmp / "legacy.pth"
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(_pickled(10**11, (4,), (1,), legacy=True))
        pickle.dump(["0"], f, protocol=2)
        f.write((10**11).to_bytes(8, "little"))
    return path


def _pickle_pth(tmp: Path, name: str, pkl: bytes) -> Path:
    with zipfile.ZipFile(tmp / name, "w") as z:
        z.writestr("archive/data.pkl", pkl)
    return tmp / name


def memo_bomb_pth(tmp: Path) -> Path:
    """A 9-byte pickle storing None at memo index 2**28: the C unpickler grows its memo table to
    that index (2 GB of pointers) before anything else."""
    return _pickle_pth(tmp, "memo.pth", b"\x80\x02Nr" + (1 << 28).to_bytes(4, "little") + b".")


def bytes8_bomb_pth(tmp: Path) -> Path:
    """BINBYTES8 declaring 2**38 bytes followed by 100: the C unpickler allocates the declared size."""
    return _pickle_pth(tmp, "bytes8.pth", b"\x80\x04\x8e" + (1 << 38).to_bytes(8, "little") + bytes(100) + b".")


def truncated_pth(tmp: Path) -> Path:
    tensor = torchsave.Tensor.of(np.ones((64, 64), np.float32))
    path = torchsave.save_zip({"w": tensor}, tmp / "cut.pth")
    path.write_bytes(path.read_bytes()[:9000])
    return path


def garbage_pth(tmp: Path) -> Path:
    path = tmp / "garbage.pth"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    return path


def stride0_pkl(tmp: Path) -> Path:
    """A RIFE flownet.pkl with a stride-0 tensor (read through the same unpickler)."""
    tensor = torchsave.Tensor(np.zeros(1, np.float32), 0, (400_000_000,), (0,))
    return torchsave.save_zip({"module.block0.conv0.0.0.weight": tensor}, tmp / "flownet.pkl")


def _npy_header(shape: tuple[int, ...]) -> bytes:
    text = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}".encode()
    text += b" " * (63 - len(text) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def npz_huge_header(tmp: Path) -> Path:
    """An .npy member declaring (100000, 100000) float64 (80 GB) with 8 bytes of data."""
    with zipfile.ZipFile(tmp / "huge.npz", "w") as z:
        z.writestr("w.npy", _npy_header((100000, 100000)) + bytes(8))
    return tmp / "huge.npz"


def npz_bomb(tmp: Path) -> Path:
    """A member of 1 GiB of zeros deflated to ~1 MB, its .npy header consistent with that size."""
    size = 1 << 30
    header = _npy_header((size // 8,))
    stream, crc = _zeros_bomb(size, header)
    return _write_zip(tmp / "bomb.npz", [("w.npy", stream, 8, crc, size + len(header))])


def npz_object(tmp: Path) -> Path:
    np.savez(tmp / "object.npz", w=np.array([{"a": 1}], dtype=object))
    return tmp / "object.npz"


def ncnn_counts(tmp: Path) -> Path:
    """A convolution declaring 10**9 weights over a 40-byte .bin."""
    (tmp / "net.param").write_text("7767517\n2 2\nInput data 0 1 data\n"
                                   "Convolution conv0 1 1 data out 0=1000 1=1 5=1 6=1000000000 9=0\n")
    (tmp / "net.bin").write_bytes(bytes(40))
    return tmp / "net.param"


def ncnn_negative(tmp: Path) -> Path:
    (tmp / "neg.param").write_text("7767517\n2 2\nInput data 0 1 data\nPReLU p 1 1 data out 0=-5\n")
    (tmp / "neg.bin").write_bytes(bytes(40))
    return tmp / "neg.param"


def _external_model(tmp: Path, location: str, offset: int, length: int) -> Path:
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1000])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        tensor.external_data.add(key=key, value=value)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1000])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1000])
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [tensor])
    folder = tmp / "model"
    folder.mkdir(exist_ok=True)
    (folder / "weights.bin").write_bytes(np.arange(1000, dtype=np.float32).tobytes())
    path = folder / "model.onnx"
    onnx.save_model(helper.make_model(graph), path)
    return path


def onnx_outside(tmp: Path) -> Path:
    (tmp / "secret.bin").write_bytes(bytes(4000))
    return _external_model(tmp, "../secret.bin", 0, 4000)


def onnx_symlink_out(tmp: Path) -> Path:
    (tmp / "secret.bin").write_bytes(bytes(4000))
    path = _external_model(tmp, "link.bin", 0, 4000)
    (path.parent / "link.bin").symlink_to(tmp / "secret.bin")
    return path


def onnx_past_end(tmp: Path) -> Path:
    return _external_model(tmp, "weights.bin", 0, 10**12)


def onnx_wrong_length(tmp: Path) -> Path:
    return _external_model(tmp, "weights.bin", 2000, 2000)


CASES: dict[str, tuple[str, Callable[[Path], Path], str]] = {
    "pth-stride0": ("pth", stride0_pth, "more than a"),
    "pth-overlapping": ("pth", overlapping_pth, "more than a"),
    "pth-deflate-bomb": ("pth", bomb_pth, "more than a"),
    "pth-legacy-huge-storage": ("pth", huge_legacy_pth, "the file is shorter"),
    "pth-memo-bomb": ("pth", memo_bomb_pth, "malformed pickle"),
    "pth-bytes8-bomb": ("pth", bytes8_bomb_pth, "malformed pickle"),
    "pth-truncated": ("pth", truncated_pth, ""),
    "pth-garbage": ("pth", garbage_pth, ""),
    "pkl-stride0": ("pkl", stride0_pkl, "more than a"),
    "npz-huge-header": ("npz", npz_huge_header, "holds"),
    "npz-deflate-bomb": ("npz", npz_bomb, "more than a"),
    "npz-object": ("npz", npz_object, "no pickles"),
    "ncnn-counts": ("ncnn", ncnn_counts, "shorter than its .param"),
    "ncnn-negative": ("ncnn", ncnn_negative, "PReLU"),
    "onnx-outside": ("onnx", onnx_outside, "outside the model's folder"),
    "onnx-symlink": ("onnx", onnx_symlink_out, "outside the model's folder"),
    "onnx-past-end": ("onnx", onnx_past_end, "beyond its"),
    "onnx-wrong-length": ("onnx", onnx_wrong_length, "which need"),
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_file_refused_quickly_under_a_memory_ceiling(case: str, tmp_path: Path) -> None:
    reader, make, match = CASES[case]
    path = make(tmp_path)
    _refused(reader, path, match)


def test_a_bomb_whose_header_lies_inflates_only_what_it_declares(tmp_path: Path) -> None:
    outcome = _load_capped("pth", lying_bomb_pth(tmp_path))
    assert outcome["outcome"] in ("loaded", "refused") and float(str(outcome["seconds"])) < SECONDS, outcome


def test_the_ceiling_catches_a_reader_that_materialises(tmp_path: Path) -> None:
    """The harness itself: numpy.load of the 80 GB header, run the same way, hits the ceiling."""
    path = tmp_path / "big.npy"
    path.write_bytes(_npy_header((30000, 30000)) + bytes(8))  # 7.2 GB declared
    script = (f"import resource, numpy as np; resource.setrlimit(resource.RLIMIT_AS, ({CEILING} + 2**30, "
              f"resource.RLIM_INFINITY))\ntry:\n    np.zeros((30000, 30000))\nexcept MemoryError:\n    print('MemoryError')")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert "MemoryError" in result.stdout, result.stderr


def test_a_hostile_checkpoint_is_a_vs_error_naming_the_file(tmp_path: Path) -> None:
    pytest.importorskip("vapoursynth")
    import vapoursynth as vs

    from vssr import zoo

    path = stride0_pth(tmp_path)
    with pytest.raises(vs.Error, match=r"vssr\.RealESRGAN: .*stride0\.pth.*refusing a malformed or hostile file"):
        zoo.network("realesrgan", path, func="RealESRGAN")


def test_legitimate_files_still_load(tmp_path: Path) -> None:
    """The bounds leave real files alone: the shipped QuickSRNet .npz and a bf16 .pth."""
    from vssr.weights import npz, onnxfile, pth

    shipped = ROOT / "models" / "quicksrnet" / "small_x2.npz"
    if shipped.is_file():
        with np.load(shipped) as reference:
            state = npz.load(shipped)
            assert sorted(state) == sorted(reference.files)
            for key in reference.files:
                np.testing.assert_array_equal(state[key], reference[key].astype(np.float32))
    weights = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.savez_compressed(tmp_path / "c.npz", w=weights, b=np.zeros(1000, np.float64))
    loaded = npz.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(loaded["w"], weights)
    expanded = torchsave.Tensor(np.arange(3, dtype=np.float32), 0, (4, 3), (0, 1))  # torch .expand() over 3
    raw = pth.load_raw(torchsave.save_zip({"e": expanded}, tmp_path / "expand.pth"))
    np.testing.assert_array_equal(raw["e"], np.tile(np.arange(3, dtype=np.float32), (4, 1)))
    model = onnxfile.load_model(_external_model(tmp_path, "weights.bin", 0, 4000))  # external data in its folder
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(model.graph.initializer[0]), np.arange(1000))
