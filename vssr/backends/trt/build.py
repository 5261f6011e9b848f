"""How an engine is built: TensorRT's logger and progress monitor, then parse, configure, build.

The steps are small named functions (Polygraphy's loaders): `network_from_onnx` ->
`config_from_settings` -> `profile_from_shapes` -> `engine_bytes_from_network`, run by
`build_engine_bytes`. `prepare` is the one opening both a filter's load and an ahead-of-time
build go through (import, plan, device, cache key). Every TensorRT (10.x, 11.x, TensorRT-RTX) is
driven the same way, parameterised by the imported module: networks are strongly typed and
precision is the ONNX graph's (see plan.py).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from ... import files
from ...errors import BackendError, MissingBackendError, install_hint
from .. import cuda
from . import cache
from .plan import BuildPlan, EngineSpec, PlanOptions, device_label, engine_spec, runtime_label

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import tensorrt

    from ...network import Network
    from ...types import ShapeProfile
    from ..runtime_api import CudaRuntime, TensorRT

__all__ = [
    "DEFORM_CONV_PLUGIN",
    "Prepared",
    "attach_timing_cache",
    "build_engine_bytes",
    "config_from_settings",
    "deserialize_engine",
    "engine_bytes_from_network",
    "has_plugin",
    "import_tensorrt",
    "network_from_onnx",
    "prepare",
    "profile_from_shapes",
    "progress_monitor",
    "register_plugins",
    "save_timing_cache",
    "shared_logger",
    "target_gpu",
]

logger = logging.getLogger(__name__)

DEFORM_CONV_PLUGIN = "ModulatedDeformConv2d"
"""What TensorRT's ONNX parser turns DeformConv into (onnx-tensorrt, TensorRT >= 10.1)."""

def import_tensorrt(module: str) -> TensorRT:
    """Import `tensorrt` or `tensorrt_rtx`, or raise MissingBackendError saying what to install."""
    extra = "trt" if module == "tensorrt" else "trt-rtx"
    try:
        return cast("TensorRT", importlib.import_module(module))
    except ImportError as err:
        raise MissingBackendError(
            f"{module} is not installed (or its libraries are missing: {err}): {install_hint(extra)}"
        ) from err


_plugins_registered: set[str] = set()


def register_plugins(trt: TensorRT) -> None:
    """Load TensorRT's plugin library into the registry, once per process and module.

    The ONNX parser finds plugins (DeformConv's) there, and deserializing an engine that contains
    plugin layers needs them registered too. The logger must outlive the registry: `shared_logger`'s does.
    """
    if trt.__name__ in _plugins_registered or not hasattr(trt, "init_libnvinfer_plugins"):
        return
    if not trt.init_libnvinfer_plugins(shared_logger(trt), ""):
        logger.warning("%s: init_libnvinfer_plugins failed; models needing plugins will not build", trt.__name__)
    _plugins_registered.add(trt.__name__)


def has_plugin(trt: TensorRT, name: str) -> bool:
    """Whether the plugin registry (after `register_plugins`) has a creator called `name`."""
    register_plugins(trt)
    registry = trt.get_plugin_registry()
    creators = getattr(registry, "all_creators", None)
    if creators is None:  # before TensorRT 10
        creators = registry.plugin_creator_list
    return any(creator.name == name for creator in creators)


# --- build steps ------------------------------------------------------------------------------
_loggers: dict[str, tensorrt.ILogger] = {}
_recovering: dict[str, int] = {}
"""Per module: > 0 while vssr tries something it recovers from (deserializing a cached engine).
Kept beside the loggers, not on them: their class derives from the imported module's ILogger, a
base known only at run time, so to mypy they are plain `tensorrt.ILogger`s."""


def shared_logger(trt: TensorRT) -> tensorrt.ILogger:
    """The process's one trt.ILogger per TensorRT module, forwarding to Python logging.

    TensorRT keeps a single logger: a Builder or Runtime made with another one than the first
    makes it warn ("The logger passed into createInferBuilder differs from one already provided").
    Kept for the life of the process, so it outlives every object that logs through it.
    """
    if trt.__name__ not in _loggers:
        _loggers[trt.__name__] = _make_logger(trt)
    return _loggers[trt.__name__]


def _make_logger(trt: TensorRT) -> tensorrt.ILogger:
    levels = {
        trt.ILogger.Severity.INTERNAL_ERROR: logging.CRITICAL,
        trt.ILogger.Severity.ERROR: logging.ERROR,
        trt.ILogger.Severity.WARNING: logging.WARNING,
        trt.ILogger.Severity.INFO: logging.DEBUG,
        trt.ILogger.Severity.VERBOSE: logging.DEBUG - 5,
    }

    module = trt.__name__

    class _Logger(trt.ILogger):  # type: ignore[misc, name-defined]  # a base chosen at run time
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: tensorrt.ILogger.Severity, msg: str) -> None:
            level = levels.get(severity, logging.INFO)
            if _recovering.get(module) and level > logging.WARNING:
                level = logging.WARNING  # vspipe would print "Critical:" for what vssr then fixes
            logger.log(level, "%s", msg)

    return cast("tensorrt.ILogger", _Logger())


def deserialize_engine(trt: TensorRT, runtime: tensorrt.Runtime, data: bytes) -> tensorrt.ICudaEngine:
    """The engine in `data`, or BackendError; TensorRT's complaints about a stale or torn engine
    are logged as warnings, since the cache then rebuilds it."""
    _recovering[trt.__name__] = _recovering.get(trt.__name__, 0) + 1
    try:
        engine = runtime.deserialize_cuda_engine(data)
    finally:
        _recovering[trt.__name__] -= 1
    if engine is None:
        raise BackendError("deserialize_cuda_engine returned None")
    return engine


def progress_monitor(trt: TensorRT) -> tensorrt.IProgressMonitor:
    """A trt.IProgressMonitor logging the build (it takes minutes): the top two levels of phases
    and each step of the outermost at INFO (what a user watching vspipe sees), the rest at DEBUG."""

    class _Progress(trt.IProgressMonitor):  # type: ignore[misc, name-defined]  # a base chosen at run time
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.steps: dict[str, int] = {}
            self.depth: dict[str, int] = {}
            self.start = time.monotonic()

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            depth = 0 if parent_phase is None else self.depth.get(parent_phase, 0) + 1
            self.steps[phase_name], self.depth[phase_name] = num_steps, depth
            logger.log(logging.INFO if depth <= 1 else logging.DEBUG, "TensorRT build: %s%s (%d steps, %.0f s)",
                       "  " * depth, phase_name, num_steps, time.monotonic() - self.start)

        def step_complete(self, phase_name: str, step: int) -> bool:
            level = logging.INFO if self.depth.get(phase_name) == 0 else logging.DEBUG
            logger.log(level, "TensorRT build: %s %d/%d (%.0f s)", phase_name, step + 1,
                       self.steps.get(phase_name, 0), time.monotonic() - self.start)
            return True

        def phase_finish(self, phase_name: str) -> None:
            logger.debug("TensorRT build: %s done (%.0f s)", phase_name, time.monotonic() - self.start)

    return cast("tensorrt.IProgressMonitor", _Progress())


def network_from_onnx(
    trt: TensorRT, builder: tensorrt.Builder, model_bytes: bytes
) -> tuple[tensorrt.INetworkDefinition, tensorrt.OnnxParser]:
    """Parse ONNX bytes into a strongly typed network; parser errors name the failing node and operator.

    Strongly typed (`NetworkDefinitionCreationFlag.STRONGLY_TYPED`, TensorRT >= 10.1, the only
    mode of TensorRT-RTX and, from 10.12's deprecation of weak typing on, of TensorRT): every
    tensor has the type the graph gives it, so the precision vssr lowered the ONNX to is the one
    that runs, int8 QDQ included, with no precision flags. Where the flag is gone (strong typing
    the only mode) no flag is the same network.
    """
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    network = builder.create_network(0 if flag is None else 1 << int(flag))
    parser = trt.OnnxParser(network, builder.logger)
    if not parser.parse(model_bytes):
        errors = [parser.get_error(i) for i in range(parser.num_errors)]
        problems = "; ".join(_parser_error(e) for e in errors) or "unknown error"
        if any("DeformConv" in _parser_error(e) for e in errors):
            problems += " (EDVR: deform='decomposed' builds from standard operators)"
        raise BackendError(f"TensorRT cannot parse the ONNX model: {problems}")
    return network, parser


def _parser_error(error: tensorrt.ParserError) -> str:
    """`node <name> (<op>): <description>`; node_name/node_operator exist from TensorRT 10 on."""
    name = error.node_name() if hasattr(error, "node_name") else ""
    op = error.node_operator() if hasattr(error, "node_operator") else ""
    return f"node {name or f'#{error.node()}'} ({op or '?'}): {error.desc()}"


def profile_from_shapes(
    trt: TensorRT, builder: tensorrt.Builder, shapes: Mapping[str, tuple[Sequence[int], ...]]
) -> tensorrt.IOptimizationProfile:
    """One optimization profile: input name -> (min, opt, max) full shapes."""
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in shapes.items():
        profile.set_shape(name, tuple(low), tuple(opt), tuple(high))
    return profile


def config_from_settings(
    trt: TensorRT, builder: tensorrt.Builder, settings: PlanOptions, monitor: tensorrt.IProgressMonitor | None = None
) -> tensorrt.IBuilderConfig:
    """Builder config from every engine-keyed option. No precision flag: the network is strongly typed.

    The engine keeps detailed layer information (`ProfilingVerbosity.DETAILED`, as trtexec
    --profilingVerbosity=detailed): each layer's precision and tactic, read with the engine
    inspector (bench/gpu_check.py --layers) or from the engine file itself.
    """
    config = builder.create_builder_config()
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if settings.workspace is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace << 20)
    config.builder_optimization_level = settings.builder_optimization_level
    if settings.max_aux_streams is not None:
        config.max_aux_streams = settings.max_aux_streams
    if hasattr(trt.BuilderFlag, "TF32"):
        (config.set_flag if settings.tf32 else config.clear_flag)(trt.BuilderFlag.TF32)
    if monitor is not None:
        config.progress_monitor = monitor
    return config


def target_gpu(trt: TensorRT, config: tensorrt.IBuilderConfig, device: cuda.DeviceInfo | None) -> bool:
    """TensorRT-RTX: build for the GPU present, by its compute capability (`SM75`, `SM89`, ...;
    `CURRENT` for one the enum does not name yet).

    Its default targets are Ampere and newer (8.0, 8.6, 8.9, 12.0): on a Turing GPU (7.5) such an
    engine would not deserialize. The engine is keyed on the GPU anyway. Full TensorRT builds for
    the current GPU by itself. Returns whether a target was set.
    """
    capability = getattr(trt, "ComputeCapability", None)
    if device is None or capability is None or not hasattr(config, "set_compute_capability"):
        return False
    major, minor = device.compute_capability
    target = getattr(capability, f"SM{major}{minor}", capability.CURRENT)
    config.num_compute_capabilities = 1
    if not config.set_compute_capability(target, 0):
        raise BackendError(f"TensorRT-RTX refused to target compute capability {major}.{minor}")
    return True


def engine_bytes_from_network(
    builder: tensorrt.Builder, network: tensorrt.INetworkDefinition, config: tensorrt.IBuilderConfig
) -> bytes:
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError("TensorRT failed to build the engine (see the log above for the reason)")
    return bytes(serialized)


def attach_timing_cache(config: tensorrt.IBuilderConfig, path: Path) -> tensorrt.ITimingCache:
    """The shared timing cache of `path` (empty when absent), attached to the builder config.

    TensorRT refuses a cache made on another device (ignore_mismatch=False) by returning False:
    an error, as in Polygraphy, since the engine would then be built on another GPU's timings.
    """
    data = path.read_bytes() if path.is_file() else b""
    timing = config.create_timing_cache(data)
    if not config.set_timing_cache(timing, False):
        raise BackendError(f"TensorRT refused the timing cache {path} (made on another GPU or TensorRT?); "
                           "delete it to start a new one")
    return timing


def save_timing_cache(config: tensorrt.IBuilderConfig, timing: tensorrt.ITimingCache, path: Path) -> None:
    """Merge this build's timings into the shared file under its lock."""
    with files.file_lock(path):
        if path.is_file():
            merged = config.create_timing_cache(path.read_bytes())
            merged.combine(timing, False)
            timing = merged
        files.atomic_write(path, bytes(timing.serialize()))


def build_engine_bytes(trt: TensorRT, settings: PlanOptions, plan: BuildPlan, device: cuda.DeviceInfo | None, folder: Path) -> bytes:
    """The whole build: parse, configure, profile, timing cache, serialize."""
    # the progress monitor is a Python object TensorRT calls back during the build: held here
    # until it ends rather than trusting the bindings to keep it alive (the logger lives forever)
    monitor = progress_monitor(trt) if hasattr(trt, "IProgressMonitor") else None  # TensorRT >= 10
    register_plugins(trt)
    builder = trt.Builder(shared_logger(trt))
    network, _parser = network_from_onnx(trt, builder, plan.model_bytes)
    config = config_from_settings(trt, builder, settings, monitor)
    target_gpu(trt, config, device)
    config.add_optimization_profile(profile_from_shapes(trt, builder, plan.shapes))
    if device is None or settings.module == "tensorrt_rtx":
        # a CPU-only build times nothing, and TensorRT-RTX's timing cache is a deprecated no-op
        return engine_bytes_from_network(builder, network, config)
    path = cache.timing_cache_path(folder, runtime_label(settings.module, trt.__version__), device_label(device))
    timing = attach_timing_cache(config, path)
    data = engine_bytes_from_network(builder, network, config)
    try:
        save_timing_cache(config, timing, path)
    except Exception as err:
        logger.warning("cannot update the timing cache %s: %s", path, err)
    return data


@dataclass(frozen=True)
class Prepared:
    """Everything decided before an engine is loaded or built: module, plan, device, key."""

    trt: TensorRT
    """The imported `tensorrt` or `tensorrt_rtx`."""
    rt: CudaRuntime
    """`cuda.bindings.runtime`."""
    settings: PlanOptions
    plan: BuildPlan
    device: cuda.DeviceInfo | None
    """The GPU (its device set current), or None where there is none (a CPU-only build)."""
    folder: Path
    spec: EngineSpec

    def build(self) -> bytes:
        return build_engine_bytes(self.trt, self.settings, self.plan, self.device, self.folder)

    def runtime(self) -> tensorrt.Runtime:
        """A trt.Runtime on the shared logger (plugins registered: an engine with plugin layers
        deserializes only with them)."""
        return self.trt.Runtime(shared_logger(self.trt))


def prepare(
    settings: PlanOptions, network: Network, profile: ShapeProfile, *, io_dtype: np.dtype | None = None, need_gpu: bool
) -> Prepared:
    """The opening steps of a load (`need_gpu`) and of an ahead-of-time build.

    Settings that cannot work are said first (the plan), then the GPU: a load without one raises
    BackendError; a build without one (TensorRT-RTX builds on the CPU) is keyed on "no GPU".
    """
    rt = cuda.import_cudart()
    trt = import_tensorrt(settings.module)
    plan = BuildPlan.make(settings, network, profile, io_dtype)
    if need_gpu:
        cuda.require_gpu(rt, settings.device_id)
    device = None
    if cuda.device_count(rt)[0] > settings.device_id:
        cuda.call(rt, "cudaSetDevice", rt.cudaSetDevice(settings.device_id))
        device = cuda.device_info(rt, settings.device_id)
    register_plugins(trt)
    folder = cache.engine_folder(settings.engine_folder)
    return Prepared(trt, rt, settings, plan, device, folder, engine_spec(settings, trt.__version__, plan, device))
