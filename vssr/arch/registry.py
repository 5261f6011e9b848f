"""Architectures in detection order; `detect(state)` names the one a state dict belongs to.

Each architecture module (`compact.py`, `rrdb.py`, ...) exposes `ARCH = Architecture(...)`. The
modules are listed by name in `DETECTION_ORDER` and imported when first needed, so an
architecture module can import `Architecture` from here without an import cycle.

Adding an architecture: write `vssr/arch/<id>.py` with `detect`, `*Params.from_state`, `build`
and `ARCH`, then insert `"<id>"` into `DETECTION_ORDER` before any entry whose `detect` would also
accept its keys (more specific key sets first).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import onnx

from ..errors import ModelError
from ..types import StateDict

__all__ = ["DETECTION_ORDER", "Architecture", "architectures", "detect", "get", "has_all", "has_any"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Architecture:
    """One network family: how to recognise its state dict and build its ONNX graph."""

    id: str
    """Lower-case id: "compact", "rrdb", "ifnet", ..."""
    detect: Callable[[StateDict], bool]
    """Tests for specific keys (and shapes); never a false negative for its own checkpoints."""
    build: Callable[[StateDict], onnx.ModelProto]
    """Opset 19 / IR 9 graph; hyperparameters are read from tensor shapes."""


DETECTION_ORDER: list[str] = ["edvr", "compact", "rrdb", "quicksrnet"]
"""Module names under vssr.arch, most specific first. RIFE's IFNet is detected by arch/rife_model.py,
which also tells its versions apart."""


def has_all(state: StateDict, keys: Iterable[str]) -> bool:
    return all(k in state for k in keys)


def has_any(state: StateDict, keys: Iterable[str]) -> bool:
    return any(k in state for k in keys)


def architectures() -> tuple[Architecture, ...]:
    """The registered architectures, in detection order."""
    return tuple(importlib.import_module(f"{__package__}.{name}").ARCH for name in DETECTION_ORDER)


def get(arch_id: str) -> Architecture:
    """The architecture with this id; raises ModelError listing the known ids."""
    for arch in architectures():
        if arch.id == arch_id:
            return arch
    raise ModelError(f"unknown architecture {arch_id!r}; known: {', '.join(a.id for a in architectures())}")


def detect(state: StateDict) -> Architecture:
    """The first architecture (in DETECTION_ORDER) whose `detect` accepts the state dict.

    Raises:
        ModelError: nothing matched; the message lists the ids tried and a few keys.
    """
    tried = []
    for arch in architectures():
        if arch.detect(state):
            logger.debug("state dict detected as %s", arch.id)
            return arch
        tried.append(arch.id)
    sample = sorted(state)[:8]
    raise ModelError(
        f"unsupported weights: no architecture matched (tried {', '.join(tried)}); "
        f"the file has {len(state)} tensors, e.g. {sample}"
    )
