""".npz weight files (numpy's zip of .npy arrays), read with memory bounded by the file.

`numpy.load` trusts each member's header: a few bytes can declare a (10**5, 10**5) float64 array,
and a DEFLATE-compressed member can inflate far beyond its size. Here every member's declared zip
size is checked against what its .npy header says it holds, only numeric dtypes are accepted
(never object arrays: no pickle), and all bytes are charged to the file's `Budget` before
anything is allocated.
"""

from __future__ import annotations

import ast
import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..types import StateDict
from .bounded import Budget, read_member

__all__ = ["load"]

_MAGIC = b"\x93NUMPY"
_MAX_HEADER = 10_000
"""Bytes of a .npy header accepted (numpy writes ~128; its own limit is 10,000)."""


def _header(data: bytes, source: str, name: str) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """(dtype, shape, fortran order, data offset) of a .npy member's first bytes."""
    if not data.startswith(_MAGIC) or len(data) < 10:
        raise ModelError(f"{source}: member {name} is not a .npy array")
    major = data[6]
    width = 2 if major == 1 else 4
    length = int.from_bytes(data[8:8 + width], "little")
    start = 8 + width
    if major not in (1, 2, 3) or length > _MAX_HEADER or len(data) < start + length:
        raise ModelError(f"{source}: member {name} has a malformed .npy header")
    try:
        header = ast.literal_eval(data[start:start + length].decode("latin1"))
        dtype = np.dtype(header["descr"])
        shape = tuple(header["shape"])
        fortran = bool(header["fortran_order"])
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError) as err:
        raise ModelError(f"{source}: member {name} has a malformed .npy header ({err})") from err
    if dtype.hasobject or dtype.kind not in "biuf" or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ModelError(f"{source}: member {name} holds {dtype} {shape}; weights are numeric arrays (no pickles)")
    return dtype, shape, fortran, start + length


def load(path: str | os.PathLike[str]) -> StateDict:
    """Every array of an .npz as float32, keyed by member name without `.npy`.

    Raises:
        ModelError: missing, unreadable, malformed or hostile file.
    """
    path = Path(path)
    source = os.fspath(path)
    if not path.is_file():
        raise ModelError(f"weights file {source!r} does not exist")
    budget = Budget(path)
    state: StateDict = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                name = info.filename[: -len(".npy")]
                head = read_member(archive, info.filename, budget, size=min(info.file_size, 10 + 4 + _MAX_HEADER))
                dtype, shape, fortran, offset = _header(head, source, info.filename)
                need = offset + math.prod(shape) * dtype.itemsize
                if info.file_size != need:
                    raise ModelError(f"{source}: member {info.filename} declares {shape} {dtype} ({need:,} bytes) "
                                     f"but holds {info.file_size:,} bytes")
                raw = read_member(archive, info.filename, budget, size=need)
                array = np.frombuffer(raw, dtype, offset=offset).reshape(shape, order="F" if fortran else "C")
                budget.charge(array.size * 4, f"array {name}")
                state[name] = np.ascontiguousarray(array, np.float32)
    except ModelError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, TypeError) as err:
        raise ModelError(f"cannot read weights {source!r} (a .npz of arrays): {err}") from err
    if not state:
        raise ModelError(f"{source}: no arrays in the .npz")
    return state
