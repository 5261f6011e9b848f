"""ONNX files read with their external data checked first: inside the model's folder, within the
data files, and exactly as long as the tensors they fill.

`onnx.load_model` follows each tensor's `location`, `offset` and `length` as written: a hostile
model can point at files elsewhere (`../../home/...`, a symlink out of the folder) or declare a
length far beyond the data file, which the read allocates before finding the file shorter.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import external_data_helper, helper

from ..errors import ModelError

__all__ = ["load_model"]


def _tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    """Initializers and tensor attributes of every (sub)graph."""
    found: list[onnx.TensorProto] = []

    def graph(g: onnx.GraphProto) -> None:
        found.extend(g.initializer)
        for node in g.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    found.append(attr.t)
                found.extend(attr.tensors)
                if attr.HasField("g"):
                    graph(attr.g)
                for sub in attr.graphs:
                    graph(sub)

    graph(model.graph)
    return found


def _nbytes(tensor: onnx.TensorProto) -> int | None:
    """Bytes the tensor's dims and type need, or None for types without a fixed itemsize."""
    try:
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        return None
    if tensor.data_type in (onnx.TensorProto.STRING,) or itemsize == 0:
        return None
    return int(math.prod(tensor.dims)) * itemsize


def _check_external(tensor: onnx.TensorProto, folder: Path, source: str) -> None:
    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")
    what = f"{source}: tensor {tensor.name!r} stores its data in {location!r}"
    if not location or os.path.isabs(location):
        raise ModelError(f"{what}; external data must be a path relative to the model's folder")
    target = (folder / location).resolve()
    if not target.is_relative_to(folder):
        raise ModelError(f"{what}, outside the model's folder {folder}; refusing it")
    if not target.is_file():
        raise ModelError(f"{what}, which does not exist")
    size = target.stat().st_size
    try:
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else size - offset
    except ValueError:
        raise ModelError(f"{what} at a malformed offset/length {info}") from None
    if offset < 0 or length < 0 or offset + length > size:
        raise ModelError(f"{what} at bytes {offset}..{offset + length}, beyond its {size:,} bytes")
    expected = _nbytes(tensor)
    if expected is not None and length != expected:
        raise ModelError(f"{what}: {length:,} bytes for dims {list(tensor.dims)}, which need {expected:,}")


def load_model(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """An ONNX model with its external data (if any) loaded after checking every reference.

    Raises:
        ModelError: unreadable file, or external data outside the model's folder, missing, or
            with offsets/lengths that do not fit the data file or the tensor.
    """
    source = os.fspath(path)
    try:
        model = onnx.load_model(source, load_external_data=False)
    except Exception as err:  # onnx raises DecodeError, ValueError, OSError ...
        raise ModelError(f"cannot read ONNX model {source!r}: {err}") from err
    external = [t for t in _tensors(model) if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        folder = Path(source).resolve().parent
        for tensor in external:
            _check_external(tensor, folder, source)
        try:
            external_data_helper.load_external_data_for_model(model, os.fspath(folder))
        except Exception as err:
            raise ModelError(f"cannot read the external data of {source!r}: {err}") from err
    return model
