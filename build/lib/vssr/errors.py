"""Plain, typed exceptions raised below the VapourSynth layer.

`glue.checks.user_errors` turns them into `VssrError` (a `vs.Error`) for users.
"""

from __future__ import annotations

__all__ = ["BackendError", "ConfigError", "MissingBackendError", "ModelError", "install_hint"]


class ModelError(ValueError):
    """An unreadable, unsafe or unsupported model or weights file."""


class ConfigError(ValueError):
    """Backend settings that cannot work with this network or these tiles; the message names the
    setting. (Settings wrong in themselves are ValueErrors when the config is constructed.)"""


class BackendError(RuntimeError):
    """A runtime failed; the message names the file and the fix."""


class MissingBackendError(BackendError, ImportError):
    """A runtime package is not installed; the message says what to install."""


def install_hint(extra: str) -> str:
    """How to install one of vssr's extras (vssr is installed from its checkout, not from PyPI)."""
    return f'pip install -e ".[{extra}]" in the vssr checkout (or: bash scripts/setup.sh {extra})'
