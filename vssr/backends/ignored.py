"""Options of other tools (vs-mlrt, vs-rife) that vssr accepts but does not use: one log line each."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

__all__ = ["log_ignored", "non_defaults"]

logger = logging.getLogger("vssr.compat")


def non_defaults(config: object, names: tuple[str, ...]) -> dict[str, object]:
    """The fields of a dataclass among `names` that differ from their defaults."""
    out = {}
    for f in dataclasses.fields(config):  # type: ignore[arg-type]
        if f.name not in names:
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        value = getattr(config, f.name)
        if value != default:
            out[f.name] = value
    return out


def log_ignored(where: str, options: Mapping[str, object], why: str) -> None:
    """One readable line per option that vssr accepts but does not use."""
    for name, value in options.items():
        logger.info("%s: %s=%r ignored (%s)", where, name, value, why)
