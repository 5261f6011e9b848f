"""The public API type-checks for users: `vssr.Backend.*` are the config classes to mypy (a typed
namespace, not `Any`), so a misspelt option is caught before a script runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
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
        capture_output=True, text=True, timeout=300,
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
        capture_output=True, text=True, timeout=300, cwd=ROOT,
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


def _stub_classes(path: Path) -> dict[str, dict[str, list[str]]]:
    """class name -> method name -> parameter names (self dropped); "" holds module-level functions."""
    import ast

    found: dict[str, dict[str, list[str]]] = {"": {}}

    def params(fn: ast.FunctionDef) -> list[str]:
        a = fn.args
        return [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)][1 if found_in_class else 0:]

    for node in ast.parse(path.read_text()).body:
        found_in_class = isinstance(node, ast.ClassDef)
        if isinstance(node, ast.FunctionDef):
            found[""][node.name] = params(node)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            found[node.name] = {
                m.name: params(m) for m in node.body
                if isinstance(m, ast.FunctionDef) and not any(isinstance(d, ast.Name) and d.id == "property" for d in m.decorator_list)
            }
            found[node.name].update({
                m.name: [] for m in node.body
                if isinstance(m, ast.FunctionDef) and any(isinstance(d, ast.Name) and d.id == "property" for d in m.decorator_list)
            })
            found[node.name].update({
                m.target.id: [] for m in node.body if isinstance(m, ast.AnnAssign) and isinstance(m.target, ast.Name)
            })
    return found


NOT_IN_TENSORRT_RTX = {("IPluginRegistry", "plugin_creator_list"), ("Dims", "__iter__")}
"""plugin_creator_list: full TensorRT < 10 (vssr looks it up with getattr). Dims.__iter__: Dims
iterates through __getitem__/__len__, which mypy does not count as Iterable."""


def test_tensorrt_stub_matches_the_bindings() -> None:
    """Every class, attribute and method of typings/tensorrt exists in the installed tensorrt_rtx,
    and each method's parameters are those of one overload in its pybind11 docstring."""
    import inspect

    trt = pytest.importorskip("tensorrt_rtx")
    from tests.backends.pybind_signatures import signatures

    checked = 0
    for cls_name, members in _stub_classes(TYPINGS / "tensorrt" / "__init__.pyi").items():
        owner = trt if not cls_name else getattr(trt, cls_name, None)
        assert owner is not None, f"tensorrt_rtx has no {cls_name}"
        for name, stub_params in members.items():
            if (cls_name, name) in NOT_IN_TENSORRT_RTX:
                continue
            real = getattr(owner, name, None)
            assert real is not None, f"tensorrt_rtx.{cls_name}.{name} does not exist"
            if not stub_params or name.startswith("__"):
                continue
            found = signatures(real, name) or [inspect.signature(real)]  # nptype is plain Python
            overloads = [[p for p in s.parameters if p != "self"] for s in found]
            assert stub_params in overloads, f"{cls_name}.{name}{stub_params}: the bindings have {overloads}"
            checked += 1
    assert checked >= 30


def test_cuda_runtime_stub_matches_the_bindings() -> None:
    """typings/cuda/bindings/runtime.pyi: every function exists with the real parameter names."""
    import inspect

    runtime = pytest.importorskip("cuda.bindings.runtime")
    stub = _stub_classes(TYPINGS / "cuda" / "bindings" / "runtime.pyi")
    for name, stub_params in stub[""].items():
        assert list(inspect.signature(getattr(runtime, name)).parameters) == stub_params, name
    for cls_name, members in stub.items():
        for member in [m for m in members if not m.startswith("__")] if cls_name else ():
            assert hasattr(getattr(runtime, cls_name), member) or hasattr(getattr(runtime, cls_name)(), member), (
                f"{cls_name}.{member}"
            )
    assert len(stub[""]) >= 25
