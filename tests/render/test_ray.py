"""vssr render on a simulated two-node Ray cluster (one CPU each): a worker killed in the middle of
a chunk is retried by Ray, and the join is still frame-exact. Slow tier (starting Ray takes a while)."""

from __future__ import annotations

import io
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.render.helpers import SCRIPT, framemd5, model_args, vssr
from tests.render.test_exact import odd_chunk_frames
from vssr.render import RenderOptions, render

pytestmark = pytest.mark.slow


class Killer(threading.Thread):
    """Kills the Ray worker of the first chunk whose ffmpeg has started (its progress file exists)."""

    def __init__(self, work: Path) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.killed: tuple[int, int] | None = None  # (chunk index, worker pid)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for path in self.work.glob("chunk-*.*.progress"):
                match = re.fullmatch(r"chunk-(\d+)\.(\d+)\.progress", path.name)
                if match and not (self.work / f"chunk-{match[1]}.mkv").exists():
                    index, pid = int(match[1]), int(match[2])
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        continue
                    self.killed = (index, pid)
                    return
            time.sleep(0.02)


def test_two_nodes_worker_killed(tmp_path: Path, clip: Path, sr_onnx: Path) -> None:
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    args = model_args("realesrgan", sr_onnx, clip, ["-a", "tilesize=32"])
    one = tmp_path / "one.mkv"
    vssr("render", SCRIPT, "-o", one, *args, "--encoder", "-c:v ffv1", "--audio-from", "none", "--chunk-frames", 60)

    out = tmp_path / "ray.mkv"
    work = tmp_path / "ray.mkv.vssr-work"
    work.mkdir()
    killer = Killer(work)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address)
        cluster.wait_for_nodes()
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        killer.start()
        opts = RenderOptions(
            script=SCRIPT, out=out, args=tuple(a.split("=", 1) for a in args[1::2]),  # type: ignore[misc]
            encoder=("-c:v", "ffv1"), chunk_frames=odd_chunk_frames(60), threads=1, ray=cluster.address,
            retries=2, audio_from=None,
        )
        report = io.StringIO()
        t0 = time.monotonic()
        result = render(opts, stream=report)
        seconds = time.monotonic() - t0
    finally:
        killer.done.set()
        ray.shutdown()
        cluster.shutdown()
    assert killer.killed is not None, "no chunk was caught running"
    print(f"ray: 7 chunks on 2 nodes in {seconds:.1f} s, killed worker {killer.killed[1]} in chunk {killer.killed[0]}")
    assert result.chunks == 7 and result.frames == 60
    assert framemd5(out) == framemd5(one)
