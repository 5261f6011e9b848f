"""Where user mistakes become `vs.Error`: VssrError, small check_* helpers and user_errors().

All checks run when the script is evaluated, before any work, and name the function, the
parameter, what is accepted and how to get there.
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import os
from collections.abc import Callable, Collection, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import vapoursynth as vs

from .. import validation
from ..backends.base import BackendConfig
from ..errors import BackendError, ConfigError, ModelError

__all__ = [
    "VssrError",
    "VssrValueError",
    "check_backend",
    "check_bool",
    "check_choice",
    "check_clip",
    "check_clips_match",
    "check_dtype",
    "check_file",
    "check_frame_count",
    "check_func",
    "check_int",
    "check_pair",
    "check_positive",
    "check_real",
    "check_scale",
    "check_tiles",
    "func_name",
    "named_errors",
    "raised_at_caller",
    "tile_overlap",
    "user_errors",
]

type Func = Callable[..., object] | str


def func_name(func: Func) -> str:
    return func if isinstance(func, str) else func.__name__


class VssrError(vs.Error):  # type: ignore[misc]  # vapoursynth has no py.typed, so vs.Error is Any to mypy
    """Every user mistake, raised when the script is evaluated."""

    def __init__(self, func: Func, message: str) -> None:
        super().__init__(f"vssr.{func_name(func)}: {message}")


class VssrValueError(VssrError, ValueError):
    """A value wrong in itself (a `vssr.validation` rule); also a ValueError, as the lower layers raise."""


@contextlib.contextmanager
def named_errors(func: Func) -> Iterator[None]:
    """The ValueErrors of `vssr.validation` rules (which name the parameter) as VssrError."""
    try:
        yield
    except ValueError as err:
        raise VssrValueError(func, str(err)) from err


@contextlib.contextmanager
def user_errors(func: Func) -> Iterator[None]:
    """Turn the typed errors of the lower layers into VssrError for the user."""
    try:
        yield
    except VssrError:
        raise
    except (ModelError, ConfigError, BackendError) as err:
        raise VssrError(func, str(err)) from err


def raised_at_caller[F: Callable[..., object]](public: F) -> F:
    """A public function whose VssrError points at its caller's line, not at vssr's internals.

    The mistake is in the caller's arguments, and VapourSynth editors (vsview, vspreview) show the
    innermost frame of the traceback: so the error's own traceback is dropped and re-raised with a
    bare `raise`, which adds no frame for this wrapper; unwinding then adds the caller's frames only.
    A lower layer's error it was made from stays chained (`__cause__`, with its full traceback).
    VSSR_TRACEBACK=full keeps every frame (debugging vssr itself).
    """

    @functools.wraps(public)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return public(*args, **kwargs)
        except VssrError as err:
            if os.environ.get("VSSR_TRACEBACK") != "full":
                err.__traceback__ = None
            raise

    return wrapper  # type: ignore[return-value]


def _format_name(clip: vs.VideoNode) -> str:
    return clip.format.name if clip.format else "variable format"


def check_clip(
    clip: object,
    func: Func,
    param: str = "clip",
    *,
    families: Sequence[vs.ColorFamily] = (vs.RGB, vs.GRAY),
) -> vs.VideoNode:
    """A constant-format, constant-size float RGB/GRAY clip (16 or 32 bit)."""
    if not isinstance(clip, vs.VideoNode):
        raise VssrError(func, f"{param} must be a vs.VideoNode, not {validation.shown(clip)}")
    fmt = clip.format
    if fmt is None or fmt.id == vs.PresetVideoFormat.NONE:
        raise VssrError(func, f"{param} must have a constant format; convert with core.resize.Bicubic(format=vs.RGBS)")
    if clip.width == 0 or clip.height == 0:
        raise VssrError(func, f"{param} must have a constant frame size (got a variable-size clip); resize it first")
    accepted = " or ".join(f"{fam.name}S/{fam.name}H" for fam in families)
    if fmt.color_family not in families:
        hint = (
            f"convert with core.resize.Bicubic({param}, format=vs.RGBS) after tagging its matrix "
            f"(core.std.SetFrameProps({param}, _Matrix=...))"
            if fmt.color_family == vs.YUV
            else f"convert with core.resize.Bicubic({param}, format=vs.RGBS)"
        )
        raise VssrError(func, f"{param} must be {accepted}, not {fmt.name}; {hint}")
    if fmt.sample_type != vs.FLOAT or fmt.bits_per_sample not in (16, 32):
        target = "RGBS" if fmt.color_family == vs.RGB else "GRAYS"
        raise VssrError(
            func,
            f"{param} must be float ({accepted}), not the integer format {fmt.name}; "
            f"convert with core.resize.Point({param}, format=vs.{target}) (or {target[:-1]}H for fp16)",
        )
    return clip


def check_clips_match(clips: Sequence[vs.VideoNode], func: Func, param: str = "clips") -> None:
    """Several input clips must share size, length and sample type."""
    first = clips[0]
    for i, clip in enumerate(clips[1:], 1):
        if (clip.width, clip.height) != (first.width, first.height):
            raise VssrError(func, f"{param}[{i}] is {clip.width}x{clip.height}; all clips must be {first.width}x{first.height}")
        if clip.num_frames != first.num_frames:
            raise VssrError(func, f"{param}[{i}] has {clip.num_frames} frames; all clips must have {first.num_frames}")
        if clip.format.bits_per_sample != first.format.bits_per_sample:
            raise VssrError(func, f"{param}[{i}] is {_format_name(clip)}; all clips must be {first.format.bits_per_sample}-bit float")


def check_int(
    value: object, func: Func, param: str, minimum: int = 0, maximum: int | None = None, *, optional: bool = False
) -> int | None:
    """An int (numpy integers too; never a bool, float or str) in minimum..maximum."""
    with named_errors(func):
        return validation.require_int(param, value, minimum, maximum, optional=optional)


def check_positive(value: object, func: Func, param: str, maximum: int | None = None) -> int:
    return check_int(value, func, param, 1, maximum)  # type: ignore[return-value]  # not optional: an int


def check_bool(value: object, func: Func, param: str, *, optional: bool = False) -> bool | None:
    """True or False (never 0/1 or a string such as "no")."""
    with named_errors(func):
        return validation.require_bool(param, value, optional=optional)


def check_real(
    value: object, func: Func, param: str, minimum: float, maximum: float, *, open_minimum: bool = False,
    optional: bool = False,
) -> float | None:
    with named_errors(func):
        return validation.require_real(param, value, minimum, maximum, open_minimum=open_minimum, optional=optional)


def check_choice[T](value: T, func: Func, param: str, choices: Collection[object], *, optional: bool = False) -> T:
    with named_errors(func):
        return validation.require_choice(param, value, choices, optional=optional)


def check_pair(value: object, func: Func, param: str, *, minimum: int = 0) -> tuple[int, int]:
    """An int or a (width, height) pair of ints >= minimum."""
    with named_errors(func):
        return validation.require_pair(param, value, minimum)


def check_tiles(tilesize: object, overlap: object, func: Func) -> None:
    """tilesize: None or an int / (width, height) >= 1; overlap: None or an int / pair >= 0.
    (How they fit the network and the frame is checked where the tiles are planned.)"""
    if tilesize is not None:
        check_pair(tilesize, func, "tilesize", minimum=1)
    if overlap is not None:
        check_pair(overlap, func, "overlap")


def tile_overlap(tilesize: object, overlap: object, func: Func, default: int = 0) -> tuple[int, int]:
    """The one rule for `overlap` in every filter and `inference` (docs/parameters.md).

    Overlap is the context a tile reads past the part it keeps, so it means something only with
    tiles: None (every function's default) is `default` (the filter's receptive radius) with
    tilesize and 0 without; 0 is accepted either way; any other overlap without tilesize is
    refused rather than silently dropped. Both are checked as `check_tiles` does.
    """
    check_tiles(tilesize, overlap, func)
    if overlap is None:
        return (default, default) if tilesize is not None else (0, 0)
    pair = check_pair(overlap, func, "overlap")
    if tilesize is None and pair != (0, 0):
        raise VssrError(
            func,
            f"overlap={overlap!r} without tilesize: overlap is the context each tile reads past the part it keeps, "
            "and without tilesize the whole frame is one tile; pass tilesize= too, or leave overlap unset",
        )
    return pair


def check_scale(value: object, func: Func, param: str = "scale") -> Fraction:
    """A positive size ratio: an int, a Fraction or a float (never a bool or str)."""
    number = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_) and math.isfinite(value)
    ratio = Fraction(0)
    if number:
        ratio = Fraction(value) if isinstance(value, numbers.Rational) else Fraction(float(value))  # type: ignore[arg-type]
    if ratio <= 0:
        raise VssrValueError(func, f"{param} must be a positive number (an int, Fraction or float), not {value!r}")
    return ratio


def check_dtype(value: object, func: Func, param: str = "dtype") -> np.dtype:
    """float32 or float16, as a numpy dtype or type."""
    try:
        dtype: np.dtype | None = np.dtype(value)  # type: ignore[call-overload]
    except TypeError:
        dtype = None
    if value is None or dtype not in (np.float32, np.float16):
        raise VssrValueError(func, f"{param} must be numpy.float32 or numpy.float16, not {value!r}")
    return dtype


def check_file(value: object, func: Func, param: str, what: str) -> Path:
    """An existing regular file (a directory or a missing path is said as such)."""
    with named_errors(func):
        return validation.require_file(param, value, what)


def check_backend(value: object, func: Func, param: str = "backend") -> None:
    """A vssr.Backend.* config or None (the default backend)."""
    if value is not None and not isinstance(value, BackendConfig):
        raise VssrValueError(
            func, f"{param} must be a vssr.Backend.* config (ORT(), OV(), TRT(), TRT_RTX()) or None, not {value!r}"
        )


def check_func(value: object, func: Func, param: str = "func") -> None:
    """The name shown in messages: a function or a str."""
    if not (callable(value) or (isinstance(value, str) and value)):
        raise VssrValueError(func, f"{param} must be a function or a non-empty str naming the caller, not {value!r}")


def check_frame_count(count: int, func: Func, what: str) -> int:
    """An output frame count VapourSynth can hold (its frame numbers are C ints)."""
    if count > validation.INT32_MAX:
        raise VssrValueError(
            func,
            f"{what} gives {count} output frames; VapourSynth clips hold at most {validation.INT32_MAX}: "
            "use a lower rate or a shorter clip",
        )
    return count
