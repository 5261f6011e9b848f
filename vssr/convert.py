"""Weight files -> ONNX graphs, converted once into the models cache.

`convert(name, paths, converter, archs)` writes `files.models_dir()/<name>.<digest16>.onnx` through
`cachefile.load_or_build` (locked, atomic, checked against its `.meta.json` sidecar before each
use). The digest covers the weight files' sha256, the cache name, the accepted architecture ids
and the source of the modules the conversion runs, so a changed file or builder makes a new cache
entry instead of reusing a stale one. The converters live here, apart from the model registry
(`vssr.zoo`), so that adding a model name to the registry does not invalidate converted files.

`from_pth`/`from_ncnn` are the generic converters: read the file (`vssr.weights`), detect the
architecture among the accepted ids (`arch.registry.detect`), build its graph.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import onnx

from . import cachefile, files
from .arch import compact, registry
from .errors import ModelError
from .types import StateDict
from .weights import ncnn, pth

__all__ = ["BY_SUFFIX", "Converter", "convert", "file_digest", "from_ncnn", "from_pth"]

logger = logging.getLogger(__name__)

type Converter = Callable[[Sequence[Path], Sequence[str]], onnx.ModelProto]
"""(weight files, allowed architecture ids) -> ONNX model."""


def _checked_arch(state: StateDict, archs: Sequence[str], source: str) -> registry.Architecture:
    arch = registry.detect(state)
    if archs and arch.id not in archs:
        raise ModelError(f"{source} holds a {arch.id!r} network; this function accepts {', '.join(archs)}")
    return arch


def from_pth(paths: Sequence[Path], archs: Sequence[str]) -> onnx.ModelProto:
    """A torch checkpoint: detect the architecture, build its graph."""
    state = pth.load(paths[0])
    return _checked_arch(state, archs, os.fspath(paths[0])).build(state)


def from_ncnn(paths: Sequence[Path], archs: Sequence[str]) -> onnx.ModelProto:
    """An ncnn .param (+ .bin): the x2/x3 animevideov3 files become the x4 net + a bicubic Resize."""
    param = paths[0]
    state = ncnn.load(param, paths[1] if len(paths) > 1 else None)
    arch = _checked_arch(state, archs, os.fspath(param))
    down = ncnn.trailing_resize(param)
    if down is None:
        return arch.build(state)
    if arch.id != "compact":
        raise ModelError(f"{os.fspath(param)}: a trailing resize is only supported after SRVGGNetCompact")
    scale = compact.CompactParams.from_state(state).scale * down
    if scale.denominator != 1:
        raise ModelError(f"{os.fspath(param)}: the final resize gives a non-integer scale {scale}")
    return compact.build(state, out_scale=int(scale))


BY_SUFFIX: dict[str, Converter] = {".pth": from_pth, ".pt": from_pth, ".pkl": from_pth, ".param": from_ncnn}
"""The converter of a weights file, by suffix (.onnx files are used as they are)."""

_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file, memoised per (path, mtime, size) for this process."""
    stat = path.stat()
    key = (os.fspath(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _DIGESTS:
        _DIGESTS[key] = files.sha256_file(path)
    return _DIGESTS[key]


def _converter_digest(converter: Converter, archs: Sequence[str]) -> str:
    """sha256 over the source of the modules a conversion runs (a changed builder = a new cache entry).

    Counted: the shared graph/weights modules, the converter's own module, and `vssr.arch.<id>`
    for each architecture id the family accepts (ids name their modules).
    """
    digest = hashlib.sha256()
    mods = ["vssr.arch.ops", "vssr.arch.registry", "vssr.weights.pth", "vssr.weights.ncnn",
            "vssr.weights.canonical", getattr(converter, "__module__", None) or __name__,
            *(f"vssr.arch.{a}" for a in archs)]
    for name in dict.fromkeys(mods):
        module = sys.modules.get(name) or importlib.import_module(name)
        if module.__file__:
            digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def _onnx_from_bytes(data: bytes) -> onnx.ModelProto:
    """A cached converted model (verified bytes); raises when they do not parse."""
    model = onnx.load_model_from_string(data)
    if not model.graph.output:
        raise ModelError("the ONNX graph has no outputs")
    return model


def convert(name: str, paths: Sequence[Path], converter: Converter, archs: Sequence[str]) -> onnx.ModelProto:
    """Convert weight files once into the models cache (verified by its sidecar before each use)."""
    digest = hashlib.sha256(f"{name}\n{','.join(archs)}\n{_converter_digest(converter, archs)}\n".encode())
    for path in paths:
        digest.update(file_digest(path).encode())
    target = files.models_dir() / f"{files.readable_stem(name)}.{digest.hexdigest()[:16]}.onnx"

    def produce() -> bytes:
        logger.info("converting %s to ONNX (once): %s", " + ".join(p.name for p in paths), target)
        model = converter(paths, archs)
        data: bytes = model.SerializeToString()
        return data

    key = {"kind": "converted-onnx", "name": name, "digest": digest.hexdigest()}
    return cachefile.load_or_build(target, key, produce, _onnx_from_bytes, env="VSSR_MODEL_DIR")
