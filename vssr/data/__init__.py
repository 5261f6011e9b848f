"""Files shipped inside the package (in the wheel too): QuickSRNet's trained weights and card."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

__all__ = ["path"]


def path(*parts: str) -> Path:
    """A folder or file under vssr/data/, wherever vssr is installed (a checkout or a wheel)."""
    return Path(os.fspath(resources.files(__name__).joinpath(*parts)))  # type: ignore[call-overload]
