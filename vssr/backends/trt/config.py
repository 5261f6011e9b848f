"""The TensorRT backend configs: `TRT` (tensorrt 10.x / 11.x) and `TRT_RTX` (tensorrt_rtx).

The two differ only in the module they import (and TensorRT-RTX's runtime cache). Settings are
checked where the config is made; `load` and `build_engine` then run the same opening
(`build.prepare`), the engine cache (`cache.load_or_build`) and, for `load`, one `TrtRunner` per
stream. The top of the package: it imports the others, none imports it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ...validation import require_choice, require_pair
from ..base import BackendConfig, Runner, check_bool, check_int, runtime_field
from . import build, cache
from .runner import TrtRunner

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from ...network import Network
    from ...types import ShapeProfile

__all__ = ["TRT", "TRT_RTX"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class _TensorRT(BackendConfig):
    """Settings shared by TRT and TRT_RTX. Every field except the runtime ones keys the engine."""

    module: ClassVar[str] = "tensorrt"

    # precision
    bf16: bool = False
    """Compute in bfloat16 (exclusive with fp16)."""
    output_dtype: str | None = None
    """"float32" or "float16" output tensors; None: the same as the input (RGBH in -> fp16 out)."""
    # shapes
    static_shape: bool = True
    """Build for exactly the tile size; False: a dynamic profile min <= tile <= max."""
    min_shapes: tuple[int, int] | None = None
    """(width, height). None: min(64, tile) per side, on the network's size multiple."""
    opt_shapes: tuple[int, int] | None = None
    """(width, height). None: the tile."""
    max_shapes: tuple[int, int] | None = None
    """(width, height). None: the tile (or opt, whichever is larger)."""
    # builder
    workspace: int | None = None
    """Workspace memory pool limit in MiB; None: TensorRT's default (the whole GPU)."""
    builder_optimization_level: int = 3
    """0 (fast build) .. 5 (slow build, maybe faster engine)."""
    max_aux_streams: int | None = None
    """Auxiliary streams TensorRT may use inside one inference; None: its heuristic."""
    tf32: bool = False
    """Let fp32 layers use TF32 tensor cores (10-bit mantissa; TensorRT's own default is on). Off,
    so an "fp32" engine computes in fp32, as vs-mlrt's default does."""
    # runtime
    use_cuda_graph: bool = runtime_field(False, "replay each stream's work as a CUDA graph")
    device_id: int = runtime_field(0, "CUDA device; the engine is keyed on its name and capability")
    engine_folder: str | None = runtime_field(None, "where engines go; None: $VSSR_ENGINE_DIR or engines/")

    def for_intermediate(self) -> _TensorRT:
        # features go to the next network in the type it takes (the clip's), not in output_dtype
        return dataclasses.replace(self, output_dtype=None)

    def with_fp32_default(self) -> _TensorRT:
        # fp16=None follows the clip (RGBH -> fp16 compute); a precision-sensitive network keeps
        # fp16 I/O for RGBH but computes in fp32
        if self.fp16 is None and not self.bf16:
            return dataclasses.replace(self, fp16=False)
        return self

    def supports_op(self, op_type: str) -> bool:
        # the ONNX parser maps DeformConv to the ModulatedDeformConv2d plugin (TensorRT >= 10.1),
        # which only full TensorRT's plugin library has (TensorRT-RTX 1.7 registers two others)
        if op_type != "DeformConv":
            return True
        return build.has_plugin(build.import_tensorrt(self.module), build.DEFORM_CONV_PLUGIN)

    max_streams: ClassVar[int] = 16
    """Each stream is an execution context with its own activation memory on the GPU (hundreds of
    MB at 1080p for the larger models); a handful saturates any GPU."""

    def __post_init__(self) -> None:
        if importlib.util.find_spec(self.module) is None:
            build.import_tensorrt(self.module)  # raises MissingBackendError with the pip command
        super().__post_init__()  # num_streams, fp16
        for name in ("bf16", "static_shape", "tf32", "use_cuda_graph"):
            self.normalise(name, check_bool(name, getattr(self, name)))
        if self.fp16 and self.bf16:
            raise ValueError("fp16 and bf16 are exclusive: choose one")
        require_choice("output_dtype", self.output_dtype, ("float32", "float16"), optional=True)
        for name, low, high, optional in (("builder_optimization_level", 0, 5, False), ("workspace", 1, None, True),
                                          ("max_aux_streams", 0, None, True), ("device_id", 0, None, False)):
            self.normalise(name, check_int(name, getattr(self, name), low, high, optional=optional))
        for name in ("min_shapes", "opt_shapes", "max_shapes"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, tuple | list) or len(value) != 2:
                raise ValueError(f"{name} must be (width, height), not {value!r}")
            self.normalise(name, require_pair(name, tuple(value), 1))
        folder = self.engine_folder
        if folder is not None and not isinstance(folder, str | os.PathLike):
            raise ValueError(f"engine_folder must be a folder path or None, not {folder!r}")
        if self.static_shape and (self.min_shapes is not None or self.max_shapes is not None):
            raise ValueError(
                "min_shapes/max_shapes describe a dynamic engine: set static_shape=False with them "
                "(static_shape=True builds exactly the tile)"
            )

    def engine_options(self) -> dict[str, object]:
        """The builder options that key the engine (runtime-only fields left out)."""
        key = self.build_key()
        # streams are contexts on one engine; shapes and precision enter the key resolved
        # (BuildPlan.profile, precision label, converted-ONNX digest), so equivalent settings match
        for name in ("num_streams", "fp16", "bf16", "output_dtype", "static_shape", "min_shapes", "opt_shapes", "max_shapes"):
            key.pop(name, None)
        return key

    def load(self, network: Network, profile: ShapeProfile, io_dtype: np.dtype | None = None) -> list[Runner]:
        ready = build.prepare(self, network, profile, io_dtype=io_dtype, need_gpu=True)
        runtime = ready.runtime()
        deserialize = functools.partial(build.deserialize_engine, ready.trt, runtime)
        engine, path = cache.load_or_build(ready.folder, ready.spec, ready.build, deserialize)
        logger.info("%s: engine %s, %d stream(s)", self.runtime_name, path.name, self.num_streams)
        runtime_cache = self.runtime_cache_of(path)
        runners: list[TrtRunner] = []
        try:
            for _ in range(self.num_streams):
                runner = TrtRunner(ready.trt, ready.rt, engine, ready.plan, device_id=self.device_id,
                                   use_cuda_graph=self.use_cuda_graph, runtime_cache=runtime_cache)
                runners.append(runner)
                runner.keep = (runtime, build.shared_logger(ready.trt))  # the engine must not outlive them
                runner.warm_up()  # on this thread, one runner at a time (see TrtRunner.warm_up)
        except BaseException:
            for built in runners:  # their memory now, not whenever the garbage collector runs
                with contextlib.suppress(Exception):
                    built.close()
            raise
        return list(runners)

    def build_engine(self, network: Network, profile: ShapeProfile, io_dtype: np.dtype | None = None) -> Path:
        """Build (or find) the engine `load(network, profile, io_dtype)` would use, ahead of time; its path.

        Needs no GPU for TensorRT-RTX, whose builder runs on the CPU: the engine is then keyed
        on "no GPU" (a GPU machine builds its own) and checked against its sidecar (key, size,
        sha256) only, not by deserializing. The folder must be writable: the file is the point.
        """
        ready = build.prepare(self, network, profile, io_dtype=io_dtype, need_gpu=False)
        if ready.device is not None:
            runtime = ready.runtime()

            def check(data: bytes) -> bool:
                build.deserialize_engine(ready.trt, runtime, data)
                return True
        else:
            def check(data: bytes) -> bool:
                return True  # the bytes matched the engine's sidecar (key, size, sha256): all we can check

        _, path = cache.load_or_build(ready.folder, ready.spec, ready.build, check, must_keep=True)
        return path

    def runtime_cache_of(self, engine: Path) -> cache.RuntimeCache | None:
        """Where JIT-compiled kernels persist between processes (TensorRT-RTX only)."""
        return None


@dataclass(frozen=True, kw_only=True)
class TRT(_TensorRT):
    """NVIDIA TensorRT 10.x / 11.x (the `trt` extra: `pip install -e ".[trt]"`)."""

    module: ClassVar[str] = "tensorrt"


@dataclass(frozen=True, kw_only=True)
class TRT_RTX(_TensorRT):
    """TensorRT for RTX (the `trt-rtx` extra): strongly typed, engines JIT-compiled per GPU."""

    module: ClassVar[str] = "tensorrt_rtx"

    runtime_cache: bool = runtime_field(
        True, "keep JIT-compiled kernels in <engine>.runtimecache (the runtime cache) for the next run")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.normalise("runtime_cache", check_bool("runtime_cache", self.runtime_cache))

    def runtime_cache_of(self, engine: Path) -> cache.RuntimeCache | None:
        return cache.RuntimeCache(cache.runtime_cache_path(engine)) if self.runtime_cache else None
