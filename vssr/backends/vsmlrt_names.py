"""vs-mlrt's `Backend.*` classes (field names and defaults of vsmlrt.py 3.23) mapped to vssr configs.

Each class keeps vs-mlrt's spelling and mutability; `to_vssr()` makes the vssr config, logging
every option that has no meaning here. The mapping is in docs/compat.md. `vssr.compat.vsmlrt`
exports them as `Backend`; `vssr.Backend.OV_CPU(...)` (and the other vs-mlrt names) are aliases
that return the vssr config directly.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import ConfigError
from . import Backend as _Native
from .base import BackendConfig
from .ignored import log_ignored, non_defaults
from .ort import ORT
from .ov import OV, Precision

__all__ = ["Backend", "BackendV2", "native_alias", "to_vssr"]

logger = logging.getLogger("vssr.compat")

_PERF_ONLY = "a performance setting of vs-mlrt's runtime; the output is the same"


def _precision(fp16: bool, bf16: bool = False) -> Precision:
    if fp16 and bf16:
        raise ConfigError("fp16 and bf16 are exclusive: choose one")
    return "bf16" if bf16 else "f16" if fp16 else "f32"


def _output_dtype(output_format: int) -> str | None:
    if output_format not in (0, 1):
        raise ConfigError(f"output_format must be 0 (fp32) or 1 (fp16), not {output_format!r}")
    return "float16" if output_format == 1 else None


@dataclass
class _ORTBase:
    num_streams: int = 1
    verbosity: int = 2
    fp16: bool = False
    fp16_blacklist_ops: Any = None
    output_format: int = 0

    providers = ("CPU",)

    def to_vssr(self) -> BackendConfig:
        name = type(self).__name__
        if self.fp16:
            # ORT's CPU provider has few fp16 kernels; vs-mlrt converts the graph, vssr runs fp32
            logger.info("%s: fp16=True runs in fp32 on ONNX Runtime here (more precise, not slower on CPU)", name)
        log_ignored(name, non_defaults(self, ("fp16_blacklist_ops",)), "only used with fp16 graph conversion")
        log_ignored(name, non_defaults(self, ("cudnn_benchmark", "use_cuda_graph", "prefer_nhwc")), _PERF_ONLY)
        if getattr(self, "tf32", False):
            logger.info("%s: tf32=True ignored: vssr computes fp32 layers in fp32", name)
        return ORT(num_streams=self.num_streams, providers=self.providers, verbosity=self.verbosity,
                   device_id=getattr(self, "device_id", 0))


class _Backend:
    """vs-mlrt's `Backend` namespace."""

    @dataclass
    class ORT_CPU(_ORTBase):
        """ONNX Runtime on the CPU (vssr.Backend.ORT())."""

    @dataclass
    class ORT_CUDA(_ORTBase):
        """ONNX Runtime's CUDA provider (vssr.Backend.ORT(providers=("CUDA",)))."""

        device_id: int = 0
        cudnn_benchmark: bool = True
        use_cuda_graph: bool = False
        prefer_nhwc: bool = False
        tf32: bool = False
        providers = ("CUDA",)

    @dataclass
    class OV_CPU:
        """OpenVINO on the CPU (vssr.Backend.OV()). vs-mlrt's default precision hint is f32."""

        fp16: bool = False
        num_streams: int | str = 1
        bind_thread: bool = True
        fp16_blacklist_ops: Any = None
        bf16: bool = False
        num_threads: int = 0

        def to_vssr(self) -> BackendConfig:
            if importlib.util.find_spec("openvino") is None:
                logger.warning("OV_CPU: openvino is not installed; running ONNX Runtime on the CPU instead (fp32)")
                return ORT()
            log_ignored("OV_CPU", non_defaults(self, ("fp16_blacklist_ops",)), "OpenVINO chooses fp32 layers itself")
            if isinstance(self.num_streams, str):
                # "AUTO" and friends: OpenVINO's throughput hint picks the stream count
                return OV(precision=_precision(self.fp16, self.bf16), hint="THROUGHPUT",
                                  num_threads=self.num_threads or None, cpu_pinning=self.bind_thread)
            # vs-mlrt's num_streams are OpenVINO streams, fed by VapourSynth's threads: vssr keeps
            # as many frames in flight (at least 2, so one frame's plumbing overlaps another's compute)
            return OV(precision=_precision(self.fp16, self.bf16), ov_streams=self.num_streams,
                              num_streams=max(2, self.num_streams), num_threads=self.num_threads or None,
                              cpu_pinning=self.bind_thread)

    @dataclass
    class OV_GPU:
        """OpenVINO on an Intel GPU (vssr.Backend.OV(device="GPU.n"))."""

        fp16: bool = False
        num_streams: int | str = 1
        device_id: int = 0
        fp16_blacklist_ops: Any = None

        def to_vssr(self) -> BackendConfig:
            log_ignored("OV_GPU", non_defaults(self, ("fp16_blacklist_ops",)), "OpenVINO chooses fp32 layers itself")
            streams = self.num_streams if isinstance(self.num_streams, int) else 2
            return OV(device=f"GPU.{self.device_id}", precision=_precision(self.fp16), num_streams=streams)

    @dataclass
    class OV_NPU:
        """OpenVINO on an Intel NPU (vssr.Backend.OV(device="NPU"))."""

        def to_vssr(self) -> BackendConfig:
            return OV(device="NPU")

    @dataclass
    class TRT:
        """TensorRT (vssr.Backend.TRT())."""

        max_shapes: tuple[int, int] | None = None
        opt_shapes: tuple[int, int] | None = None
        fp16: bool = False
        device_id: int = 0
        workspace: int | None = None
        verbose: bool = False
        use_cuda_graph: bool = True
        num_streams: int = 1
        use_cublas: bool = False
        static_shape: bool = True
        tf32: bool = False
        log: bool = True
        use_cudnn: bool = False
        use_edge_mask_convolutions: bool = True
        use_jit_convolutions: bool = True
        heuristic: bool = False
        output_format: int = 0
        min_shapes: tuple[int, int] = (0, 0)
        faster_dynamic_shapes: bool = True
        force_fp16: bool = False
        builder_optimization_level: int = 3
        max_aux_streams: int | None = None
        short_path: bool | None = None
        bf16: bool = False
        custom_env: dict[str, str] = field(default_factory=dict)
        custom_args: list[str] = field(default_factory=list)
        engine_folder: str | None = None
        max_tactics: int | None = None
        tiling_optimization_level: int = 0
        l2_limit_for_tiling: int = -1

        native = "TRT"
        unused = ("verbose", "log", "use_cublas", "use_cudnn", "use_edge_mask_convolutions", "use_jit_convolutions",
                  "faster_dynamic_shapes", "short_path", "custom_env", "max_tactics", "tiling_optimization_level",
                  "l2_limit_for_tiling")

        def settings(self) -> dict[str, Any]:
            """The vssr TRT/TRT_RTX keyword arguments (without creating the config)."""
            name = type(self).__name__
            log_ignored(name, non_defaults(self, self.unused), "trtexec options; vssr builds in-process")
            if self.custom_args:
                logger.warning("%s: custom_args=%r not applied: vssr builds engines with the TensorRT API, not "
                               "trtexec; use the vssr.Backend.%s fields instead", name, self.custom_args, self.native)
            fp16 = bool(self.fp16 or getattr(self, "force_fp16", False))
            level = self.builder_optimization_level
            if getattr(self, "heuristic", False):
                logger.info("%s: heuristic=True means builder_optimization_level=2, as vs-mlrt does", name)
                level = 2
            kwargs: dict[str, Any] = {
                "fp16": fp16, "device_id": self.device_id, "num_streams": self.num_streams,
                "use_cuda_graph": self.use_cuda_graph, "static_shape": self.static_shape,
                "opt_shapes": self.opt_shapes, "workspace": self.workspace, "builder_optimization_level": level,
                "max_aux_streams": self.max_aux_streams, "engine_folder": self.engine_folder,
            }
            for own in ("tf32", "bf16"):
                if hasattr(self, own):
                    kwargs[own] = getattr(self, own)
            if hasattr(self, "output_format"):
                kwargs["output_dtype"] = _output_dtype(self.output_format)
            if self.static_shape:
                ignored = {k: getattr(self, k) for k in ("min_shapes", "max_shapes")
                           if getattr(self, k) not in (None, (0, 0))}
                log_ignored(name, ignored, "static_shape=True builds for the tile only, as in vs-mlrt")
            else:
                kwargs["min_shapes"] = None if tuple(self.min_shapes) == (0, 0) else tuple(self.min_shapes)
                kwargs["max_shapes"] = self.max_shapes
            return kwargs

        def to_vssr(self) -> BackendConfig:
            return getattr(_Native, self.native)(**self.settings())  # type: ignore[no-any-return]

    @dataclass
    class TRT_RTX(TRT):
        """TensorRT for RTX (vssr.Backend.TRT_RTX()); vs-mlrt's fields, a subset of TRT's."""

        use_cuda_graph: bool = False
        native = "TRT_RTX"

        def __post_init__(self) -> None:
            # fields TRT has and vs-mlrt's TRT_RTX does not: keep the object simple, refuse their use
            for own in ("tf32", "bf16", "use_cublas", "force_fp16", "heuristic"):
                if getattr(self, own) not in (False,):
                    raise ConfigError(f"TRT_RTX has no {own} (vs-mlrt's neither)")

    @dataclass
    class NCNN_VK:
        fp16: bool = False
        device_id: int = 0
        num_streams: int = 1
        output_format: int = 0

        def to_vssr(self) -> BackendConfig:
            raise ConfigError("vssr has no ncnn/Vulkan backend; use Backend.OV_CPU(), Backend.ORT_CPU() or "
                              "Backend.TRT() (ncnn weight files are read: vssr.RealESRGAN(model='x.param'))")

    @dataclass
    class ORT_DML:
        device_id: int = 0
        num_streams: int = 1
        verbosity: int = 2
        fp16: bool = False
        fp16_blacklist_ops: Any = None
        output_format: int = 0

        def to_vssr(self) -> BackendConfig:
            raise ConfigError("vssr has no DirectML backend (Windows); use Backend.ORT_CPU() or Backend.OV_CPU()")

    @dataclass
    class ORT_COREML:
        num_streams: int = 1
        verbosity: int = 0
        fp16: bool = False
        fp16_blacklist_ops: Any = None
        ml_program: int = 0
        output_format: int = 0

        def to_vssr(self) -> BackendConfig:
            raise ConfigError("vssr has no CoreML backend (macOS); use Backend.ORT_CPU()")

    @dataclass
    class MIGX:
        device_id: int = 0
        fp16: bool = False
        opt_shapes: tuple[int, int] | None = None
        fast_math: bool = True
        exhaustive_tune: bool = False
        num_streams: int = 1
        short_path: bool | None = None
        custom_env: dict[str, str] = field(default_factory=dict)
        custom_args: list[str] = field(default_factory=list)
        bf16: bool = False

        def to_vssr(self) -> BackendConfig:
            raise ConfigError("vssr has no MIGraphX (AMD) backend; use Backend.OV_CPU() or Backend.ORT_CPU()")


Backend = _Backend
BackendV2 = _Backend
"""vs-mlrt's keyword-only factories: the same classes here (every field is a keyword)."""


def to_vssr(backend: object) -> BackendConfig | None:
    """A vs-mlrt backend object, a vssr config (passed through) or None (vssr's default)."""
    if backend is None or isinstance(backend, BackendConfig):
        return backend
    convert = getattr(backend, "to_vssr", None)
    if convert is None:
        raise ConfigError(f"backend must be a vsmlrt.Backend.* (or vssr.Backend.*) object, not {type(backend).__name__}")
    config = convert()
    logger.info("%s -> %s", type(backend).__name__, config.describe())
    return config  # type: ignore[no-any-return]


def native_alias(name: str) -> Callable[..., BackendConfig]:
    """`vssr.Backend.<vs-mlrt name>(**vs-mlrt fields)`: the vssr config it means."""
    cls = getattr(Backend, name)

    def make(**options: Any) -> BackendConfig:
        try:
            legacy = cls(**options)
        except TypeError as err:
            own = name.split("_")[0]
            raise TypeError(f"vssr.Backend.{name} takes vs-mlrt's fields ({', '.join(f.name for f in fields(cls))}); "
                            f"for vssr's own fields use vssr.Backend.{own}: {err}") from None
        return legacy.to_vssr()  # type: ignore[no-any-return]

    make.__name__ = make.__qualname__ = name
    make.__doc__ = f"vs-mlrt's Backend.{name} fields; returns {cls.__doc__ or 'the vssr config'}"
    return make
