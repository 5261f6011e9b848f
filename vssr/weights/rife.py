"""RIFE weights files: Practical-RIFE / vs-rife `flownet.pkl` -> an IFNet state dict.

The checkpoint (a torch zip of `module.`-prefixed tensors) is read through the allow-listed
unpickler of `vssr.weights.pth` (no torch). Graphs are built elsewhere (`vssr.arch.rife_model`);
vs-mlrt's RIFE ONNX files are read by `vssr.weights.onnxfile`.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from ..errors import ModelError
from ..types import StateDict
from . import pth
from .canonical import unwrap

__all__ = ["load_state"]

logger = logging.getLogger(__name__)


def load_state(path: str | os.PathLike[str]) -> StateDict:
    """The IFNet state dict of a flownet.pkl: `module.` keys kept and stripped (as vs-rife does)."""
    source = os.fspath(path)
    inner = unwrap(pth.load_raw(path), source=source)
    arrays = {str(k): v for k, v in inner.items() if isinstance(v, np.ndarray)}
    if not arrays:
        raise ModelError(f"{source}: the checkpoint holds no tensors")
    prefixed = {k.split("module.", 1)[1]: v for k, v in arrays.items() if "module." in k}
    state = prefixed or arrays
    if prefixed and len(prefixed) != len(arrays):
        logger.info("%s: ignoring %d tensors without a `module.` prefix", source, len(arrays) - len(prefixed))
    return {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in state.items()}
