"""Value rules shared by every layer: exact types and ranges, one rule per concept.

Each `require_*` returns the value normalised (numpy integers become int, lists of a pair become a
tuple) or raises ParameterError (a ValueError) naming the parameter, the value and what is accepted. The backend
configs call them directly (that layer never imports VapourSynth); `vssr.glue.checks` raises the
same messages as `VssrError` for the model functions.

Exact types: a bool is not an int (`True == 1` in Python), a str is not a bool (`bool("no")` is
True), a float is not an int (1.5 streams). numpy integers are ints, numpy bools are bools and
numpy floats are reals, because values read from arrays are numpy scalars.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Collection
from pathlib import Path
from typing import Literal, overload

import numpy as np

__all__ = [
    "INT32_MAX",
    "ParameterError",
    "require_bool",
    "require_choice",
    "require_file",
    "require_int",
    "require_pair",
    "require_real",
    "shown",
]

INT32_MAX = 2**31 - 1
"""VapourSynth's frame counts, frame numbers and frame sizes are C ints."""


class ParameterError(ValueError):
    """A parameter value wrong in itself (type or range); the message names the parameter."""


def shown(value: object, limit: int = 80) -> str:
    """A value as a message shows it: its repr, or its type where the repr is long (a model proto)."""
    text = repr(value)
    return text if len(text) <= limit else f"a {type(value).__name__}"


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


@overload
def require_int(
    name: str, value: object, minimum: int = 0, maximum: int | None = None, *, optional: Literal[False] = False
) -> int: ...
@overload
def require_int(
    name: str, value: object, minimum: int = 0, maximum: int | None = None, *, optional: bool
) -> int | None: ...
def require_int(
    name: str,
    value: object,
    minimum: int = 0,
    maximum: int | None = None,
    *,
    optional: bool = False,
) -> int | None:
    """An int (numpy integers too, never a bool, float or str) in minimum..maximum (or None if optional)."""
    if value is None and optional:
        return None
    accepted = (f"an int >= {minimum}" if maximum is None else f"an int in {minimum}..{maximum}") + (
        " or None" if optional else ""
    )
    if not _is_int(value):
        raise ParameterError(f"{name} must be {accepted}, not {value!r} ({type(value).__name__})")
    number: int = int(value)  # type: ignore[call-overload]
    if number < minimum or (maximum is not None and number > maximum):
        raise ParameterError(f"{name} must be {accepted}, not {number}")
    return number


@overload
def require_bool(name: str, value: object, *, optional: Literal[False] = False) -> bool: ...
@overload
def require_bool(name: str, value: object, *, optional: bool) -> bool | None: ...
def require_bool(name: str, value: object, *, optional: bool = False) -> bool | None:
    """True or False (a numpy bool too; never 0/1 or a string such as "no"), or None if optional."""
    if value is None and optional:
        return None
    if not isinstance(value, bool | np.bool_):
        raise ParameterError(f"{name} must be True or False{' or None' if optional else ''}, not {value!r}")
    return bool(value)


def require_real(
    name: str,
    value: object,
    minimum: float,
    maximum: float,
    *,
    open_minimum: bool = False,
    optional: bool = False,
) -> float | None:
    """A real number (int, float, numpy number; never a bool or str) in [minimum, maximum]
    ((minimum, maximum] with open_minimum), or None if optional."""
    if value is None and optional:
        return None
    low = "(" if open_minimum else "["
    accepted = f"a number in {low}{minimum:g}, {maximum:g}]" + (" or None" if optional else "")
    if not isinstance(value, numbers.Real) or isinstance(value, bool | np.bool_):
        raise ParameterError(f"{name} must be {accepted}, not {value!r} ({type(value).__name__})")
    number = float(value)
    if not (minimum < number if open_minimum else minimum <= number) or not number <= maximum:
        raise ParameterError(f"{name} must be {accepted}, not {value!r}")
    return number


def _same_kind(value: object, choice: object) -> bool:
    """Strings match strings and bools match bools only (True == 1 and 1 == 1.0 in Python)."""
    if isinstance(value, str) or isinstance(choice, str):
        return isinstance(value, str) and isinstance(choice, str)
    if isinstance(value, bool | np.bool_) or isinstance(choice, bool):
        return isinstance(value, bool | np.bool_) and isinstance(choice, bool)
    return isinstance(value, numbers.Number)


def require_choice[T](name: str, value: T, choices: Collection[object], *, optional: bool = False) -> T:
    """One of `choices`, of the same kind (True is not the choice 1, "2" not 2; 2.0 is 2). None if optional."""
    if value is None and optional:
        return value
    if any(_same_kind(value, choice) and value == choice for choice in choices):
        return value
    listed = ", ".join(repr(c) for c in choices) + (" or None" if optional else "")
    raise ParameterError(f"{name} must be one of {listed}, not {value!r}")


def require_pair(name: str, value: object, minimum: int = 0) -> tuple[int, int]:
    """An int or a (width, height) pair of ints, each >= minimum."""
    pair = (value, value) if _is_int(value) else value
    if not isinstance(pair, tuple | list) or len(pair) != 2 or not all(_is_int(v) for v in pair):
        raise ParameterError(f"{name} must be an int or a (width, height) pair of ints, not {value!r}")
    width, height = (int(v) for v in pair)
    if min(width, height) < minimum:
        raise ParameterError(f"{name} must be >= {minimum}, not {value!r}")
    return width, height


def require_file(name: str, value: object, what: str, *, error: type[ValueError] = ParameterError) -> Path:
    """The path of an existing regular file; `what` says what it should be ("an ONNX file").
    `error`: the ValueError subclass to raise (ModelError where a model file is read)."""
    if not isinstance(value, str | os.PathLike):
        raise error(f"{name} must be the path of {what}, not {value!r}")
    path = Path(value)
    if path.is_dir():
        raise error(f"{name}: {os.fspath(path)!r} is a directory; give the path of {what}")
    if not path.is_file():
        raise error(f"{name}: {os.fspath(path)!r} does not exist; give the path of {what}")
    return path
