"""OpenVINO backend: one compiled model, one async infer request per stream, compiled-model cache.

On CPUs with AVX-512-BF16 or AMX, OpenVINO's bf16 inference precision is several times faster than
fp32 ONNX Runtime on the same ONNX file, so this is vssr's default CPU backend when installed.

Concurrency (measured on 2 cores, Real-ESRGAN animevideov3 640x360 bf16): `InferRequest.infer`
and `start_async` + `wait` both release the GIL and compute on OpenVINO's own threads (the calling
thread used ~2 ms of CPU for 3 frames), so Python never serialises inference. What leaves a core
idle is the stream layout: with the THROUGHPUT hint (2 OpenVINO streams x 1 thread) and one frame
in flight, exactly one thread ever wanted a CPU (mean 1.00 runnable threads); a second request in
flight raised it to 1.93. One stream using every thread keeps both cores busy with a single frame
(1.75), so that is the default here, fed by `num_streams` (2) infer requests so that one frame's
Python/VapourSynth work overlaps the other's compute.

`import openvino` fails its version check when VapourSynth has already loaded vs-mlrt's ov plugin
(it ships another build of libopenvino with the same soname). `preload()` imports openvino early
(call it before the VapourSynth core is created); `import_openvino()` turns the failure into a
BackendError that says so. Under vspipe the core exists before the script runs, so there
`install_import_hook()` (a .pth startup hook) is the fix.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import InitVar, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .. import cachefile
from ..errors import BackendError, MissingBackendError, install_hint
from ..files import atomic_write, engines_dir
from ..types import ShapeProfile, Tensors, TensorSpec
from ..validation import require_bool, require_choice, require_int
from .base import BackendConfig, Runner, cpu_count, runtime_field
from .ort import MAX_THREADS

if TYPE_CHECKING:
    import numpy as np
    import openvino

    from ..network import Network
    from .runtime_api import OpenVINO

__all__ = [
    "OV",
    "OvRunner",
    "available",
    "cache_entry_for",
    "default_precision",
    "import_openvino",
    "install_import_hook",
    "preload",
    "warm_up_bindings",
]

logger = logging.getLogger(__name__)

type Precision = Literal["f32", "bf16", "f16"]
PRECISIONS: tuple[str, ...] = ("f32", "bf16", "f16")
HINTS: tuple[str, ...] = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")

_import_error: BaseException | None = None
_core: openvino.Core | None = None
_core_lock = threading.Lock()


def preload() -> bool:
    """Import openvino now if it is installed; True when it imported. Never raises.

    Call this before the VapourSynth core exists (vssr/__init__.py does): a later import fails if
    vs-mlrt's ov plugin has loaded its own libopenvino meanwhile, while an earlier one makes that
    plugin share the Python package's library.
    """
    global _import_error
    try:
        import openvino  # noqa: F401
    except ImportError as err:
        _import_error = err
        return False
    return True


_HOOK_MODULE = "_vssr_openvino_first"
_HOOK_SOURCE = '''"""Written by vssr: import openvino just before vapoursynth (see vssr/backends/ov.py).

vs-mlrt's ov plugin ships its own libopenvino under the same soname; whichever loads first is
used by both, and the openvino Python package refuses a library other than its own.
"""

import sys


class _OpenVINOFirst:
    def find_spec(self, name, path=None, target=None):
        if name == "vapoursynth":
            sys.meta_path.remove(self)
            try:
                import openvino  # noqa: F401
            except Exception:
                pass
        return None


sys.meta_path.insert(0, _OpenVINOFirst())
'''


def install_import_hook(site_dir: str | os.PathLike[str] | None = None) -> Path:
    """Make every Python of this environment import openvino right before vapoursynth.

    Needed only where vs-mlrt's ov plugin is installed too, and scripts run under vspipe: vspipe
    creates the core (loading that plugin) before the script's first line, so `preload()` in the
    script is too late. Writes `_vssr_openvino_first.py` and a `.pth` line importing it into
    `site_dir` (default: this environment's site-packages); processes that never import
    vapoursynth pay nothing. Returns the .pth path.
    """
    import sysconfig


    directory = Path(site_dir) if site_dir is not None else Path(sysconfig.get_paths()["purelib"])
    atomic_write(directory / f"{_HOOK_MODULE}.py", _HOOK_SOURCE.encode())
    return atomic_write(directory / "vssr-openvino-first.pth", f"import {_HOOK_MODULE}\n".encode())


def import_openvino() -> OpenVINO:
    """The openvino module, or MissingBackendError / BackendError saying how to get it."""
    try:
        import openvino
    except ImportError as err:
        message = str(err)
        if "mismatches with OpenVINO Runtime" in message or "versions_compatible" in message:
            raise BackendError(
                "openvino cannot be imported: VapourSynth already loaded another OpenVINO build "
                "(vs-mlrt's ov plugin). Import vssr before the first use of vapoursynth's core, "
                f"or use vssr.Backend.ORT(). ({message.splitlines()[-1]})"
            ) from err
        raise MissingBackendError(f"OpenVINO is not installed: {install_hint('ov')}") from err
    return openvino


def available() -> bool:
    """True when openvino imports here (installed and not shadowed by another OpenVINO build)."""
    try:
        import_openvino()
    except BackendError:
        return False
    return True


def shared_core() -> openvino.Core:
    """One ov.Core per process (creating one loads plugins; it is thread-safe to share)."""
    global _core
    with _core_lock:
        if _core is None:
            _core = import_openvino().Core()
        return _core


def default_precision(core: openvino.Core, device: str) -> Precision:
    """bf16 where the CPU computes it natively (AMX or AVX-512-BF16), f16 on GPU/NPU, else f32."""
    try:
        caps = [str(c) for c in core.get_property(device, "OPTIMIZATION_CAPABILITIES")]
    except Exception:
        return "f32"
    if device.upper().startswith("CPU"):
        return "bf16" if "BF16" in caps else "f32"
    return "f16" if "FP16" in caps else "f32"


def cache_entry_for(digest: str) -> Path:
    """The compiled-model cache file of a cache digest (with its `.meta.json` sidecar)."""
    return engines_dir() / "openvino" / f"{digest[:24]}.blob"


def remove_empty_folders(folder: Path) -> None:
    """Drop the empty per-model folders that failed compiles of older vssr versions left (CACHE_DIR)."""
    with contextlib.suppress(OSError):
        for sub in folder.iterdir():
            if sub.is_dir() and not sub.is_symlink():
                with contextlib.suppress(OSError):
                    sub.rmdir()  # only succeeds when empty


@dataclass(frozen=True, kw_only=True)
class OV(BackendConfig):
    """OpenVINO (PyPI `openvino`). CPU by default; "GPU", "GPU.1", "NPU" pass through."""

    num_streams: int = 2
    """Infer requests, i.e. frames in flight. 2 lets one frame's plumbing overlap another's compute."""
    # device
    device: str = "CPU"
    """OpenVINO device name: "CPU", "GPU", "GPU.0", "NPU", ..."""
    # precision
    precision: Precision | None = None
    """Inference precision hint. None: bf16 on CPUs with AMX/AVX-512-BF16 (f16 on GPU), else f32;
    always f32 for precision-sensitive networks (RIFE, EDVR, RRDBNet, QuickSRNet: docs/precision.md).
    `fp16=True` means "f16", `fp16=False` means "f32"."""
    # threading
    ov_streams: int | None = None
    """OpenVINO CPU streams (NUM_STREAMS): frames computed at once. None: `num_streams` (one per
    infer request; measured fastest here), or OpenVINO's choice when `hint` is set."""
    num_threads: int | None = None
    """CPU threads in all (INFERENCE_NUM_THREADS). None: every core this process may use."""
    cpu_pinning: bool | None = None
    """Pin OpenVINO's threads to cores (ENABLE_CPU_PINNING). None: OpenVINO's default (on)."""
    hint: Literal["LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT"] | None = None
    """PERFORMANCE_HINT. None: explicit streams/threads above (vssr's measured default)."""
    # caching
    cache: bool = runtime_field(True, "keep compiled models under engines/openvino/")
    # vs-mlrt's spelling
    bf16: InitVar[bool] = False
    """vs-mlrt's OV_CPU(bf16=True): an alias of precision="bf16" (not a field of its own)."""

    def __post_init__(self, bf16: bool) -> None:
        if bf16 is not False:
            if bf16 is not True or self.precision not in (None, "bf16"):
                raise ValueError(f"bf16={bf16!r} is vs-mlrt's spelling of precision='bf16'; give precision only")
            object.__setattr__(self, "precision", "bf16")
        super().__post_init__()
        require_choice("precision", self.precision, PRECISIONS, optional=True)
        if self.precision is not None and self.fp16 is not None and (self.precision == "f16") != self.fp16:
            raise ValueError(f"fp16={self.fp16} contradicts precision={self.precision!r}: give one of them")
        require_choice("hint", self.hint, HINTS, optional=True)
        self.normalise("ov_streams", require_int("ov_streams", self.ov_streams, 1, self.max_streams, optional=True))
        self.normalise("num_threads", require_int("num_threads", self.num_threads, 1, MAX_THREADS, optional=True))
        self.normalise("cpu_pinning", require_bool("cpu_pinning", self.cpu_pinning, optional=True))
        self.normalise("cache", require_bool("cache", self.cache))
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"device must be an OpenVINO device name such as 'CPU', not {self.device!r}")

    def with_fp32_default(self) -> OV:
        if self.precision is None and self.fp16 is None:
            return replace(self, precision="f32")
        return self

    def supports_op(self, op_type: str) -> bool:
        # OpenVINO's ONNX frontend has no conversion rule for DeformConv-19 (measured)
        return op_type != "DeformConv"

    @property
    def is_cpu(self) -> bool:
        return self.device.upper().startswith("CPU")

    def resolve_precision(self, core: openvino.Core) -> Precision:
        """The precision hint given to OpenVINO (logged once per load)."""
        if self.precision is not None:
            return self.precision
        if self.fp16 is not None:
            return "f16" if self.fp16 else "f32"
        return default_precision(core, self.device)

    def compile_config(self, precision: Precision) -> dict[str, object]:
        """OpenVINO properties for compile_model (without the cache directory)."""
        config: dict[str, object] = {"INFERENCE_PRECISION_HINT": precision}
        if self.hint is not None:
            config["PERFORMANCE_HINT"] = self.hint
        if self.is_cpu:
            if self.hint is None:
                # one OpenVINO stream per vssr stream, each with its own threads. Measured on 2
                # vCPUs (bench/peer.py, animevideov3 640x360): LATENCY with 1 stream x 2 threads
                # and 2 requests ran at 99-150 % CPU (OpenVINO sizes LATENCY by physical cores),
                # THROUGHPUT with 2 streams x 1 thread at 197 %, 1.40 vs 1.00 fps in bf16.
                config["PERFORMANCE_HINT"] = "THROUGHPUT"
                config["NUM_STREAMS"] = self.ov_streams or self.num_streams
                config["INFERENCE_NUM_THREADS"] = self.num_threads or cpu_count()
            else:
                if self.ov_streams is not None:
                    config["NUM_STREAMS"] = self.ov_streams
                if self.num_threads is not None:
                    config["INFERENCE_NUM_THREADS"] = self.num_threads
            if self.cpu_pinning is not None:
                config["ENABLE_CPU_PINNING"] = self.cpu_pinning
        elif self.ov_streams is not None:
            config["NUM_STREAMS"] = self.ov_streams
        return config

    def cache_digest(self, network: Network, profile: ShapeProfile, precision: Precision, version: str) -> str:
        """Key of the compiled-model cache: every setting that changes the compiled blob."""
        return self.build_digest(
            network.digest, version, self.device, precision, self.compile_config(precision), profile
        )

    def cached_compile(
        self, core: openvino.Core, network: Network, profile: ShapeProfile, precision: Precision,
        compile_model: Callable[[], openvino.CompiledModel],
    ) -> openvino.CompiledModel:
        """The compiled model from `engines/openvino/<digest>.blob`, compiling and exporting it once.

        vssr exports the compiled model itself rather than handing OpenVINO a CACHE_DIR: OpenVINO
        writes and reads those blobs on its own, in place, with no integrity check (100 flipped
        bytes gave garbage frames on every run), and never says which files it used. Here the
        exported bytes go through `cachefile` (atomic entry + sha256 sidecar, verified before each
        import) and the lock makes one process compile while the others wait and import.
        """
        ov = import_openvino()
        digest = self.cache_digest(network, profile, precision, ov.__version__)
        entry = cache_entry_for(digest)
        remove_empty_folders(entry.parent)
        config = self.compile_config(precision)

        def export() -> bytes:
            logger.info("OV: compiling %s for %s once; cached in %s", network.name, self.device, entry)
            buffer = io.BytesIO()
            compile_model().export_model(buffer)
            return buffer.getvalue()

        def import_model(data: bytes) -> openvino.CompiledModel:
            return core.import_model(io.BytesIO(data), self.device, config)  # a stream: accepted since 2024

        # "what" is for `vssr engines list` only: the digest already covers all of it
        what = f"{network.name}, {self.device} {precision}, {profile.opt[0]}x{profile.opt[1]}"
        key = {"kind": "openvino-compiled", "digest": digest, "what": what}
        return cachefile.load_or_build(entry, key, export, import_model, env="VSSR_ENGINE_DIR")

    def load(self, network: Network, profile: ShapeProfile, io_dtype: np.dtype | None = None) -> list[Runner]:
        ov = import_openvino()
        if io_dtype is not None:  # OpenVINO converts at the graph edge; the cache keys on this graph
            network = network.with_io_dtype(io_dtype, io_dtype)
        core = shared_core()
        precision = self.resolve_precision(core)
        config = self.compile_config(precision)

        def compile_model() -> openvino.CompiledModel:  # only when the cache has no verified entry
            model = model_from_network(core, network, profile)
            if precision != "f32" and network.fp32_nodes:
                # only the declared nodes (RIFE's grid arithmetic...): OpenVINO's CPU plugin already keeps
                # its own fragile ops in f32, and pinning e.g. BatchNormalization would stop conv fusion
                model = keep_fp32(ov, core, model, set(network.fp32_nodes))
            try:
                return core.compile_model(model, self.device, config)
            except Exception as err:
                raise BackendError(
                    f"OpenVINO cannot compile network {network.name!r} for {self.device}: {err}"
                ) from err

        if self.cache:
            compiled = self.cached_compile(core, network, profile, precision, compile_model)
        else:
            compiled = compile_model()
        warm_up_bindings()  # before VapourSynth's threads make their first calls at once
        runners: list[Runner] = [
            OvRunner(compiled, compiled.create_infer_request(), network.inputs, network.outputs)
            for _ in range(self.num_streams)
        ]
        # OpenVINO may substitute the hint (f16 on a CPU without FP16 compute runs bf16): log its choice
        used = {k: compiled_property(compiled, k)
                for k in ("INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS")}
        runs = used["INFERENCE_PRECISION_HINT"].split("'")[1] if "'" in used["INFERENCE_PRECISION_HINT"] else "?"
        logger.info(
            "OV: %s on %s, precision %s%s (OpenVINO runs %s), %d request(s) in flight, %s stream(s) x %s thread(s)",
            network.name, self.device, precision,
            "" if self.precision is not None or self.fp16 is not None else " chosen from the device's capabilities",
            runs, self.num_streams, used["NUM_STREAMS"], used["INFERENCE_NUM_THREADS"],
        )
        return runners


def compiled_property(compiled: openvino.CompiledModel, name: str) -> str:
    try:
        return str(compiled.get_property(name))
    except Exception:
        return "?"


def model_from_network(core: openvino.Core, network: Network, profile: ShapeProfile) -> openvino.Model:
    """Read the ONNX bytes into an ov.Model; fix the image inputs' size when `profile` is static."""
    import io

    try:
        model = core.read_model(io.BytesIO(network.model.SerializeToString()))
    except Exception as err:
        raise BackendError(f"OpenVINO cannot read network {network.name!r}: {err}") from err
    if profile.is_static:
        width, height = profile.opt
        shapes = {
            spec.name: [1 if d is None else d for d in spec.shape[:2]] + [height, width]
            for spec in network.image_inputs
        }
        if shapes:
            try:
                model.reshape(shapes)
            except Exception as err:
                raise BackendError(
                    f"OpenVINO cannot reshape network {network.name!r} to {width}x{height}: {err}"
                ) from err
    return model


def keep_fp32(ov: OpenVINO, core: openvino.Core, model: openvino.Model, onnx_nodes: set[str]) -> openvino.Model:
    """The model with the ops of `onnx_nodes` pinned to f32 under a bf16/f16 precision hint.

    OpenVINO honours a `DisablePrecisionConversion` runtime attribute per op, but its Python API
    cannot create one (setting the rt_info key from Python gives a string the CPU plugin rejects),
    so the model goes through IR once: serialised, the attribute added to the matching layers,
    read back. An ONNX node `n` becomes the op `n` and helpers named `n/...` (e.g. a Conv's
    `n/WithoutBiases`).
    """
    import tempfile
    import xml.etree.ElementTree as ET

    import numpy as np

    with tempfile.TemporaryDirectory(prefix="vssr-ov-") as tmp:
        xml_path = Path(tmp) / "model.xml"
        ov.save_model(model, str(xml_path), compress_to_fp16=False)
        tree = ET.parse(xml_path)
        pinned = 0
        for layer in tree.getroot().iter("layer"):
            if layer.get("name", "").split("/")[0] not in onnx_nodes:
                continue
            rt_info = layer.find("rt_info")
            if rt_info is None:
                rt_info = ET.SubElement(layer, "rt_info")
            ET.SubElement(rt_info, "attribute", name="DisablePrecisionConversion", version="0", value="dynamic:dynamic")
            pinned += 1
        weights = np.fromfile(xml_path.with_suffix(".bin"), np.uint8)
        text = ET.tostring(tree.getroot(), encoding="unicode")
    logger.info("OV: %d op(s) from %d ONNX node(s) kept in f32", pinned, len(onnx_nodes))
    return core.read_model(text, ov.Tensor(weights))


_bindings_warm = threading.Lock()
_bindings_ready = False


def warm_up_bindings() -> None:
    """Make the first numpy <-> OpenVINO conversion of the process, on this thread, once.

    OpenVINO's Python bindings initialise their numpy interop lazily, in a C++ function-local
    static whose initialiser runs Python code. When two VapourSynth threads make their first
    inference call at once, one holds the static's guard and waits for the GIL, the other holds
    the GIL and waits for the guard: vspipe hangs for good (seen here: 5 of 20 fresh processes
    whose two threads start together; gdb showed one thread in __cxa_guard_acquire, the other in
    PyEval_AcquireThread, both inside _pyopenvino). Doing one conversion at filter creation, before
    any frame is requested, initialises the static with no one to race.
    """
    global _bindings_ready
    with _bindings_warm:
        if _bindings_ready:
            return
        ov = import_openvino()
        import numpy as np

        probe = ov.Tensor(np.zeros((1, 1), np.float32))  # numpy -> Tensor
        np.asarray(probe.data)  # Tensor -> numpy
        _bindings_ready = True


class OvRunner:
    """One InferRequest. `start_async` + `wait` compute on OpenVINO's threads with the GIL released."""

    def __init__(
        self, compiled: openvino.CompiledModel, request: openvino.InferRequest,
        inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...],
    ) -> None:
        self._compiled: openvino.CompiledModel | None = compiled  # keeps the compiled model alive as long as its request
        self.request: openvino.InferRequest | None = request
        self.inputs = inputs
        self.outputs = outputs
        self._input_names = [s.name for s in inputs]
        self._output_names = [s.name for s in outputs]

    def infer(self, feeds: Tensors) -> Tensors:
        request = self.request
        if request is None:
            raise BackendError("an OpenVINO runner was used after close()")
        # share_inputs: OpenVINO reads the caller's C-contiguous arrays in place (no copy)
        request.start_async({name: feeds[name] for name in self._input_names}, share_inputs=True)
        request.wait()
        # views of the request's output tensors: valid until the next call (Runner protocol)
        return {name: request.get_tensor(name).data for name in self._output_names}

    def close(self) -> None:
        self.request = None
        self._compiled = None
