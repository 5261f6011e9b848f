"""The backend layer's interface: a frozen config that loads a Network into ready runners.

Runners take and return numpy dicts (name -> NCHW array). Nothing here imports a runtime.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
from abc import ABC, abstractmethod
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..types import ShapeProfile, Tensors, TensorSpec

if TYPE_CHECKING:
    from ..network import Network

__all__ = ["BackendConfig", "Runner", "check_feeds", "cpu_count"]


@runtime_checkable
class Runner(Protocol):
    """One inference context. Built when the filter is created; used by one stream at a time."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def infer(self, feeds: Tensors) -> Tensors:
        """Run once. The returned arrays may be reused by the next call: copy to keep them."""
        ...

    def close(self) -> None: ...


def cpu_count() -> int:
    """Cores this process may use (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def check_int(name: str, value: object, minimum: int, *, optional: bool = False) -> None:
    """ValueError naming the setting unless `value` is an int >= minimum (or None if optional)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        accepted = f"an int >= {minimum}" + (" or None" if optional else "")
        raise ValueError(f"{name} must be {accepted}, not {value!r}")


def check_bool(name: str, value: object, *, optional: bool = False) -> None:
    """ValueError naming the setting unless `value` is True or False (or None if optional)."""
    if not (isinstance(value, bool) or (optional and value is None)):
        raise ValueError(f"{name} must be True or False{' or None' if optional else ''}, not {value!r}")


@dataclass(frozen=True, kw_only=True)
class BackendConfig(ABC):
    """Settings of one runtime. Frozen: derive variants with `dataclasses.replace`."""

    num_streams: int = 1
    """Runners (inference contexts) made; frames in flight at once."""
    fp16: bool | None = None
    """Compute in fp16 where the runtime can. None: the backend's default for the device."""

    @abstractmethod
    def load(self, network: Network, profile: ShapeProfile) -> list[Runner]:
        """Build (or fetch from cache) and return one ready runner per stream.

        `profile` holds the spatial input sizes (tile sizes) the runners will be fed.
        """

    @property
    def runtime_name(self) -> str:
        return type(self).__name__

    def build_key(self) -> dict[str, object]:
        """Every field that changes a built artifact; fields marked build=False are left out."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("build", True)}

    def build_digest(self, *extra: object) -> str:
        """sha256 over build_key() and `extra` (network digest, runtime version, device...)."""
        payload = json.dumps([type(self).__name__, self.build_key(), *extra], sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    def for_intermediate(self) -> BackendConfig:
        """This config for a network whose outputs another network reads (RIFE's encoder, EDVR's
        feature extractor): output-type choices meant for the filter's result do not apply."""
        return self

    def supports_op(self, op_type: str) -> bool:
        """Whether this runtime runs the ONNX operator `op_type` (for ops that some runtimes lack,
        e.g. DeformConv; a model then picks an equivalent built from standard ops)."""
        return True

    def describe(self) -> str:
        """One line for logs and error messages: the runtime and the settings that differ from its defaults."""
        changed = {f.name: getattr(self, f.name) for f in fields(self)
                   if f.default is not MISSING and getattr(self, f.name) != f.default}
        return f"{self.runtime_name}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"


def runtime_field[T](default: T, doc: str = "") -> T:
    """A config field that does not change a built artifact (left out of cache keys)."""
    return field(default=default, metadata={"build": False, "doc": doc})


def check_feeds(specs: tuple[TensorSpec, ...], feeds: Tensors) -> None:
    """Check names, dtypes and ranks once (at filter creation, on a probe feed), not per frame."""
    names = {s.name for s in specs}
    if set(feeds) != names:
        raise ValueError(f"feeds {sorted(feeds)} do not match the network inputs {sorted(names)}")
    for spec in specs:
        array = feeds[spec.name]
        if array.dtype != spec.dtype or array.ndim != len(spec.shape):
            raise ValueError(
                f"input {spec.name!r}: got {array.dtype}{list(array.shape)}, "
                f"the network takes {spec.dtype}{list(spec.shape)}"
            )
        for got, want in zip(array.shape, spec.shape, strict=True):
            if want is not None and got != want:
                raise ValueError(f"input {spec.name!r}: shape {array.shape} != {spec.shape}")
