"""What to build: the shape profile, the graph in its precision (`BuildPlan`), the engine's key.

Decided once from the settings, the network and the tiles, before any GPU or TensorRT call, so
settings that cannot work are said first. The base of the package: it imports none of its
siblings (they read settings through `PlanOptions`, which `config._TensorRT` satisfies).

Precision: every TensorRT vssr drives (10.x, 11.x, TensorRT-RTX) builds a strongly typed network
(`NetworkDefinitionCreationFlag.STRONGLY_TYPED`): the types are the graph's, so vssr lowers the
ONNX itself (`onnxpasses.precision.lower_precision`, fp32 islands kept as Casts in the graph) and sets no
FP16/BF16/INT8 builder flag and no per-layer precision. Int8 QDQ models take their int8 from
their Q/DQ nodes the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ... import files
from ...errors import BackendError, ConfigError
from ...onnxpasses.io_dtype import float32_io
from ...onnxpasses.precision import lower_precision
from ...types import ShapeProfile, TensorSpec

if TYPE_CHECKING:
    import onnx

    from ...network import Network
    from ..cuda import DeviceInfo

__all__ = [
    "BUILD_RULES",
    "DEFAULT_MIN_SIDE",
    "PLUGIN_OPS",
    "BuildPlan",
    "EngineSpec",
    "PlanOptions",
    "device_label",
    "engine_spec",
    "plugin_nodes",
    "resolve_profile",
    "runtime_label",
    "shape_label",
]

logger = logging.getLogger(__name__)

DEFAULT_MIN_SIDE = 64
"""Dynamic profiles start here unless the tile is smaller: a 0x0 minimum slows and breaks builds."""

PLUGIN_OPS = frozenset({"DeformConv"})
"""Standard ONNX ops TensorRT's parser turns into plugin layers (DeformConv: ModulatedDeformConv2d)."""

BUILD_RULES = 3
"""Bumped whenever vssr changes how it builds outside the ONNX it hands TensorRT (network flags,
builder flags, layer information kept): engines built under older rules are then rebuilt, once.
3: strongly typed on every TensorRT (TensorRT 10 was weakly typed with pinned layers), detailed
layer information in the engine."""


class PlanOptions(Protocol):
    """The settings a plan, a build and a key read (`config._TensorRT` has them all; read-only)."""

    @property
    def module(self) -> str: ...
    @property
    def fp16(self) -> bool | None: ...
    @property
    def bf16(self) -> bool: ...
    @property
    def output_dtype(self) -> str | None: ...
    @property
    def static_shape(self) -> bool: ...
    @property
    def min_shapes(self) -> tuple[int, int] | None: ...
    @property
    def opt_shapes(self) -> tuple[int, int] | None: ...
    @property
    def max_shapes(self) -> tuple[int, int] | None: ...
    @property
    def workspace(self) -> int | None: ...
    @property
    def builder_optimization_level(self) -> int: ...
    @property
    def max_aux_streams(self) -> int | None: ...
    @property
    def tf32(self) -> bool: ...
    @property
    def device_id(self) -> int: ...
    @property
    def engine_folder(self) -> str | None: ...

    def engine_options(self) -> dict[str, object]: ...


def resolve_profile(options: PlanOptions, network: Network, profile: ShapeProfile) -> ShapeProfile:
    """The spatial profile to build: the tile when static, else min/opt/max with sane defaults.

    Raises ConfigError naming the setting when the profile cannot take the tiles.
    """
    if options.static_shape:
        if profile.is_static:
            if options.opt_shapes is not None and tuple(options.opt_shapes) != profile.opt:
                raise ConfigError(
                    f"opt_shapes {tuple(options.opt_shapes)} with static_shape=True: a static engine is built "
                    f"for the tile, {profile.opt}; leave opt_shapes unset, or set static_shape=False "
                    "for a dynamic engine optimised at opt_shapes"
                )
            return ShapeProfile.static(*profile.opt)
        logger.info("tiles vary between %s and %s: building a dynamic engine", profile.min, profile.max)
    multiple = network.size.multiple
    opt = tuple(options.opt_shapes or profile.opt)

    def down(side: int) -> int:
        return max(multiple, network.size.minimum, side // multiple * multiple)

    low = tuple(options.min_shapes or (min(down(DEFAULT_MIN_SIDE), lo) for lo in profile.min))
    high = tuple(options.max_shapes or (max(a, b) for a, b in zip(profile.max, opt, strict=True)))
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


def plugin_nodes(model: onnx.ModelProto) -> tuple[str, ...]:
    """Nodes TensorRT runs as plugin layers: `PLUGIN_OPS` and ops of a custom domain (the parser
    looks those up in the plugin registry by name)."""
    return tuple(
        n.name or n.op_type for n in model.graph.node if n.op_type in PLUGIN_OPS or n.domain not in ("", "ai.onnx")
    )


@dataclass(frozen=True)
class BuildPlan:
    """The graph to build and its shapes, decided once from the settings, network and tiles."""

    model_bytes: bytes
    model_digest: str
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]
    """Input name -> (min, opt, max) full NCHW shapes."""
    profile: ShapeProfile
    compute: str
    """"fp32", "fp16" or "bf16": the precision the graph was lowered to."""
    fp32_nodes: tuple[str, ...]
    plugin_nodes: tuple[str, ...] = ()
    """Nodes that become plugin layers: their engines are never captured into CUDA graphs by vssr
    (a plugin's own CUDA runtime keeps a failed capture's error; see runner.TrtRunner)."""

    @property
    def precision_label(self) -> str:
        bits = {np.dtype(np.float32): "32", np.dtype(np.float16): "16"}
        image = [s for s in self.inputs if s.is_image] or list(self.inputs)
        in_bits = bits[image[0].dtype]
        return f"{self.compute}-in{in_bits}-out{bits[self.outputs[0].dtype]}"

    @classmethod
    def make(
        cls, options: PlanOptions, network: Network, profile: ShapeProfile, io_dtype: np.dtype | None = None
    ) -> BuildPlan:
        """`io_dtype`: the type of the image inputs (and, unless `output_dtype` says otherwise, of
        the outputs); None: the network's own. The graph is lowered with those I/O types."""
        image = network.image_inputs
        in_dtype = np.dtype(io_dtype) if io_dtype is not None else image[0].dtype if image else np.dtype(np.float32)
        out_dtype = np.dtype(options.output_dtype) if options.output_dtype else in_dtype
        fp16 = options.fp16 if options.fp16 is not None else in_dtype == np.float16
        compute = "bf16" if options.bf16 else "fp16" if fp16 else "fp32"
        in_dtypes = {s.name: in_dtype if s.is_image else s.dtype for s in network.inputs}
        model = lower_precision(
            float32_io(network.model),
            fp32_nodes=network.fp32_nodes,
            dtype={"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}[compute],
            input_dtype=in_dtypes,
            output_dtype=out_dtype,
        )
        inputs = tuple(TensorSpec(s.name, np.dtype(in_dtypes[s.name]), s.shape) for s in network.inputs)
        outputs = tuple(TensorSpec(s.name, out_dtype, s.shape) for s in network.outputs)
        data = model.SerializeToString()
        built = resolve_profile(options, network, profile)
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
            plugin_nodes=plugin_nodes(model),
        )


# --- the engine's identity --------------------------------------------------------------------
def shape_label(profile: ShapeProfile) -> str:
    """`1920x1080` for a static profile, `64x64-960x540-1920x1080` (min-opt-max) otherwise."""
    def wh(size: tuple[int, int]) -> str:
        return f"{size[0]}x{size[1]}"

    return wh(profile.opt) if profile.is_static else f"{wh(profile.min)}-{wh(profile.opt)}-{wh(profile.max)}"


def safe_name(text: str) -> str:
    """`text` as a file-name part: letters, digits, - and _ only, at most 64 characters."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)[:64] or "model"


ENGINE_SUFFIX = ".engine"


@dataclass(frozen=True)
class EngineSpec:
    """What identifies one engine: a readable part for the file name and the full key."""

    model: str
    profile: ShapeProfile
    precision: str
    """e.g. `fp16-in16-out32`."""
    key: dict[str, Any] = field(hash=False)

    @property
    def digest(self) -> str:
        payload = json.dumps(self.key, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    @property
    def filename(self) -> str:
        return (f"{safe_name(self.model)}.{shape_label(self.profile)}.{safe_name(self.precision)}."
                f"{self.digest[:16]}{ENGINE_SUFFIX}")


def runtime_label(module: str, version: str) -> str:
    """`tensorrt_rtx-1.7.1.116`: engines and timing caches are specific to the TensorRT build."""
    return f"{module}-{version}"


def device_label(device: DeviceInfo | None) -> str:
    if device is None:
        return "no-gpu"
    return f"{device.name}-sm{device.compute_capability[0]}{device.compute_capability[1]}"


def engine_spec(options: PlanOptions, version: str, plan: BuildPlan, device: DeviceInfo | None) -> EngineSpec:
    """The key of the engine `plan` builds with TensorRT `version` for `device`: the ONNX digest
    after precision lowering, the profile, precisions, every builder option, runtime and GPU."""
    key = {
        "onnx": plan.model_digest,
        "build_rules": BUILD_RULES,
        "profile": dataclasses.asdict(plan.profile),
        "shapes": plan.shapes,
        "precision": plan.precision_label,
        "options": options.engine_options(),
        "runtime": runtime_label(options.module, version),
        "device": device_label(device),
    }
    return EngineSpec(plan.name, plan.profile, plan.precision_label, key)
