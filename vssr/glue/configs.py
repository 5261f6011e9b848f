"""`vssr.Backend`: the backend configs as users construct them, raising VssrError (a vs.Error).

The config classes live in `vssr.backends`, which never imports VapourSynth, and raise ValueError
naming the setting. Scripts reach them through this namespace instead, whose classes are thin
subclasses that raise the same message as `VssrValueError` (a `vs.Error` and still a ValueError)
when the config is made, i.e. when the script is evaluated. They are the same dataclasses:
fields, `replace()`, `isinstance(config, vssr.backends.ort.ORT)` and cache keys are unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ..backends import Backend as _RuntimeBackends
from ..backends import BackendConfig
from .checks import named_errors, raised_at_caller

__all__ = ["Backend", "user_config"]

_PUBLIC: dict[type[BackendConfig], type[BackendConfig]] = {}


def user_config(cls: type[BackendConfig]) -> type[BackendConfig]:
    """The subclass of `cls` whose construction errors are VssrError named `Backend.<cls>`."""
    if cls not in _PUBLIC:

        def __post_init__(self: BackendConfig, *init_vars: object) -> None:  # InitVars: OV's bf16 alias
            with named_errors(f"Backend.{cls.__name__}"):
                cls.__post_init__(self, *init_vars)

        def __eq__(self: BackendConfig, other: object) -> bool:
            # equal to the same settings built as `cls` itself (vs-mlrt aliases, internal copies)
            if type(other) not in (cls, _PUBLIC[cls]):
                return NotImplemented
            return all(getattr(self, f.name) == getattr(other, f.name) for f in dataclasses.fields(cls))

        _PUBLIC[cls] = type(
            cls.__name__,
            (cls,),
            {
                "__init__": raised_at_caller(cls.__init__),
                "__post_init__": __post_init__,
                "__eq__": __eq__,
                "__hash__": cls.__hash__,  # a class that defines __eq__ loses the inherited hash otherwise
                "__doc__": cls.__doc__,
                "__module__": __name__,
                "__qualname__": f"Backend.{cls.__name__}",
            },
        )
    return _PUBLIC[cls]


class _UserBackendNamespace:
    """`vssr.Backend.ORT(...)`, `.OV(...)`, `.TRT(...)`, `.TRT_RTX(...)`; runtimes import on first use."""

    def __getattr__(self, name: str) -> Any:
        target = getattr(_RuntimeBackends, name)
        if isinstance(target, type):
            return user_config(target)

        @raised_at_caller
        def alias(**options: Any) -> BackendConfig:  # vs-mlrt's names (OV_CPU, ...): a function
            with named_errors(f"Backend.{name}"):
                config: BackendConfig = target(**options)
                public = user_config(type(config))  # the class scripts get from vssr.Backend.<name>
                return public(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})

        alias.__name__ = alias.__qualname__ = name
        alias.__doc__ = target.__doc__
        return alias

    def __dir__(self) -> list[str]:
        return dir(_RuntimeBackends)  # vssr's own; vs-mlrt's spellings work but are not advertised


if TYPE_CHECKING:
    # editors and mypy see the config classes themselves (the subclasses share their signatures)
    from ..backends import Backend
else:
    Backend = _UserBackendNamespace()
