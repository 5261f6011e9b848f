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
