"""YUV and integer clips in and out of the float RGB/GRAY models: one conversion plan per call.

Every model function is wrapped by `converts_color`: an RGBS/RGBH clip (or GRAYS/GRAYH where the
model takes grey) goes straight through, untouched and unclamped, as before. Any other clip is
converted to RGB float (RGBH for half-float sources, else RGBS) with `core.resize.Bicubic`, the
model runs, its output is clamped to [0, 1] and converted back to the input's format, or to
`format=` when given, with the input's matrix, range and chroma location.

The conversion is decided once, when the script is evaluated, from the props of frame 0 (frame
props may change per frame; a clip whose colorimetry changes mid-way must be split first):

- `_Matrix` is required for YUV (missing or 2, unspecified: a VssrError naming the prop and the
  fix; never a silent BT.709).
- `_Range` (0 limited, 1 full): missing means limited for YUV and GRAY, full for RGB, which is what
  core.resize assumes.
- `_Transfer` and `_Primaries` are carried through unchanged (the models see gamma-encoded RGB in
  the source's primaries, as they were trained); they are required only by the matrices that
  depend on them (BT.2020 constant luminance, chromaticity-derived, ICtCp).
- `_ChromaLocation` (default left) is read by resize on the way in and written on the way out.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import vapoursynth as vs

from .checks import VssrError, func_name, raised_at_caller

__all__ = ["ColorPlan", "converts_color"]

logger = logging.getLogger(__name__)

type Func = Callable[..., object] | str

_UNSPECIFIED = 2
_MATRIX_NAMES = {0: "rgb", 1: "709", 4: "fcc", 5: "470bg", 6: "170m", 7: "240m", 8: "ycgco", 9: "2020ncl",
                 10: "2020cl", 12: "chromancl", 13: "chromacl", 14: "ictcp"}
_NEEDS_TRANSFER = {10, 14}      # BT.2020 CL and ICtCp go through linear light
_NEEDS_PRIMARIES = {12, 13, 14}  # coefficients derived from the primaries
_RANGE_NAMES = {0: "limited", 1: "full"}


def _usual_matrix(width: int, height: int) -> str:
    """What the source most likely is, for the error message only (never applied silently)."""
    if width <= 1024 and height <= 576:
        return "6 (BT.601/170m, SD NTSC) or 5 (470bg, SD PAL)"
    if width <= 2048 and height <= 1536:
        return "1 (BT.709, HD)"
    return "9 (BT.2020 non-constant luminance, UHD) or 1 (BT.709)"


@dataclass(frozen=True, slots=True)
class ColorPlan:
    """How one clip goes to the model's float format and back; decided from frame 0's props."""

    source: vs.VideoFormat
    work: vs.VideoFormat
    """RGBS/RGBH (or GRAYS/GRAYH for grey sources of a model that takes grey)."""
    matrix: int | None
    """The YUV matrix (None for RGB and GRAY sources)."""
    range: int
    chromaloc: int
    target: vs.VideoFormat | None = None
    """The format asked for with format=; None: the source's."""

    @classmethod
    def for_clip(cls, clip: vs.VideoNode, func: Func, *, gray: bool, target: vs.VideoFormat | None,
                 half: bool | None = None) -> ColorPlan:
        """half: work in RGBH (None: when the clip itself is half-float), so that all clips of one
        call share one precision."""
        fmt = clip.format
        if half is None:
            half = fmt.sample_type == vs.FLOAT and fmt.bits_per_sample == 16
        family = vs.GRAY if gray and fmt.color_family == vs.GRAY else vs.RGB
        work = vs.core.get_video_format(
            {(vs.RGB, False): vs.RGBS, (vs.RGB, True): vs.RGBH, (vs.GRAY, False): vs.GRAYS, (vs.GRAY, True): vs.GRAYH}[
                family, half]
        )
        props = clip.get_frame(0).props
        matrix = None
        if fmt.color_family == vs.YUV:
            matrix = int(props.get("_Matrix", _UNSPECIFIED))
            if matrix == _UNSPECIFIED or matrix not in _MATRIX_NAMES:
                what = ("has no _Matrix prop" if "_Matrix" not in props else
                        f"has _Matrix={matrix} ({'unspecified' if matrix == _UNSPECIFIED else 'not a matrix vssr converts'})")
                raise VssrError(
                    func,
                    f"clip is {fmt.name} and its frame 0 {what}, so its YUV->RGB matrix is unknown; give the source its "
                    f"matrix, e.g. clip = core.std.SetFrameProps(clip, _Matrix=1) (a {clip.width}x{clip.height} source is "
                    f"usually {_usual_matrix(clip.width, clip.height)}), or convert it yourself with "
                    "core.resize.Bicubic(clip, format=vs.RGBS, matrix_in_s=...)",
                )
            for prop, needed in (("_Transfer", _NEEDS_TRANSFER), ("_Primaries", _NEEDS_PRIMARIES)):
                if matrix in needed and int(props.get(prop, _UNSPECIFIED)) == _UNSPECIFIED:
                    raise VssrError(
                        func,
                        f"clip has _Matrix={matrix} ({_MATRIX_NAMES[matrix]}), which needs the {prop} prop, and "
                        f"frame 0 has none; tag it with core.std.SetFrameProps(clip, {prop}=...)",
                    )
        default_range = 1 if fmt.color_family == vs.RGB else 0
        plan = cls(fmt, work, matrix, int(props.get("_Range", default_range)),
                   int(props.get("_ChromaLocation", 0)), target)
        if target is not None and target.color_family != vs.RGB and matrix is None and fmt.color_family != vs.GRAY:
            raise VssrError(
                func,
                f"format={target.name}: the {fmt.name} input has no YUV matrix to convert the RGB output with; leave "
                "format= unset and convert the output with core.resize.Bicubic(clip, format=..., matrix_s='709')",
            )
        logger.info(
            "%s: %s converted to %s (%s, %s range%s) and back to %s, clamped to [0, 1]",
            func_name(func), fmt.name, work.name,
            f"matrix {matrix} ({_MATRIX_NAMES[matrix]})" if matrix is not None else "no matrix",
            _RANGE_NAMES.get(plan.range, plan.range), "" if "_Range" in props else " (assumed: no _Range prop)",
            (target or fmt).name,
        )
        return plan

    def to_work(self, clip: vs.VideoNode) -> vs.VideoNode:
        if self.source.id == self.work.id:
            return clip  # only format= asks for a conversion, of the output
        kwargs: dict[str, Any] = {"format": self.work.id, "range_in": self.range}
        if self.matrix is not None:
            kwargs["matrix_in"] = self.matrix
        return vs.core.resize.Bicubic(clip, **kwargs)

    def from_work(self, clip: vs.VideoNode, func: Func) -> vs.VideoNode:
        """Clamp the model's output to [0, 1] and convert it to the target format."""
        out = clip.format
        target = self.target
        if target is None:
            # a GRAY output of an RGB model (inference()) keeps the family it has, at the source's depth
            target = self.source if out.color_family == self.work.color_family else vs.core.query_video_format(
                out.color_family, self.source.sample_type, self.source.bits_per_sample, 0, 0)
        w, h = clip.width, clip.height
        if w % (1 << target.subsampling_w) or h % (1 << target.subsampling_h):
            raise VssrError(
                func,
                f"the {w}x{h} output does not fit the chroma subsampling of {target.name}; pass format= with a "
                "4:4:4 format (e.g. format=vs.YUV444P10)",
            )
        clamped = vs.core.std.Limiter(clip, 0.0, 1.0)
        kwargs: dict[str, Any] = {"format": target.id}
        if target.color_family == vs.YUV:
            kwargs.update(matrix=self.matrix, chromaloc=self.chromaloc)
        elif target.color_family == vs.GRAY and out.color_family == vs.RGB:
            kwargs["matrix"] = self.matrix  # RGB -> Y needs the coefficients too
        if target.color_family == self.source.color_family:
            kwargs["range"] = self.range
        return vs.core.resize.Bicubic(clamped, **kwargs)


def _needs_plan(clip: object, gray: bool, target: vs.VideoFormat | None) -> bool:
    if not isinstance(clip, vs.VideoNode) or clip.format is None or clip.width == 0 or clip.height == 0:
        return False  # the model function's own checks say what is wrong
    fmt = clip.format
    if fmt.id == vs.PresetVideoFormat.NONE:
        return False
    if fmt.color_family == vs.GRAY and not gray:
        return False  # an RGB model has no meaning for grey: its check says what to pass
    native = fmt.color_family != vs.YUV and fmt.sample_type == vs.FLOAT and fmt.bits_per_sample in (16, 32)
    return target is not None or not native


def _target_format(value: object, func: Func) -> vs.VideoFormat | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, int | vs.VideoFormat):
            raise TypeError(value)
        return vs.core.get_video_format(value)
    except (vs.Error, TypeError, ValueError) as err:
        raise VssrError(func, f"format must be a vs.PresetVideoFormat (e.g. vs.YUV420P10) or None, not {value!r}") from err


def converts_color[F: Callable[..., vs.VideoNode]](*, gray: bool = False) -> Callable[[F], F]:
    """Let a model function on float RGB (and GRAY with gray=True) take any clip, and add format=.

    The first argument may also be a list of clips (inference()): each is converted, and the
    output goes back to the first one's format.
    """

    def decorate(model: F) -> F:
        clip_param = next(iter(inspect.signature(model).parameters))  # "clip", or "clips" for inference()

        @raised_at_caller
        @functools.wraps(model)
        def wrapper(*args: Any, format: object = None, **kwargs: Any) -> vs.VideoNode:
            named = kwargs.get("func")  # inference(func=...): errors carry the caller's name
            func: Func = named if (isinstance(named, str) and named) or callable(named) else model
            target = _target_format(format, func)
            if args:
                clip, args = args[0], args[1:]
            elif clip_param in kwargs:
                clip = kwargs.pop(clip_param)
            else:
                return model(*args, **kwargs)  # the model function names what is missing
            clips = list(clip) if isinstance(clip, Sequence) else [clip]
            if not any(_needs_plan(c, gray, target) for c in clips):
                return model(clip, *args, **kwargs)  # float RGB: the unchanged fast path
            # format= applies to the output, i.e. to the first clip's plan; one working precision for
            # all clips: half if a clip that runs as it is is half-float
            natives = [c for i, c in enumerate(clips) if not _needs_plan(c, gray, target if i == 0 else None)]
            half = any(isinstance(c, vs.VideoNode) and c.format is not None and c.format.bits_per_sample == 16
                       for c in natives) if natives else None
            plans = [ColorPlan.for_clip(c, func, gray=gray, target=target if i == 0 else None, half=half)
                     if _needs_plan(c, gray, target if i == 0 else None) else None for i, c in enumerate(clips)]
            converted = [p.to_work(c) if p is not None else c for p, c in zip(plans, clips, strict=True)]
            result = model(converted if isinstance(clip, Sequence) else converted[0], *args, **kwargs)
            first = plans[0]
            return first.from_work(result, func) if first is not None else result

        params = list(inspect.signature(model).parameters.values())
        keyword = inspect.Parameter("format", inspect.Parameter.KEYWORD_ONLY, default=None)
        at = next((i for i, p in enumerate(params) if p.kind == inspect.Parameter.VAR_KEYWORD), len(params))
        wrapper.__signature__ = inspect.signature(model).replace(  # type: ignore[attr-defined]
            parameters=[*params[:at], keyword, *params[at:]])
        return wrapper  # type: ignore[return-value]

    return decorate
