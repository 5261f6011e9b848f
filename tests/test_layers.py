"""Imports flow one way: arch/, weights/ and backends/ never import vapoursynth; runtimes are
imported only inside backends/, and only inside functions (import vssr needs none of them)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "vssr"
RUNTIMES = {"onnxruntime", "openvino", "tensorrt", "tensorrt_rtx", "cuda", "torch"}


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", ["arch", "weights", "backends", "onnxpasses"])
def test_lower_layers_do_not_import_vapoursynth(layer: str) -> None:
    for path in (PKG / layer).rglob("*.py"):
        assert "vapoursynth" not in imports(path), path


def test_runtimes_only_in_backends_and_only_lazily() -> None:
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] == "backends":
            assert not (imports(path, top_level_only=True) & RUNTIMES), f"{rel} imports a runtime at module level"
        elif rel.parts[0] != "quant":  # quantization drives onnxruntime's own tools
            assert not (imports(path) & (RUNTIMES - {"onnxruntime"})), rel


def vssr_imports(path: Path) -> set[str]:
    """The vssr modules `path` imports, as dotted names under vssr ("backends.trt", "errors"),
    relative imports resolved; `from .. import x` counts as importing x."""
    package = path.relative_to(PKG).parent.parts
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.removeprefix("vssr.") for a in node.names if a.name.startswith("vssr.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if not (node.module or "").startswith("vssr"):
                    continue
                base = (node.module or "").split(".")[1:]
            else:
                base = [*package[: len(package) - node.level + 1], *(node.module or "").split(".")]
                base = [p for p in base if p]
            if node.module is None or node.module == "vssr":
                found |= {".".join([*base, a.name]) for a in node.names}
            else:
                found.add(".".join(base))
    return found


def test_onnx_passes_import_no_backend_and_no_runtime() -> None:
    """vssr/onnxpasses/ is pure onnx + numpy: backends use it, never the other way, so a pass is
    testable and usable (quantization, benchmarks) without any runtime installed."""
    paths = list((PKG / "onnxpasses").rglob("*.py"))
    assert {p.stem for p in paths} >= {"precision", "io_dtype"}
    for path in paths:
        assert not (imports(path) & (RUNTIMES | {"vapoursynth"})), path
        reached = vssr_imports(path)
        assert not {m for m in reached if m.split(".")[0] in {"backends", "glue", "inference", "filters"}}, (path, reached)
    assert "backends.cuda" in vssr_imports(PKG / "backends" / "trt" / "plan.py")  # the resolver sees relative imports
    assert "onnxpasses.precision" in vssr_imports(PKG / "backends" / "trt" / "plan.py")


def test_import_vssr_loads_no_heavy_runtime() -> None:
    code = (
        "import sys, vssr; heavy = {'openvino', 'tensorrt', 'tensorrt_rtx', 'torch'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def sibling_imports(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports, anywhere in the file (type-only
    imports under TYPE_CHECKING count too: a type-only back-edge is still a cycle to a reader)."""
    modules = {p.stem for p in package.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found |= {a.name for a in node.names} & modules if node.module is None else {node.module.split(".")[0]}
        graph[path.stem] = found - {path.stem}
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


PACKAGES = sorted({p.parent for p in PKG.rglob("__init__.py")})


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: str(p.relative_to(PKG.parent)))
def test_no_import_cycle_among_a_packages_modules(package: Path) -> None:
    assert cycle_in(sibling_imports(package)) is None


def test_cycles_are_found() -> None:
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_tensorrt_package_imports_run_one_way() -> None:
    """Polygraphy's shape: config at the top, plan at the bottom (config -> build, runner, cache -> plan)."""
    graph = sibling_imports(PKG / "backends" / "trt")
    assert set(graph) == {"__init__", "config", "plan", "build", "cache", "runner"}
    assert graph["plan"] == set()  # reads settings through a Protocol, not the config class
    assert graph["cache"] == {"plan"}
    assert graph["runner"] <= {"plan", "cache"} and "plan" in graph["runner"]
    assert graph["build"] <= {"plan", "cache"}
    assert not any("config" in deps for name, deps in graph.items() if name != "__init__")


def test_weights_readers_know_no_filter_and_no_model_source() -> None:
    """weights/ turns files into state dicts (or ONNX models): it knows nothing above it, neither
    where models are found (zoo, download) nor who runs them (filters, glue, inference)."""
    above = {"filters", "glue", "inference", "zoo", "convert", "download", "catalog", "compat", "render", "backends"}
    for path in (PKG / "weights").rglob("*.py"):
        reached = {m.split(".")[0] for m in vssr_imports(path)}
        assert not reached & above, (path, reached & above)


def test_filters_find_models_only_through_the_zoo() -> None:
    """One model-source seam: a filter never reads weight files or looks in the models folder
    itself; it asks `zoo.resolve` (see docs/parameters.md, "model=: one rule")."""
    for path in (PKG / "filters").glob("*.py"):
        reached = {m.split(".")[0] for m in vssr_imports(path)}
        assert not reached & {"weights", "convert", "download", "files", "data"}, (path, reached)
    users = {p.stem for p in (PKG / "filters").glob("*.py") if "zoo" in vssr_imports(p)}
    assert users == {"realesrgan", "quicksrnet", "rife", "edvr"}


def test_model_sources_import_vapoursynth_only_lazily() -> None:
    for name in ("zoo.py", "convert.py", "catalog.py"):
        assert "vapoursynth" not in imports(PKG / name, top_level_only=True), name
    assert not {m.split(".")[0] for m in vssr_imports(PKG / "convert.py")} & {"zoo", "glue", "filters"}
