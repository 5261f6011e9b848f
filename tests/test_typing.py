"""The public API type-checks for users: `vssr.Backend.*` are the config classes to mypy (a typed
namespace, not `Any`), so a misspelt option is caught before a script runs. And vssr's own calls
into the runtimes are checked: mypy reads the stubs in typings/, and each stub is compared with the
package it describes (names and parameters), so a stub cannot invent an API."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

SCRIPT = """
import vssr
ok = vssr.Backend.ORT(num_streams=2)
bad = vssr.Backend.OV(precisio="bf16")
reveal_type(vssr.Backend.TRT_RTX)
"""


@pytest.mark.skipif(shutil.which("mypy") is None and not Path(sys.executable).with_name("mypy").exists(), reason="mypy is not installed")
def test_backend_namespace_is_typed(tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent", str(script)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    out = result.stdout
    assert 'Unexpected keyword argument "precisio"' in out, out
    assert "vssr.backends.trt" in out and "TRT_RTX" in out, out
    assert out.count("error:") == 1, out


# --- the runtime stubs (typings/) ----------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
TYPINGS = ROOT / "typings"

MISUSE = """
from cuda.bindings import runtime
from vssr.backends.cuda import import_cudart
from vssr.backends.ov import import_openvino
from vssr.backends.trt.build import import_tensorrt

trt = import_tensorrt("tensorrt_rtx")
builder = trt.Builder(trt.ILogger())
network = builder.create_network("strongly typed")
config = builder.create_builder_config()
config.set_flag(trt.MemoryPoolType.WORKSPACE)
engine = trt.Runtime(trt.ILogger()).deserialize_cuda_engine(b"")
reveal_type(engine)
rt = import_cudart()
rt.cudaMemcpyAsync(0, 0, 16, rt.cudaMemcpyKind.cudaMemcpyHostToDevice)
runtime.cudaMalloc("1 MB")
import_openvino().Core().compile_model(model=3)
"""
"""One wrong call per stub, through the loaders vssr uses (their return types are the stubs' Protocols)."""


def _mypy(script: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--no-incremental",
         "--follow-imports=silent", str(script)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )


@pytest.mark.skipif(shutil.which("mypy") is None and not Path(sys.executable).with_name("mypy").exists(), reason="mypy is not installed")
def test_runtime_stubs_are_read(tmp_path: Path) -> None:
    """mypy reads typings/ (mypy_path): misused TensorRT, CUDA and OpenVINO calls are errors, not Any."""
    script = tmp_path / "misuse.py"
    script.write_text(MISUSE)
    out = _mypy(script).stdout
    expected = [
        ':9: error: Argument 1 to "create_network" of "Builder" has incompatible type "str"; expected "SupportsInt"',
        ':11: error: Argument 1 to "set_flag" of "IBuilderConfig" has incompatible type "MemoryPoolType"; expected "BuilderFlag"',
        ':13: note: Revealed type is "tensorrt.ICudaEngine | None"',
        ':15: error: Too few arguments for "cudaMemcpyAsync" of "CudaRuntime"',
        ':16: error: Argument 1 to "cudaMalloc" has incompatible type "str"; expected "int"',
        ':17: error: Argument "model" to "compile_model" of "Core" has incompatible type "int"',
    ]
    for line in expected:
        assert line in out, f"{line!r} not in:\n{out}"
    assert out.count("error:") == 5, out


def _stub_members(path: Path) -> dict[str, dict[str, list[str] | None]]:
    """Public class name ("" for the module) -> member -> its parameter names (self dropped, "**"
    last when it takes **kwargs), or None for an attribute or property."""
    import ast

    def params(fn: ast.FunctionDef, in_class: bool) -> list[str] | None:
        if any(isinstance(d, ast.Name) and d.id == "property" for d in fn.decorator_list):
            return None
        a = fn.args
        names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)][1 if in_class else 0:]
        return [*names, "**"] if a.kwarg else names

    found: dict[str, dict[str, list[str] | None]] = {"": {}}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            found[""][node.name] = params(node, False)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            members = found[node.name] = {}
            for m in node.body:
                if isinstance(m, ast.FunctionDef):
                    members[m.name] = params(m, True)
                elif isinstance(m, ast.AnnAssign) and isinstance(m.target, ast.Name):
                    members[m.target.id] = None
    return found


def _real_parameters(member: Callable[..., object], name: str) -> list[list[str]]:
    """Every overload's parameter names (self, *args and **kwargs left out): from a pybind11
    docstring, else from inspect (Cython and Python functions)."""
    import inspect

    from tests.backends.pybind_signatures import signatures

    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    found = signatures(member, name) or [inspect.signature(member)]
    return [[p.name for p in sig.parameters.values() if p.name != "self" and p.kind not in variadic] for sig in found]


def _check_stub(stub: Path, module: object, absent: frozenset[tuple[str, str]] = frozenset()) -> int:
    """Every class and member the stub declares exists in `module` (but `absent`'s (class, name)),
    and each method's parameters are those of one real overload (a stub taking **kwargs may
    name only the first ones). Returns how many signatures were compared."""
    compared = 0
    for cls_name, members in _stub_members(stub).items():
        owner = getattr(module, cls_name, None) if cls_name else module
        assert owner is not None, f"{stub}: {cls_name} does not exist"
        for name, params in members.items():
            if (cls_name, name) in absent:
                continue
            real = getattr(owner, name, None)
            if real is None and isinstance(owner, type):  # a field set per instance (a C struct's)
                real = getattr(owner(), name, None)
            assert real is not None, f"{stub}: {cls_name}.{name} does not exist"
            if params is None or (name.startswith("__") and name != "__init__"):
                continue
            overloads = _real_parameters(real, name)
            if params[-1:] == ["**"]:
                overloads = [o[: len(params) - 1] for o in overloads]
                params = params[:-1]
            assert params in overloads, f"{stub}: {cls_name}.{name}{params}, the installed package has {overloads}"
            compared += 1
    return compared


NOT_IN_TENSORRT_RTX = frozenset({("IPluginRegistry", "plugin_creator_list"), ("Dims", "__iter__")})
"""plugin_creator_list: full TensorRT < 10 (vssr looks it up with getattr). Dims.__iter__: Dims
iterates through __getitem__/__len__, which mypy does not count as Iterable."""


def test_tensorrt_stub_matches_the_bindings() -> None:
    """typings/tensorrt against the installed tensorrt_rtx's pybind11 signatures."""
    trt = pytest.importorskip("tensorrt_rtx")
    assert _check_stub(TYPINGS / "tensorrt" / "__init__.pyi", trt, NOT_IN_TENSORRT_RTX) >= 40


def test_cuda_runtime_stub_matches_the_bindings() -> None:
    """typings/cuda/bindings/runtime.pyi against the installed cuda-bindings (Cython signatures)."""
    runtime = pytest.importorskip("cuda.bindings.runtime")
    assert _check_stub(TYPINGS / "cuda" / "bindings" / "runtime.pyi", runtime) >= 25


def test_onnxruntime_and_tqdm_stubs_match_the_packages() -> None:
    ort = pytest.importorskip("onnxruntime")
    quantization = pytest.importorskip("onnxruntime.quantization")
    tqdm = pytest.importorskip("tqdm")
    assert _check_stub(TYPINGS / "onnxruntime" / "__init__.pyi", ort) >= 5
    assert _check_stub(TYPINGS / "onnxruntime" / "quantization" / "__init__.pyi", quantization) >= 2
    assert _check_stub(TYPINGS / "tqdm" / "__init__.pyi", tqdm) >= 4


def test_openvino_stub_matches_openvinos_own_stubs() -> None:
    """typings/openvino is cut from the `.pyi` files OpenVINO ships (read by no type checker for
    want of a py.typed marker): every method has the parameters of one of their overloads."""
    import ast

    openvino = pytest.importorskip("openvino")
    shipped = Path(openvino.__file__).parent
    overloads: dict[str, dict[str, list[list[str]]]] = {}
    for path in (shipped / "_ov_api.pyi", shipped / "_pyopenvino" / "__init__.pyi"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                methods = overloads.setdefault(node.name, {})
                for fn in (m for m in node.body if isinstance(m, ast.FunctionDef)):
                    a = fn.args
                    methods.setdefault(fn.name, []).append([p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)][1:])
            elif isinstance(node, ast.FunctionDef):
                a = node.args
                overloads.setdefault("", {}).setdefault(node.name, []).append([p.arg for p in (*a.args, *a.kwonlyargs)])
    checked = 0
    for cls_name, members in _stub_members(TYPINGS / "openvino" / "__init__.pyi").items():
        for name, stub_params in members.items():
            if not stub_params:
                continue
            assert stub_params in overloads[cls_name].get(name, []), (
                f"openvino {cls_name}.{name}{stub_params}: its own stubs have {overloads[cls_name].get(name)}"
            )
            checked += 1
    assert checked >= 10
