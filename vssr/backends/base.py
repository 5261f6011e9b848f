"""The backend layer's interface: a frozen config that loads a Network into ready runners.

Runners take and return numpy dicts (name -> NCHW array). Nothing here imports a runtime.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from ..types import ShapeProfile, Tensors, TensorSpec
from ..validation import require_bool, require_int

if TYPE_CHECKING:
    import numpy as np

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


check_int = require_int
check_bool = require_bool


@dataclass(frozen=True, kw_only=True)
class BackendConfig(ABC):
    """Settings of one runtime. Frozen: derive variants with `dataclasses.replace`."""

    num_streams: int = 1
    """Runners (inference contexts) made; frames in flight at once."""
    fp16: bool | None = None
    """Compute in fp16 where the runtime can. None: the backend's default for the device."""

    max_streams: ClassVar[int] = 64
    """Bound of num_streams: every stream is a full inference context (weights, activations,
    threads), so a mistyped 1000 would exhaust memory before the first frame."""

    def __post_init__(self) -> None:
        self.normalise("num_streams", require_int("num_streams", self.num_streams, 1, self.max_streams))
        self.normalise("fp16", require_bool("fp16", self.fp16, optional=True))

    def normalise(self, name: str, value: object) -> None:
        """Store a checked value in its plain Python type (numpy ints would change cache keys)."""
        object.__setattr__(self, name, value)

    @abstractmethod
    def load(self, network: Network, profile: ShapeProfile, io_dtype: np.dtype | None = None) -> list[Runner]:
        """Build (or fetch from cache) and return one ready runner per stream.

        `profile` holds the spatial input sizes (tile sizes) the runners will be fed. `io_dtype`
        (float32 or float16): the type of the image inputs and of the outputs the runners take and
        return, whatever precision they compute in; None: the network's own types. Each backend
        applies it its own way (a retyped graph, or TensorRT's lowered one), from the same network.
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

    def with_fp32_default(self) -> BackendConfig:
        """This config computing in fp32 where it leaves the precision to the backend's default
        (for `Network.precision_sensitive` networks); a precision the user set is kept."""
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
