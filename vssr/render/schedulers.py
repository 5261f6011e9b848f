"""Where chunks run: threads driving local vspipe|ffmpeg pipelines, or Ray tasks on a cluster.

Both hand back `concurrent.futures.Future`s of `ChunkResult`, so the job loop is one loop.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import os
import signal
import subprocess
import threading
from typing import Any, Protocol

from .chunk import ChunkResult, ChunkSpec, run_chunk
from .errors import ChunkError, RenderError

__all__ = ["LocalScheduler", "RayScheduler", "Scheduler", "ray_missing_message", "require_ray"]

logger = logging.getLogger(__name__)


def ray_missing_message() -> str:
    return ('--ray needs Ray, an optional extra: pip install "vssr[ray]" (in a checkout: pip install -e ".[ray]"), '
            'or pip install "ray>=2.60"')


def require_ray() -> Any:
    """The ray module, or a RenderError saying how to install it."""
    try:
        import ray
    except ImportError as err:
        raise RenderError(ray_missing_message()) from err
    return ray


class Scheduler(Protocol):
    slots: int  # chunks worth running at once
    retries_itself: bool  # True when lost workers are retried by the scheduler (Ray)

    def submit(self, spec: ChunkSpec) -> cf.Future[ChunkResult]: ...
    def explain(self, spec: ChunkSpec, err: BaseException) -> str: ...
    def stop(self) -> None: ...  # Ctrl+C: kill what runs; partial files are removed by their workers
    def close(self) -> None: ...


class LocalScheduler:
    """`workers` chunks at once on this machine, each a vspipe|ffmpeg pair driven by one thread."""

    retries_itself = False

    def __init__(self, workers: int) -> None:
        self.slots = workers
        self._pool = cf.ThreadPoolExecutor(workers, thread_name_prefix="vssr-chunk")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._processes: dict[int, list[subprocess.Popen[bytes]]] = {}

    def submit(self, spec: ChunkSpec) -> cf.Future[ChunkResult]:
        return self._pool.submit(self._run, spec)

    def _run(self, spec: ChunkSpec) -> ChunkResult:
        def started(processes: list[subprocess.Popen[bytes]]) -> None:
            with self._lock:
                self._processes[spec.index] = processes
            if self._stop.is_set():
                self._kill(processes)

        if self._stop.is_set():
            raise ChunkError(f"chunk {spec.index} stopped")
        try:
            return run_chunk(spec, started, self._stop)
        finally:
            with self._lock:
                self._processes.pop(spec.index, None)

    @staticmethod
    def _kill(processes: list[subprocess.Popen[bytes]]) -> None:
        for process in processes:
            if process.poll() is None:
                # the whole group: the venv's vspipe is a launcher with the real vspipe as its child
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)

    def explain(self, spec: ChunkSpec, err: BaseException) -> str:
        return str(err) if isinstance(err, ChunkError) else f"chunk {spec.index}: {type(err).__name__}: {err}"

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for processes in self._processes.values():
                self._kill(processes)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _ray_chunk(spec: ChunkSpec) -> ChunkResult:
    return run_chunk(spec)


class RayScheduler:
    """Chunks as Ray tasks: `num_cpus` (and `num_gpus`) each, retried `max_retries` times when their
    worker dies.

    Workers write segments into the work folder themselves, so it must be on storage every node
    sees at the same path (as must the script, its inputs and vssr).
    """

    retries_itself = True

    def __init__(self, address: str, *, num_cpus: float, num_gpus: float = 0.0, max_retries: int) -> None:
        ray = self._ray = require_ray()
        self._owns = not ray.is_initialized()
        if self._owns:
            ray.init(address=address or None, logging_level=logging.WARNING, include_dashboard=False)
        self._task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries)(_ray_chunk)
        self._max_retries = max_retries
        resources = ray.cluster_resources()
        fits = [resources.get(name, 0) // need for name, need in (("CPU", num_cpus), ("GPU", num_gpus)) if need > 0]
        self.slots = max(1, int(min(fits, default=1)))
        self._refs: list[Any] = []
        logger.info("Ray: %d chunk(s) at once (%s CPU each)", self.slots, num_cpus)

    def submit(self, spec: ChunkSpec) -> cf.Future[ChunkResult]:
        ref = self._task.remote(spec)
        self._refs.append(ref)
        return ref.future()  # type: ignore[no-any-return]

    def explain(self, spec: ChunkSpec, err: BaseException) -> str:
        exceptions = self._ray.exceptions
        cause = getattr(err, "cause", None)
        if isinstance(cause, ChunkError):
            return str(cause)
        if isinstance(err, exceptions.WorkerCrashedError | exceptions.NodeDiedError):
            return f"chunk {spec.index}: its Ray worker died {self._max_retries + 1} time(s): {err}"
        return f"chunk {spec.index}: {type(err).__name__}: {err}"

    def stop(self) -> None:
        for ref in self._refs:
            with contextlib.suppress(Exception):  # finished tasks cannot be cancelled: nothing to do
                self._ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._owns:
            self._ray.shutdown()
