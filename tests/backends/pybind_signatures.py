"""Check calls recorded on autospec mocks of pybind11 classes against the real signatures.

`mock.create_autospec` checks a pybind11 method by name only: pybind11 gives `inspect` no
signature, so a call with a missing or extra argument goes through. pybind11 does write each
signature (every overload's) on the first lines of the method's docstring, e.g.

    set_tensor_address(self: tensorrt_rtx.IExecutionContext, name: str, memory: typing.SupportsInt) -> bool

`check_calls` parses those and requires every call recorded on the mock to bind to one of them.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

__all__ = ["check_calls", "signatures"]

_OPEN, _CLOSE = "([<{", ")]>}"


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets (types and defaults hold commas inside them)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE and not (ch == ">" and text[i - 1] == "-"):
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if text[start:].strip():
        parts.append(text[start:])
    return [p.strip() for p in parts]


def _parameters(text: str) -> inspect.Signature:
    params = []
    for part in _split_top_level(text):
        if part.startswith("**"):
            params.append(inspect.Parameter(part[2:].split(":")[0], inspect.Parameter.VAR_KEYWORD))
        elif part.startswith("*"):
            params.append(inspect.Parameter(part[1:].split(":")[0], inspect.Parameter.VAR_POSITIONAL))
        else:
            name = part.split(":")[0].split("=")[0].strip()
            default = None if "=" in part else inspect.Parameter.empty
            params.append(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default))
    return inspect.Signature(params)


def signatures(method: Any, name: str) -> list[inspect.Signature]:
    """Every overload's signature from a pybind11 docstring (self included); [] when none is found."""
    found = []
    pattern = re.compile(rf"^(?:\d+\. )?{re.escape(name)}\((.*)\) -> ")
    for line in (getattr(method, "__doc__", None) or "").splitlines():
        match = pattern.match(line.strip())
        if match and match.group(1) != "*args, **kwargs":
            found.append(_parameters(match.group(1)))
    return found


def check_calls(recorded: Any, cls: type, *, constructor: bool = False) -> int:
    """Raise AssertionError for a call on `recorded` that fits no signature of `cls`'s method.

    `recorded` is an autospec of an instance of `cls` (method calls are checked), or with
    `constructor=True` an autospec of `cls` itself (its calls are checked against `__init__`).
    Returns the number of calls checked.
    """
    checked = 0
    for name, args, kwargs in recorded.mock_calls:
        if constructor:
            if name != "":
                continue
            name = "__init__"
        elif not name or "." in name or "(" in name:
            continue  # calls on return values / children are checked on their own mocks
        sigs = signatures(getattr(cls, name), name)
        assert sigs, f"{cls.__name__}.{name}: no signature in its docstring"
        errors = []
        for sig in sigs:
            try:
                sig.bind(None, *args, **kwargs)  # None stands for self
                break
            except TypeError as err:
                errors.append(f"{sig}: {err}")
        else:
            raise AssertionError(f"{cls.__name__}.{name}{args!r}{kwargs!r} fits no signature: {errors}")
        checked += 1
    return checked
