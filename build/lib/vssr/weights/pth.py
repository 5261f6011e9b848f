"""PyTorch checkpoints (.pth/.pkl) read without torch, through an allow-listed unpickler.

Two container formats are read:

* the zip format of `torch.save` (torch >= 1.6): `<archive>/data.pkl` plus one raw little-endian
  storage per key in `<archive>/data/<key>`;
* the legacy stream format (torch < 1.6, or `_use_new_zipfile_serialization=False`): a magic
  number, protocol and sys-info pickle, the object pickle, the list of storage keys, then each
  storage as an int64 element count followed by its bytes.

Tensors are rebuilt as numpy arrays (offset, sizes and strides honoured; fp16/bf16/fp64 -> float32
for `load`). `find_class` admits only the globals a state dict needs; anything else (`os.system`,
`builtins.eval`, ...) raises ModelError naming it, before any of it runs.
"""

from __future__ import annotations

import _compat_pickle
import io
import logging
import math
import os
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import ModelError
from ..types import StateDict
from .canonical import state_dict

__all__ = ["load", "load_raw"]

logger = logging.getLogger(__name__)

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# torch storage class name -> numpy dtype of its elements (bf16 is read as uint16 and widened).
_STORAGES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),
    "DoubleStorage": np.dtype("<f8"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True, slots=True)
class _StorageType:
    """What `find_class("torch", "FloatStorage")` returns: a marker, never callable."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return _STORAGES[self.name]


@dataclass(slots=True)
class _Storage:
    kind: _StorageType
    key: str
    numel: int
    data: np.ndarray | None = None  # filled after the pickle is read (legacy stores data after it)


@dataclass(slots=True)
class _PendingTensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _ints(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or not all(isinstance(v, int) and v >= 0 for v in value):
        raise ModelError(f"malformed tensor {what}: {value!r}")
    return tuple(value)


def _rebuild_tensor_v2(storage: object, storage_offset: object, size: object, stride: object,
                       requires_grad: object = False, backward_hooks: object = None,
                       metadata: object = None) -> _PendingTensor:
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise ModelError("malformed tensor record in checkpoint")
    if isinstance(storage, _StorageView):
        storage_offset += storage.offset
        storage = storage.root
    if not isinstance(storage, _Storage):
        raise ModelError("malformed tensor record in checkpoint")
    sizes, strides = _ints(size, "size"), _ints(stride, "stride")
    if len(sizes) != len(strides):
        raise ModelError(f"tensor size {sizes} and stride {strides} differ in rank")
    return _PendingTensor(storage, storage_offset, sizes, strides)


def _rebuild_tensor(storage: object, storage_offset: object, size: object, stride: object) -> _PendingTensor:
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data: object, requires_grad: object = False, backward_hooks: object = None,
                       state: object = None) -> object:
    return data


def _rebuild_from_type_v2(func: object, new_type: object, args: object, state: object) -> object:
    if func not in _REBUILDERS or not isinstance(args, tuple):
        raise ModelError("malformed tensor-subclass record in checkpoint")
    return func(*args)


class _TypeMarker:
    """torch.Tensor / torch.nn.Parameter as named by `_rebuild_from_type_v2`; never called."""

    def __init__(self, name: str) -> None:
        self.name = name


def _encode(text: str, encoding: str = "latin1") -> bytes:  # _codecs.encode, used by protocol 2 for bytes
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise ModelError("unexpected _codecs.encode call in checkpoint")
    return text.encode(encoding)


_REBUILDERS = (_rebuild_tensor_v2, _rebuild_tensor, _rebuild_parameter)

_ALLOWED: dict[tuple[str, str], object] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _TypeMarker("torch.Tensor"),
    ("torch.nn.parameter", "Parameter"): _TypeMarker("torch.nn.Parameter"),
    ("collections", "OrderedDict"): OrderedDict,
    ("_codecs", "encode"): _encode,
    **{("torch", name): _StorageType(name) for name in _STORAGES},
}


class _Unpickler(pickle.Unpickler):
    """Allow-list unpickler: storages come from `persistent_load`, tensors from `_rebuild_*`."""

    def __init__(self, file: BinaryIO, source: str) -> None:
        super().__init__(file, encoding="utf-8")
        self.source = source
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        # Protocol 2 writes Python 2 names (__builtin__.eval); name them as Python 3 does.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise ModelError(
                f"{self.source}: refusing to load: the pickle references the global {module}.{name}, "
                "which a weights file never needs (it may run code)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise ModelError(f"{self.source}: unsupported persistent record {str(pid)[:80]!r}")
        kind, key, numel = pid[1], str(pid[2]), pid[4]
        if not isinstance(kind, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise ModelError(f"{self.source}: malformed storage record {str(pid)[:80]!r}")
        storage = self.storages.setdefault(key, _Storage(kind, key, numel))
        view = pid[5] if len(pid) > 5 else None
        if view is not None:  # legacy views: (view_key, offset, size) into the root storage
            if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[1], int)):
                raise ModelError(f"{self.source}: malformed storage view {view!r}")
            return _StorageView(storage, view[1])
        return storage


@dataclass(frozen=True, slots=True)
class _StorageView:
    """Legacy storage view: an element offset into a root storage."""

    root: _Storage
    offset: int


def _to_array(t: _PendingTensor, source: str) -> np.ndarray:
    storage, offset = t.storage, t.offset
    if storage.data is None:
        raise ModelError(f"{source}: storage {storage.key!r} has no data")
    flat = storage.data
    count = math.prod(t.size)
    if count == 0:
        return np.zeros(t.size, flat.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(t.size, t.stride, strict=True))
    if last >= flat.size:  # as_strided does not check bounds: this check keeps reads in the buffer
        raise ModelError(f"{source}: tensor overruns its storage {storage.key!r} ({last} >= {flat.size})")
    base = flat[offset:]
    strides = tuple(s * flat.itemsize for s in t.stride)
    array = np.lib.stride_tricks.as_strided(base, shape=t.size, strides=strides, writeable=False)
    return np.array(array, copy=True, order="C")


def _widen(array: np.ndarray, kind: _StorageType) -> np.ndarray:
    if kind.name == "BFloat16Storage":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _resolve(obj: object, source: str, memo: dict[int, object]) -> object:
    """Replace pending tensors by numpy arrays throughout dicts, lists and tuples."""
    if id(obj) in memo:
        return memo[id(obj)]
    result: object
    if isinstance(obj, _PendingTensor):
        result = _widen(_to_array(obj, source), obj.storage.kind)
    elif isinstance(obj, OrderedDict):
        result = OrderedDict((k, _resolve(v, source, memo)) for k, v in obj.items())
    elif isinstance(obj, dict):
        result = {k: _resolve(v, source, memo) for k, v in obj.items()}
    elif isinstance(obj, list):
        result = [_resolve(v, source, memo) for v in obj]
    elif isinstance(obj, tuple):
        result = tuple(_resolve(v, source, memo) for v in obj)
    elif isinstance(obj, _Storage | _StorageView | _TypeMarker | _StorageType):
        raise ModelError(f"{source}: a bare storage or type in the checkpoint is not supported")
    else:
        result = obj
    memo[id(obj)] = result
    return result


def _storage_bytes(storage: _Storage, raw: bytes, source: str, *, big_endian: bool = False) -> None:
    dtype = storage.kind.dtype
    need = storage.numel * dtype.itemsize
    if len(raw) < need:
        raise ModelError(f"{source}: storage {storage.key!r} is truncated ({len(raw)} < {need} bytes)")
    data = np.frombuffer(raw, dtype.newbyteorder(">") if big_endian else dtype, count=storage.numel)
    storage.data = data.astype(dtype) if big_endian else data


def _read_zip(path: Path, source: str) -> object:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pkl = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pkl) != 1:
            raise ModelError(f"{source}: a zip without exactly one data.pkl is not a torch checkpoint")
        prefix = pkl[0][: -len("data.pkl")]
        big_endian = False
        if f"{prefix}byteorder" in names:
            big_endian = archive.read(f"{prefix}byteorder").strip() == b"big"
        unpickler = _Unpickler(io.BytesIO(archive.read(pkl[0])), source)
        obj = unpickler.load()
        for key, storage in unpickler.storages.items():
            try:
                raw = archive.read(f"{prefix}data/{key}")
            except KeyError:
                raise ModelError(f"{source}: storage data/{key} is missing from the archive") from None
            _storage_bytes(storage, raw, source, big_endian=big_endian)
    return obj


def _read_legacy(f: BinaryIO, source: str) -> object:
    magic = _Unpickler(f, source).load()
    if magic != _LEGACY_MAGIC:
        raise ModelError(f"{source}: not a PyTorch checkpoint (no zip archive, no legacy magic number)")
    protocol = _Unpickler(f, source).load()
    if protocol != _LEGACY_PROTOCOL:
        raise ModelError(f"{source}: unsupported legacy torch protocol {protocol!r}")
    sys_info = _Unpickler(f, source).load()
    big_endian = isinstance(sys_info, dict) and sys_info.get("little_endian") is False
    unpickler = _Unpickler(f, source)
    obj = unpickler.load()
    keys = _Unpickler(f, source).load()
    if not isinstance(keys, list):
        raise ModelError(f"{source}: malformed legacy storage key list")
    for key in map(str, keys):
        storage = unpickler.storages.get(key)
        if storage is None:
            raise ModelError(f"{source}: legacy storage {key!r} is not referenced by the pickle")
        header = f.read(8)
        if len(header) != 8:
            raise ModelError(f"{source}: truncated legacy checkpoint")
        numel = int.from_bytes(header, "big" if big_endian else "little", signed=True)
        if numel != storage.numel:
            raise ModelError(f"{source}: legacy storage {key!r} holds {numel} elements, expected {storage.numel}")
        _storage_bytes(storage, f.read(numel * storage.kind.dtype.itemsize), source, big_endian=big_endian)
    return obj


def load_raw(path: str | os.PathLike[str]) -> Any:
    """The unpickled top-level object of a checkpoint, tensors as numpy arrays, not canonicalised.

    Floating tensors keep their stored precision except bf16, which is widened to float32.

    Raises:
        ModelError: missing, unreadable or unsafe file.
    """
    path = Path(path)
    source = os.fspath(path)
    if not path.is_file():
        raise ModelError(f"weights file {source!r} does not exist")
    try:
        if zipfile.is_zipfile(path):
            obj = _read_zip(path, source)
        else:
            with open(path, "rb") as f:
                if f.read(512).startswith(b"ustar", 257):
                    raise ModelError(f"{source}: the tar checkpoint format of torch < 0.4 is not supported")
                f.seek(0)
                obj = _read_legacy(f, source)
        return _resolve(obj, source, {})
    except ModelError:
        raise
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, TypeError, KeyError,
            AttributeError, IndexError, OverflowError, MemoryError, RecursionError) as err:
        raise ModelError(f"cannot read checkpoint {source!r}: {type(err).__name__}: {err}") from err


def load(path: str | os.PathLike[str]) -> StateDict:
    """A canonical StateDict (float32 arrays under the network's PyTorch keys) from a .pth/.pkl.

    Wrappers such as `params_ema`/`params`/`state_dict` are unwrapped (the choice is logged) and
    `module.`/`netG.` prefixes stripped; see `vssr.weights.canonical`.

    Raises:
        ModelError: missing, unreadable or unsafe file, or no tensors in it.
    """
    state = state_dict(load_raw(path), source=os.fspath(path))
    logger.debug("%s: %d tensors", os.fspath(path), len(state))
    return state
