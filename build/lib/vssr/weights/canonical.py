"""One canonical key layout: unwrap checkpoint containers and strip training-wrapper prefixes.

Checkpoints come wrapped (`{"params_ema": {...}}` from BasicSR/Real-ESRGAN, `{"state_dict": ...}`
from Lightning, ...) and with keys prefixed by `module.` (DataParallel) or `netG.` (GAN trainers).
`state_dict` turns any of these into a flat `StateDict` whose keys are the network's own PyTorch
names. Every guess is logged; when it cannot decide it raises with the candidates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from ..errors import ModelError
from ..types import StateDict

__all__ = ["PREFIXES", "WRAPPER_KEYS", "state_dict", "strip_prefixes", "unwrap"]

logger = logging.getLogger(__name__)

WRAPPER_KEYS = ("model_state_dict", "state_dict", "params_ema", "params-ema", "params", "model", "net")
"""Container keys tried in this order (params_ema before params, as RealESRGANer does)."""

PREFIXES = ("module.", "netG.")
"""Key prefixes added by training wrappers, stripped when every key carries one."""


def _is_tensor_dict(obj: object) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and any(isinstance(v, np.ndarray) for v in obj.values())


def unwrap(obj: object, *, source: str = "checkpoint") -> Mapping[str, object]:
    """Find the mapping of tensors inside a checkpoint object, logging the container it chose."""
    path: list[str] = []
    for _ in range(8):  # nested wrappers such as {"state_dict": {"model": {...}}}
        if not isinstance(obj, Mapping):
            raise ModelError(f"{source}: expected a dict of tensors, found {type(obj).__name__}")
        if all(isinstance(v, np.ndarray) for v in obj.values()) and obj:
            break
        key = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping) and obj[k]), None)
        if key is None:
            candidates = [k for k, v in obj.items() if isinstance(v, Mapping) and v]
            if _is_tensor_dict(obj):
                break  # tensors mixed with plain values (e.g. "epoch"): the dict itself
            if not candidates:
                raise ModelError(f"{source}: the checkpoint holds no tensors (keys {sorted(map(str, obj))[:20]})")
            if len(candidates) == 1:
                key = candidates[0]
                logger.info("%s: the only nested dict is %r; using it as the state dict", source, key)
            else:
                raise ModelError(
                    f"{source}: cannot tell which entry holds the weights; top-level keys "
                    f"{sorted(map(str, obj))[:20]}, tried {list(WRAPPER_KEYS)}"
                )
        else:
            others = [k for k in WRAPPER_KEYS if k != key and isinstance(obj.get(k), Mapping)]
            if others:
                logger.info("%s: using %r (also present: %s)", source, key, others)
        path.append(str(key))
        obj = obj[key]
    else:
        raise ModelError(f"{source}: checkpoint nested too deeply ({'/'.join(path)})")
    if path:
        logger.debug("%s: weights found under %s", source, "/".join(path))
    return obj


def strip_prefixes(state: dict[str, np.ndarray], *, source: str = "checkpoint") -> dict[str, np.ndarray]:
    """Remove `module.`/`netG.` while every key starts with the same one."""
    while state:
        prefix = next((p for p in PREFIXES if all(k.startswith(p) for k in state)), None)
        if prefix is None:
            break
        logger.debug("%s: stripping key prefix %r", source, prefix)
        state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def state_dict(obj: object, *, source: str = "checkpoint") -> StateDict:
    """A canonical StateDict from an unpickled checkpoint.

    Floating tensors become float32; integer tensors (e.g. BatchNorm's num_batches_tracked) keep
    their dtype. Non-tensor entries (epoch counters, ...) are dropped.

    Raises:
        ModelError: no tensors found, or the container is ambiguous.
    """
    inner = unwrap(obj, source=source)
    state: dict[str, np.ndarray] = {}
    for key, value in inner.items():
        if not isinstance(value, np.ndarray):
            continue
        if value.dtype.kind == "f" and value.dtype != np.float32:
            value = value.astype(np.float32)
        state[str(key)] = value
    if not state:
        raise ModelError(f"{source}: the checkpoint holds no tensors")
    return strip_prefixes(state, source=source)
