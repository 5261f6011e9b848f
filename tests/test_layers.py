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


@pytest.mark.parametrize("layer", ["arch", "weights", "backends"])
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


def test_import_vssr_loads_no_heavy_runtime() -> None:
    code = (
        "import sys, vssr; heavy = {'openvino', 'tensorrt', 'tensorrt_rtx', 'torch'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
