"""The first inference calls of a process, made by two threads at once, must not deadlock.

OpenVINO's Python bindings initialise their numpy interop lazily in a C++ static whose initialiser
runs Python code: two threads making their first call together deadlocked on the static's guard
and the GIL (about 1 fresh process in 4 with two threads released together by a barrier; the
intermittent vspipe stall of the RGBH example). `OV.load` now makes one conversion first
(`warm_up_bindings`). Each run is a fresh process, since the static initialises once per process.
ONNX Runtime, whose bindings set up numpy when imported, runs the same check.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 8  # unfixed, P(no hang in 8) ~ 0.75 ** 8 = 0.1
TIMEOUT = 60  # seconds for one process: it takes ~5

SCRIPT = """
import threading, numpy as np
from tests import nets
from vssr.backends import Backend
from vssr.network import Network
from vssr.types import ShapeProfile
runners = getattr(Backend, "{backend}")(num_streams=2).load(Network.load(nets.conv3x3()), ShapeProfile.static(32, 32))
barrier = threading.Barrier(2)
def work(runner):
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    barrier.wait()
    runner.infer({"input": x})
threads = [threading.Thread(target=work, args=(r,)) for r in runners]
[t.start() for t in threads]
[t.join() for t in threads]
print("done")
"""


def _run(backend: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run([sys.executable, "-c", SCRIPT.replace("{backend}", backend)], capture_output=True, text=True, timeout=TIMEOUT,
                              cwd=ROOT, check=False)
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.parametrize("backend", ["OV", "ORT"])
def test_two_threads_first_calls_do_not_deadlock(backend: str) -> None:
    if backend == "OV":
        pytest.importorskip("openvino")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(_run, [backend] * PROCESSES))
    hung = sum(r is None for r in results)
    assert hung == 0, f"{hung} of {PROCESSES} processes deadlocked in their first inference calls"
    for r in results:
        assert r is not None and r.returncode == 0 and r.stdout.strip() == "done", r and r.stderr
