"""The Backend namespace: `vssr.Backend.ORT(...)`, `.OV(...)`, `.TRT(...)`, `.TRT_RTX(...)`.

Each config class lives in its runtime's module; that module imports its runtime only inside
`load`, so `import vssr` needs neither openvino nor tensorrt.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import TYPE_CHECKING, Any

from .base import BackendConfig, Runner
from .ort import ORT

__all__ = ["Backend", "BackendConfig", "Runner", "default_backend"]

logger = logging.getLogger(__name__)

_LAZY = {"OV": ".ov", "TRT": ".trt", "TRT_RTX": ".trt"}
_VSMLRT_NAMES = ("ORT_CPU", "ORT_CUDA", "OV_CPU", "OV_GPU", "OV_NPU")
"""vs-mlrt backend names that are not vssr's: aliases (TRT and TRT_RTX are vssr's own classes)."""


class _BackendNamespace:
    """Attribute access to the backend config classes, importing their modules on first use."""

    ORT = ORT

    def __getattr__(self, name: str) -> Any:
        if name in _VSMLRT_NAMES:
            # vs-mlrt's spelling with vs-mlrt's fields (OV_CPU(bf16=True)): the vssr config it means
            from . import vsmlrt_names

            return vsmlrt_names.native_alias(name)
        if name not in _LAZY:
            raise AttributeError(f"vssr.Backend has no backend {name!r}; choose one of ORT, {', '.join(_LAZY)}")
        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)

    def __dir__(self) -> list[str]:
        return ["ORT", *_LAZY]


if TYPE_CHECKING:
    # what editors and mypy see: the config classes themselves, so `Backend.TRT(` completes and
    # its arguments are checked (vs-jetpack's shape); at run time the namespace imports lazily
    from .ov import OV
    from .trt import TRT, TRT_RTX

    class Backend:
        ORT = ORT
        OV = OV
        TRT = TRT
        TRT_RTX = TRT_RTX

else:
    Backend = _BackendNamespace()


def default_backend() -> BackendConfig:
    """The fastest CPU backend usable here: OpenVINO if it imports, else ONNX Runtime.

    OpenVINO is skipped (with a warning) when it is installed but cannot be imported, e.g. because
    VapourSynth already loaded vs-mlrt's ov plugin with another OpenVINO build.
    """
    if importlib.util.find_spec("openvino") is not None:
        from . import ov

        if ov.available():
            return ov.OV()
        logger.warning("OpenVINO is installed but cannot be imported here; using ONNX Runtime")
    return ORT()
