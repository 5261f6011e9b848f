"""vssr: neural video super-resolution and frame interpolation for VapourSynth.

The public API is this file: every name a script needs is re-exported here.
"""

from __future__ import annotations

import logging

from .backends import BackendConfig
from .errors import BackendError, MissingBackendError, ModelError
from .filters.edvr import EDVR
from .filters.quicksrnet import QuickSRNet
from .filters.realesrgan import RealESRGAN
from .filters.rife import RIFE
from .glue.checks import VssrError, raised_at_caller
from .glue.configs import Backend
from .inference import Session, inference
from .network import Network
from .quant import quantize as _quantize

__all__ = [
    "EDVR",
    "RIFE",
    "Backend",
    "BackendConfig",
    "BackendError",
    "MissingBackendError",
    "ModelError",
    "Network",
    "QuickSRNet",
    "RealESRGAN",
    "Session",
    "VssrError",
    "inference",
    "quantize",
]

quantize = raised_at_caller(_quantize)
"""vssr.quant.quantize whose VssrError points at the caller's line (vssr.quant imports no VapourSynth)."""

__version__ = "0.1.0"

# VSScript hosts (vspipe, vspreview) bridge Python logging into VapourSynth's message log, which
# vspipe prints ("Information: ...") and editors show; a TensorRT build's progress and the
# backends' choices are logged at INFO, below Python's default WARNING: let them through
if logging.getLogger(__name__).level == logging.NOTSET:
    logging.getLogger(__name__).setLevel(logging.INFO)
