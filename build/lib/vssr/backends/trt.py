"""TensorRT (`tensorrt`) and TensorRT-RTX (`tensorrt_rtx`) through one code path.

The two configs differ only in the module they import. An engine is built in-process with the
Python API in small named steps (`network_from_onnx` -> `config_from_settings` ->
`profile_from_shapes` -> `engine_bytes_from_network`), cached by `trt_cache`, and run by
`TrtRunner`: one execution context, CUDA stream, pinned host and device buffers per stream, all
allocated in `load()`.

Precision: strongly typed TensorRT (11.x, RTX) has no FP16 builder flag, so vssr converts the
ONNX itself (`precision.lower_precision`, fp32 islands kept). TensorRT 10 is weakly typed: there
the fp32 graph is built with BuilderFlag.FP16/BF16 and the islands are pinned to fp32 layer by
layer. That difference lives in `weak_typing` and `strongly_typed` only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import importlib.util
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .. import files
from ..errors import BackendError, ConfigError, MissingBackendError, install_hint
from ..types import ShapeProfile, TensorSpec
from . import cuda, trt_cache
from .base import BackendConfig, Runner, check_bool, check_int, runtime_field
from .precision import fp32_io, fp32_node_names, lower_precision
from .trt_runner import TrtRunner, context_from_engine, select_profile

if TYPE_CHECKING:
    from pathlib import Path

    from ..network import Network

__all__ = [
    "TRT",
    "TRT_RTX",
    "TrtRunner",
    "config_from_settings",
    "context_from_engine",
    "engine_bytes_from_network",
    "engine_spec",
    "ensure_engine",
    "has_plugin",
    "import_tensorrt",
    "layers_to_pin",
    "network_from_onnx",
    "onnx_nodes_of",
    "profile_from_shapes",
    "register_plugins",
    "resolve_profile",
    "select_profile",
    "strongly_typed",
    "target_gpu",
    "weak_typing",
]

logger = logging.getLogger(__name__)

DEFORM_CONV_PLUGIN = "ModulatedDeformConv2d"
"""What TensorRT's ONNX parser turns DeformConv into (onnx-tensorrt, TensorRT >= 10.1)."""

DEFAULT_MIN_SIDE = 64
"""Dynamic profiles start here unless the tile is smaller: a 0x0 minimum slows and breaks builds."""


def import_tensorrt(module: str) -> Any:
    """Import `tensorrt` or `tensorrt_rtx`, or raise MissingBackendError saying what to install."""
    extra = "trt" if module == "tensorrt" else "trt-rtx"
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingBackendError(
            f"{module} is not installed (or its libraries are missing: {err}): {install_hint(extra)}"
        ) from err


_plugins_registered: set[str] = set()


def register_plugins(trt: Any) -> None:
    """Load TensorRT's plugin library into the registry, once per process and module.

    The ONNX parser finds plugins (DeformConv's) there, and deserializing an engine that contains
    plugin layers needs them registered too. The logger must outlive the registry: `shared_logger`'s does.
    """
    if trt.__name__ in _plugins_registered or not hasattr(trt, "init_libnvinfer_plugins"):
        return
    if not trt.init_libnvinfer_plugins(shared_logger(trt), ""):
        logger.warning("%s: init_libnvinfer_plugins failed; models needing plugins will not build", trt.__name__)
    _plugins_registered.add(trt.__name__)


def has_plugin(trt: Any, name: str) -> bool:
    """Whether the plugin registry (after `register_plugins`) has a creator called `name`."""
    register_plugins(trt)
    registry = trt.get_plugin_registry()
    creators = getattr(registry, "all_creators", None)
    if creators is None:  # before TensorRT 10
        creators = registry.plugin_creator_list
    return any(creator.name == name for creator in creators)


# --- the configs -------------------------------------------------------------------------------
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

    def supports_op(self, op_type: str) -> bool:
        # the ONNX parser maps DeformConv to the ModulatedDeformConv2d plugin (TensorRT >= 10.1),
        # which only full TensorRT's plugin library has (TensorRT-RTX 1.7 registers two others)
        if op_type != "DeformConv":
            return True
        return has_plugin(import_tensorrt(self.module), DEFORM_CONV_PLUGIN)

    def __post_init__(self) -> None:
        if importlib.util.find_spec(self.module) is None:
            import_tensorrt(self.module)  # raises MissingBackendError with the pip command
        check_int("num_streams", self.num_streams, 1)
        check_bool("fp16", self.fp16, optional=True)
        for name in ("bf16", "static_shape", "tf32", "use_cuda_graph"):
            check_bool(name, getattr(self, name))
        if self.fp16 and self.bf16:
            raise ValueError("fp16 and bf16 are exclusive: choose one")
        if self.output_dtype not in (None, "float32", "float16"):
            raise ValueError(f'output_dtype must be "float32", "float16" or None, not {self.output_dtype!r}')
        check_int("builder_optimization_level", self.builder_optimization_level, 0)
        if self.builder_optimization_level > 5:
            raise ValueError(f"builder_optimization_level must be 0..5, not {self.builder_optimization_level}")
        check_int("workspace (MiB)", self.workspace, 1, optional=True)
        check_int("max_aux_streams", self.max_aux_streams, 0, optional=True)
        check_int("device_id", self.device_id, 0)
        for name in ("min_shapes", "opt_shapes", "max_shapes"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, tuple | list) or len(value) != 2:
                raise ValueError(f"{name} must be (width, height), not {value!r}")
            for side in value:
                check_int(f"{name} (width, height)", side, 1)
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

    def load(self, network: Network, profile: ShapeProfile) -> list[Runner]:
        rt = cuda.import_cudart()
        trt = import_tensorrt(self.module)
        plan = BuildPlan.make(self, network, profile, trt)  # settings that cannot work: said first
        cuda.require_gpu(rt, self.device_id)
        cuda.call(rt, "cudaSetDevice", rt.cudaSetDevice(self.device_id))
        device = cuda.device_info(rt, self.device_id)
        register_plugins(trt)
        trt_logger = shared_logger(trt)
        runtime = trt.Runtime(trt_logger)

        deserialize = functools.partial(deserialize_engine, trt, runtime)
        folder = trt_cache.engine_folder(self.engine_folder)
        spec = engine_spec(self, trt, plan, device)
        engine, path = trt_cache.load_or_build(
            folder, spec, lambda: build_engine_bytes(trt, self, plan, device, folder), deserialize
        )
        logger.info("%s: engine %s, %d stream(s)", self.runtime_name, path.name, self.num_streams)
        kernels = self.kernel_cache(path)
        runners: list[TrtRunner] = []
        try:
            for _ in range(self.num_streams):
                runner = TrtRunner(
                    trt, rt, engine, plan, device_id=self.device_id, use_cuda_graph=self.use_cuda_graph, kernels=kernels
                )
                runners.append(runner)
                runner.keep = (runtime, trt_logger)  # the engine must not outlive its runtime and logger
                runner.warm_up()  # on this thread, one runner at a time (see TrtRunner.warm_up)
        except BaseException:
            for built in runners:  # their memory now, not whenever the garbage collector runs
                with contextlib.suppress(Exception):
                    built.close()
            raise
        return list(runners)

    def kernel_cache(self, engine: Path) -> trt_cache.KernelCache | None:
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

    runtime_cache: bool = runtime_field(True, "keep JIT-compiled kernels in <engine>.rtxcache for the next run")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_bool("runtime_cache", self.runtime_cache)

    def kernel_cache(self, engine: Path) -> trt_cache.KernelCache | None:
        return trt_cache.KernelCache(trt_cache.kernel_cache_path(engine)) if self.runtime_cache else None


# --- what to build ----------------------------------------------------------------------------
def resolve_profile(config: _TensorRT, network: Network, profile: ShapeProfile) -> ShapeProfile:
    """The spatial profile to build: the tile when static, else min/opt/max with sane defaults.

    Raises ConfigError naming the setting when the profile cannot take the tiles.
    """
    if config.static_shape:
        if profile.is_static:
            if config.opt_shapes is not None and tuple(config.opt_shapes) != profile.opt:
                raise ConfigError(
                    f"opt_shapes {tuple(config.opt_shapes)} with static_shape=True: a static engine is built "
                    f"for the tile, {profile.opt}; leave opt_shapes unset, or set static_shape=False "
                    "for a dynamic engine optimised at opt_shapes"
                )
            return ShapeProfile.static(*profile.opt)
        logger.info("tiles vary between %s and %s: building a dynamic engine", profile.min, profile.max)
    multiple = network.size.multiple
    opt = tuple(config.opt_shapes or profile.opt)

    def down(side: int) -> int:
        return max(multiple, network.size.minimum, side // multiple * multiple)

    low = tuple(config.min_shapes or (min(down(DEFAULT_MIN_SIDE), lo) for lo in profile.min))
    high = tuple(config.max_shapes or (max(a, b) for a, b in zip(profile.max, opt, strict=True)))
    result = ShapeProfile(low, opt, high)  # type: ignore[arg-type]
    tiles = f"the tiles ({profile.min[0]}x{profile.min[1]}" + (
        ")" if profile.is_static else f" to {profile.max[0]}x{profile.max[1]})")
    for i, axis in enumerate(("width", "height")):
        if result.min[i] > profile.min[i]:
            raise ConfigError(f"min_shapes {low}: its {axis} is above {tiles}; lower it or leave it unset")
        if result.max[i] < profile.max[i]:
            raise ConfigError(f"max_shapes {high}: its {axis} is below {tiles}; raise it or leave it unset")
        if not result.min[i] <= result.opt[i] <= result.max[i]:
            raise ConfigError(
                f"opt_shapes {opt}: its {axis} must lie between min_shapes {low} and max_shapes {high}"
            )
    return result


@dataclass(frozen=True)
class BuildPlan:
    """The graph to build and its shapes, decided once from the config, network and tiles."""

    model_bytes: bytes
    model_digest: str
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]
    """Input name -> (min, opt, max) full NCHW shapes."""
    profile: ShapeProfile
    compute: str
    """"fp32", "fp16" or "bf16"."""
    fp32_nodes: tuple[str, ...]
    pinned_fp32: tuple[str, ...] = ()
    """Weakly typed TensorRT (10.x) with fp16/bf16: the nodes whose layers are pinned to fp32."""

    @property
    def precision_label(self) -> str:
        bits = {np.dtype(np.float32): "32", np.dtype(np.float16): "16"}
        image = [s for s in self.inputs if s.is_image] or list(self.inputs)
        in_bits = bits[image[0].dtype]
        return f"{self.compute}-in{in_bits}-out{bits[self.outputs[0].dtype]}"

    @classmethod
    def make(cls, config: _TensorRT, network: Network, profile: ShapeProfile, trt: Any = None) -> BuildPlan:
        image = network.image_inputs
        in_dtype = image[0].dtype if image else np.dtype(np.float32)
        out_dtype = np.dtype(config.output_dtype) if config.output_dtype else in_dtype
        fp16 = config.fp16 if config.fp16 is not None else in_dtype == np.float16
        compute = "bf16" if config.bf16 else "fp16" if fp16 else "fp32"
        strong = trt is None or strongly_typed(trt)
        # weakly typed TensorRT lowers precision itself (BuilderFlag.FP16): give it fp32 compute
        lowered = compute if strong else "fp32"
        in_dtypes = {s.name: in_dtype if s.is_image else s.dtype for s in network.inputs}
        model = lower_precision(
            fp32_io(network.model),
            fp32_nodes=network.fp32_nodes,
            dtype={"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}[lowered],
            input_dtype=in_dtypes,
            output_dtype=out_dtype,
        )
        inputs = tuple(TensorSpec(s.name, np.dtype(in_dtypes[s.name]), s.shape) for s in network.inputs)
        outputs = tuple(TensorSpec(s.name, out_dtype, s.shape) for s in network.outputs)
        data = model.SerializeToString()
        built = resolve_profile(config, network, profile)
        shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {}
        for spec in inputs:
            if spec.is_image:
                if spec.channels is None:
                    raise BackendError(f"input {spec.name!r} has no fixed channel count; TensorRT needs one")
                low, opt, high = ((1, spec.channels, h, w) for w, h in (built.min, built.opt, built.max))
                shapes[spec.name] = (low, opt, high)
            else:
                if None in spec.shape:
                    raise BackendError(f"input {spec.name!r} {spec.shape} has dynamic non-spatial dimensions")
                shape = tuple(int(d) for d in spec.shape)  # type: ignore[arg-type]
                shapes[spec.name] = (shape, shape, shape)
        return cls(
            model_bytes=data,
            model_digest=files.sha256_bytes(data),
            name=network.name,
            inputs=inputs,
            outputs=outputs,
            shapes=shapes,
            profile=built,
            compute=compute,
            fp32_nodes=network.fp32_nodes,
            pinned_fp32=tuple(sorted(fp32_node_names(model, network.fp32_nodes))) if lowered != compute else (),
        )


def strongly_typed(trt: Any) -> bool:
    """True for TensorRT >= 11 and TensorRT-RTX: no FP16/BF16 builder flags, types come from the graph."""
    return not hasattr(trt.BuilderFlag, "FP16")


_ONNX_LAYER = re.compile(r"\[ONNX Layer: ([^\]]*)\]")


def onnx_nodes_of(layer: Any) -> set[str]:
    """The ONNX nodes a parsed layer came from.

    The parser writes `[ONNX Layer: <node>]` into each layer's metadata (TensorRT >= 10); its
    layer *names* cannot be trusted for this: extra layers of node `a` get names like `a_0`, which
    another node may also be called, and helper layers are named `ONNXTRT_*`. Without metadata
    (older parsers) only an exact name match counts.
    """
    found = set(_ONNX_LAYER.findall(getattr(layer, "metadata", "") or ""))
    return found or {layer.name}


def layers_to_pin(trt: Any, network: Any, keep: set[str]) -> list[Any]:
    """Layers of the `keep` nodes whose outputs are floating-point execution tensors.

    Shape arithmetic (Shape, Gather of a shape, Range, their casts) computes in integers and
    TensorRT rejects a float32 output type there: under OBEY_PRECISION_CONSTRAINTS the build would
    fail, and the integers need no protection from fp16 anyway.
    """
    floating = {trt.float32, trt.float16, getattr(trt, "bfloat16", trt.float32)}
    chosen = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if not onnx_nodes_of(layer) & keep:
            continue
        outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
        if outputs and all(o.dtype in floating and not o.is_shape_tensor for o in outputs):
            chosen.append(layer)
    return chosen


def weak_typing(trt: Any, network: Any, config: Any, compute: str, keep: set[str]) -> int:
    """TensorRT 10.x only: set the FP16/BF16 flag and pin the floating layers of fp32 nodes to fp32.

    Returns the number of layers pinned.
    """
    if compute == "fp32":
        return 0
    config.set_flag(trt.BuilderFlag.FP16 if compute == "fp16" else trt.BuilderFlag.BF16)
    pinned = layers_to_pin(trt, network, keep) if keep else []
    if pinned:
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    for layer in pinned:
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            layer.set_output_type(j, trt.float32)
    return len(pinned)


# --- build steps ------------------------------------------------------------------------------
_loggers: dict[str, Any] = {}


def shared_logger(trt: Any) -> Any:
    """The process's one trt.ILogger per TensorRT module, forwarding to Python logging.

    TensorRT keeps a single logger: a Builder or Runtime made with another one than the first
    makes it warn ("The logger passed into createInferBuilder differs from one already provided").
    Kept for the life of the process, so it outlives every object that logs through it.
    """
    if trt.__name__ not in _loggers:
        _loggers[trt.__name__] = _make_logger(trt)
    return _loggers[trt.__name__]


def _make_logger(trt: Any) -> Any:
    levels = {
        trt.ILogger.Severity.INTERNAL_ERROR: logging.CRITICAL,
        trt.ILogger.Severity.ERROR: logging.ERROR,
        trt.ILogger.Severity.WARNING: logging.WARNING,
        trt.ILogger.Severity.INFO: logging.DEBUG,
        trt.ILogger.Severity.VERBOSE: logging.DEBUG - 5,
    }

    class _Logger(trt.ILogger):  # type: ignore[misc]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.recoverable = 0
            """> 0 while vssr tries something it recovers from (deserializing a cached engine)."""

        def log(self, severity: Any, msg: str) -> None:
            level = levels.get(severity, logging.INFO)
            if self.recoverable and level > logging.WARNING:
                level = logging.WARNING  # vspipe would print "Critical:" for what vssr then fixes
            logger.log(level, "%s", msg)

    return _Logger()


def deserialize_engine(trt: Any, runtime: Any, data: bytes) -> Any:
    """The engine in `data`, or BackendError; TensorRT's complaints about a stale or torn engine
    are logged as warnings, since the cache then rebuilds it."""
    trt_logger = shared_logger(trt)
    trt_logger.recoverable += 1
    try:
        engine = runtime.deserialize_cuda_engine(data)
    finally:
        trt_logger.recoverable -= 1
    if engine is None:
        raise BackendError("deserialize_cuda_engine returned None")
    return engine


def progress_monitor(trt: Any) -> Any:
    """A trt.IProgressMonitor logging the build (it takes minutes): the top two levels of phases
    and each step of the outermost at INFO (what a user watching vspipe sees), the rest at DEBUG."""

    class _Progress(trt.IProgressMonitor):  # type: ignore[misc]
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

    return _Progress()


def network_from_onnx(trt: Any, builder: Any, model_bytes: bytes, *, strong: bool) -> tuple[Any, Any]:
    """Parse ONNX bytes into a network; parser errors name the failing node and operator."""
    # where strong typing is the only mode the flag may be gone: the default is then strongly typed
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    flags = 1 << int(flag) if strong and flag is not None else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, builder.logger)
    if not parser.parse(model_bytes):
        errors = [parser.get_error(i) for i in range(parser.num_errors)]
        problems = "; ".join(_parser_error(e) for e in errors) or "unknown error"
        if any("DeformConv" in _parser_error(e) for e in errors):
            problems += " (EDVR: deform='decomposed' builds from standard operators)"
        raise BackendError(f"TensorRT cannot parse the ONNX model: {problems}")
    return network, parser


def _parser_error(error: Any) -> str:
    """`node <name> (<op>): <description>`; node_name/node_operator exist from TensorRT 10 on."""
    name = error.node_name() if hasattr(error, "node_name") else ""
    op = error.node_operator() if hasattr(error, "node_operator") else ""
    return f"node {name or f'#{error.node()}'} ({op or '?'}): {error.desc()}"


def profile_from_shapes(trt: Any, builder: Any, shapes: Mapping[str, tuple[Sequence[int], ...]]) -> Any:
    """One optimization profile: input name -> (min, opt, max) full shapes."""
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in shapes.items():
        profile.set_shape(name, tuple(low), tuple(opt), tuple(high))
    return profile


def config_from_settings(trt: Any, builder: Any, settings: _TensorRT, monitor: Any = None) -> Any:
    """Builder config from every engine-keyed option (precision flags: `weak_typing`)."""
    config = builder.create_builder_config()
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


def target_gpu(trt: Any, config: Any, device: cuda.DeviceInfo | None) -> bool:
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


def engine_bytes_from_network(builder: Any, network: Any, config: Any) -> bytes:
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError("TensorRT failed to build the engine (see the log above for the reason)")
    return bytes(serialized)


def _attach_timing_cache(config: Any, path: Path) -> Any:
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, False)
    return cache


def _save_timing_cache(config: Any, cache: Any, path: Path) -> None:
    """Merge this build's timings into the shared file under its lock."""
    with files.file_lock(path):
        if path.is_file():
            merged = config.create_timing_cache(path.read_bytes())
            merged.combine(cache, False)
            cache = merged
        files.atomic_write(path, bytes(cache.serialize()))


def build_engine_bytes(trt: Any, settings: _TensorRT, plan: BuildPlan, device: cuda.DeviceInfo | None, folder: Path) -> bytes:
    """The whole build: parse, configure, profile, timing cache, serialize."""
    # the progress monitor is a Python object TensorRT calls back during the build: held here
    # until it ends rather than trusting the bindings to keep it alive (the logger lives forever)
    trt_logger = shared_logger(trt)
    monitor = progress_monitor(trt) if hasattr(trt, "IProgressMonitor") else None  # TensorRT >= 10
    register_plugins(trt)
    builder = trt.Builder(trt_logger)
    strong = strongly_typed(trt)
    network, _parser = network_from_onnx(trt, builder, plan.model_bytes, strong=strong)
    config = config_from_settings(trt, builder, settings, monitor)
    target_gpu(trt, config, device)
    if not strong:
        weak_typing(trt, network, config, plan.compute, set(plan.pinned_fp32))
    config.add_optimization_profile(profile_from_shapes(trt, builder, plan.shapes))
    if device is None or settings.module == "tensorrt_rtx":
        # a CPU-only build times nothing, and TensorRT-RTX's timing cache is a deprecated no-op
        return engine_bytes_from_network(builder, network, config)
    timing = trt_cache.timing_cache_path(folder, _runtime_label(trt, settings), _device_label(device))
    cache = _attach_timing_cache(config, timing)
    data = engine_bytes_from_network(builder, network, config)
    try:
        _save_timing_cache(config, cache, timing)
    except Exception as err:  # noqa: BLE001 - the cache only speeds up later builds; never fail a build over it
        logger.warning("cannot update the timing cache %s: %s", timing, err)
    return data


def _runtime_label(trt: Any, settings: _TensorRT) -> str:
    return f"{settings.module}-{trt.__version__}"


def _device_label(device: cuda.DeviceInfo | None) -> str:
    if device is None:
        return "no-gpu"
    return f"{device.name}-sm{device.compute_capability[0]}{device.compute_capability[1]}"


PRECISION_RULES = 2
"""Bumped whenever what vssr does to precision changes outside the ONNX it builds (the layers
weak typing pins, builder flags): engines built under the old rules are then rebuilt."""


def engine_spec(settings: _TensorRT, trt: Any, plan: BuildPlan, device: cuda.DeviceInfo | None) -> trt_cache.EngineSpec:
    key = {
        "onnx": plan.model_digest,
        "precision_rules": PRECISION_RULES,
        "pinned_fp32": plan.pinned_fp32,
        "profile": dataclasses.asdict(plan.profile),
        "shapes": plan.shapes,
        "precision": plan.precision_label,
        "options": settings.engine_options(),
        "runtime": _runtime_label(trt, settings),
        "device": _device_label(device),
    }
    return trt_cache.EngineSpec(plan.name, plan.profile, plan.precision_label, key)


def ensure_engine(settings: _TensorRT, network: Network, profile: ShapeProfile) -> Path:
    """Build or find the engine file (no GPU needed for TensorRT-RTX, whose builder runs on the CPU)."""
    trt = import_tensorrt(settings.module)
    rt = cuda.import_cudart()
    device = None
    if cuda.device_count(rt)[0] > settings.device_id:
        cuda.call(rt, "cudaSetDevice", rt.cudaSetDevice(settings.device_id))
        device = cuda.device_info(rt, settings.device_id)
    plan = BuildPlan.make(settings, network, profile, trt)
    folder = trt_cache.engine_folder(settings.engine_folder)
    spec = engine_spec(settings, trt, plan, device)
    if device is not None:
        register_plugins(trt)  # an engine with plugin layers deserializes only with them registered
        runtime = trt.Runtime(shared_logger(trt))

        def check(data: bytes) -> bool:
            deserialize_engine(trt, runtime, data)
            return True
    else:  # no GPU to deserialize with: check the bytes against the sidecar's digest

        def check(data: bytes) -> bool:
            import json

            path = folder / spec.filename
            info = json.loads(path.with_name(path.name + trt_cache.SIDECAR).read_text())
            if info.get("sha256") != files.sha256_bytes(data):
                raise BackendError("engine bytes do not match the sidecar digest")
            return True

    _, path = trt_cache.load_or_build(
        folder, spec, lambda: build_engine_bytes(trt, settings, plan, device, folder), check, must_keep=True
    )
    return path
