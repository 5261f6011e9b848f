"""`vssr.Backend`: the backend configs as users construct them, raising VssrError (a vs.Error).

The config classes live in `vssr.backends`, which never imports VapourSynth, and raise ValueError
naming the setting. Scripts reach them through this namespace instead, whose classes are thin
subclasses that raise the same message as `VssrValueError` (a `vs.Error` and still a ValueError)
when the config is made, i.e. when the script is evaluated. They are the same dataclasses:
fields, `replace()`, `isinstance(config, vssr.backends.ort.ORT)` and cache keys are unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..backends import Backend as _RuntimeBackends
from ..backends import BackendConfig
from .checks import named_errors

__all__ = ["Backend", "user_config"]

_PUBLIC: dict[type[BackendConfig], type[BackendConfig]] = {}


def user_config(cls: type[BackendConfig]) -> type[BackendConfig]:
    """The subclass of `cls` whose construction errors are VssrError named `Backend.<cls>`."""
    if cls not in _PUBLIC:

        def __post_init__(self: BackendConfig) -> None:
            with named_errors(f"Backend.{cls.__name__}"):
                cls.__post_init__(self)

        _PUBLIC[cls] = type(
            cls.__name__,
            (cls,),
            {"__post_init__": __post_init__, "__doc__": cls.__doc__, "__module__": __name__,
             "__qualname__": f"Backend.{cls.__name__}"},
        )
    return _PUBLIC[cls]


class _UserBackendNamespace:
    """`vssr.Backend.ORT(...)`, `.OV(...)`, `.TRT(...)`, `.TRT_RTX(...)`; runtimes import on first use."""

    def __getattr__(self, name: str) -> Any:
        return user_config(getattr(_RuntimeBackends, name))

    def __dir__(self) -> list[str]:
        return dir(_RuntimeBackends)


if TYPE_CHECKING:
    # editors and mypy see the config classes themselves (the subclasses share their signatures)
    from ..backends import Backend
else:
    Backend = _UserBackendNamespace()
