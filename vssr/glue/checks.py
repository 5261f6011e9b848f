"""Where user mistakes become `vs.Error`: VssrError, small check_* helpers and user_errors().

All checks run when the script is evaluated, before any work, and name the function, the
parameter, what is accepted and how to get there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import vapoursynth as vs

from ..errors import BackendError, ConfigError, ModelError

__all__ = [
    "VssrError",
    "check_clip",
    "check_clips_match",
    "check_pair",
    "check_positive",
    "func_name",
    "user_errors",
]

type Func = Callable[..., object] | str


def func_name(func: Func) -> str:
    return func if isinstance(func, str) else func.__name__


class VssrError(vs.Error):  # type: ignore[misc]  # vapoursynth has no py.typed, so vs.Error is Any to mypy
    """Every user mistake, raised when the script is evaluated."""

    def __init__(self, func: Func, message: str) -> None:
        super().__init__(f"vssr.{func_name(func)}: {message}")


@contextlib.contextmanager
def user_errors(func: Func) -> Iterator[None]:
    """Turn the typed errors of the lower layers into VssrError for the user."""
    try:
        yield
    except VssrError:
        raise
    except (ModelError, ConfigError, BackendError) as err:
        raise VssrError(func, str(err)) from err


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
        raise VssrError(func, f"{param} must be a vs.VideoNode, not {type(clip).__name__}")
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


def check_pair(value: object, func: Func, param: str, *, minimum: int = 0) -> tuple[int, int]:
    """An int or a (width, height) pair of ints >= minimum."""
    pair = (value, value) if isinstance(value, int) else value
    if (
        not isinstance(pair, tuple | list)
        or len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
    ):
        raise VssrError(func, f"{param} must be an int or a (width, height) pair of ints, not {value!r}")
    if min(pair) < minimum:
        raise VssrError(func, f"{param} must be >= {minimum}, not {value!r}")
    return int(pair[0]), int(pair[1])


def check_positive(value: object, func: Func, param: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise VssrError(func, f"{param} must be a positive int, not {value!r}")
    return value
