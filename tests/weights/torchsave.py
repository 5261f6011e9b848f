"""Write torch checkpoints without torch, byte-for-byte the way `torch.save` lays them out.

The pickle names `torch._utils._rebuild_tensor_v2` and `torch.FloatStorage` as globals and refers
to storages by persistent id `("storage", <storage class>, key, "cpu", numel)`, exactly like
torch. To make `pickle` emit those globals, stand-in modules named `torch` and `torch._utils` are
put in `sys.modules` only while pickling.
"""

from __future__ import annotations

import io
import pickle
import sys
import types
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

STORAGE_NAMES = {
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.int64): "LongStorage",
    np.dtype(np.uint16): "BFloat16Storage",  # uint16 arrays stand for bf16 bit patterns
}


class Tensor:
    """A tensor to write: a view (offset/size/stride, in elements) into a flat storage."""

    def __init__(self, storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                 parameter: bool = False, view: int | None = None) -> None:
        self.storage, self.offset, self.size, self.stride, self.parameter = storage, offset, size, stride, parameter
        self.view = view
        """Legacy format only: the tensor sits on a storage view starting at this element offset."""

    @classmethod
    def of(cls, array: np.ndarray, parameter: bool = False) -> Tensor:
        array = np.ascontiguousarray(array)
        strides = tuple(s // array.itemsize for s in array.strides)
        return cls(array.reshape(-1), 0, array.shape, strides, parameter)


class Evil:
    """Pickles as a call to os.system: what a malicious checkpoint does (used by other tests)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("echo pwned > /dev/null",))


@contextmanager
def _fake_torch() -> Iterator[dict[str, object]]:
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args: object) -> None: ...
    def _rebuild_parameter(*args: object) -> None: ...

    for fn in (_rebuild_tensor_v2, _rebuild_parameter):
        fn.__module__, fn.__qualname__ = "torch._utils", fn.__name__
        setattr(utils, fn.__name__, fn)
    classes = {}
    for name in set(STORAGE_NAMES.values()):
        cls = type(name, (), {"__module__": "torch"})
        setattr(torch, name, cls)
        classes[name] = cls
    torch._utils = utils  # type: ignore[attr-defined]
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        yield {"rebuild": _rebuild_tensor_v2, "parameter": _rebuild_parameter, **classes}
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _pickle(obj: object, *, legacy: bool) -> tuple[bytes, list[tuple[str, np.ndarray]]]:
    """Pickle `obj` (protocol 2, like torch) and return the storages in key order."""
    storages: dict[int, tuple[str, np.ndarray]] = {}
    with _fake_torch() as fake:

        class StorageRef:
            def __init__(self, array: np.ndarray, view: int | None) -> None:
                self.array, self.view = array, view

        def convert(o: object) -> object:
            if isinstance(o, Tensor):
                ref = StorageRef(o.storage, o.view)
                args = (ref, o.offset, tuple(o.size), tuple(o.stride), False, OrderedDict())
                rebuilt = _Reduce(fake["rebuild"], args)
                return _Reduce(fake["parameter"], (rebuilt, True, OrderedDict())) if o.parameter else rebuilt
            if isinstance(o, OrderedDict):
                return OrderedDict((k, convert(v)) for k, v in o.items())
            if isinstance(o, dict):
                return {k: convert(v) for k, v in o.items()}
            if isinstance(o, list | tuple):
                return type(o)(convert(v) for v in o)
            return o

        class Pickler(pickle.Pickler):
            def persistent_id(self, o: object) -> object:
                if not isinstance(o, StorageRef):
                    return None
                entry = storages.setdefault(id(o.array), (str(len(storages)), o.array))
                cls = fake[STORAGE_NAMES[o.array.dtype]]
                pid = ("storage", cls, entry[0], "cpu", o.array.size)
                if not legacy:
                    return pid
                view = None if o.view is None else (f"{entry[0]}v{o.view}", o.view, o.array.size - o.view)
                return (*pid, view)

        buf = io.BytesIO()
        Pickler(buf, protocol=2).dump(convert(obj))
    return buf.getvalue(), list(storages.values())


class _Reduce:
    def __init__(self, fn: object, args: tuple[object, ...]) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (self.fn, self.args)


def save_zip(obj: object, path: Path, archive: str = "archive") -> Path:
    """The torch >= 1.6 zip format."""
    data, storages = _pickle(obj, legacy=False)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{archive}/data.pkl", data)
        z.writestr(f"{archive}/byteorder", "little")
        for key, array in storages:
            z.writestr(f"{archive}/data/{key}", array.astype(array.dtype.newbyteorder("<")).tobytes())
        z.writestr(f"{archive}/version", "3\n")
    return path


def save_legacy(obj: object, path: Path) -> Path:
    """The torch < 1.6 stream format (`_use_new_zipfile_serialization=False`)."""
    data, storages = _pickle(obj, legacy=True)
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(data)
        pickle.dump([key for key, _ in storages], f, protocol=2)
        for _, array in storages:
            f.write(int(array.size).to_bytes(8, "little"))
            f.write(array.tobytes())
    return path


def save_pickle(obj: object, path: Path) -> Path:
    """A plain pickle inside a torch-like zip (for malicious-payload tests)."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
    return path
