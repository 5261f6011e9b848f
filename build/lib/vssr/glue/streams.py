"""Frames in flight at once: a runner pool and N interleaved ModifyFrame instances.

Measured here: one std.ModifyFrame instance runs its Python callbacks strictly one at a time, so a
single instance keeps only one inference running. N instances over SelectEvery(N, i), put back
together with Interleave, give N callbacks that VapourSynth's thread pool runs concurrently; the
runtimes release the GIL during inference, so N runners really overlap.
Per-stream state lives in a queue, not threading.local: a thread-local does not survive between
VapourSynth callbacks (each runs on a fresh Python thread state).
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable, Iterator, Sequence

import vapoursynth as vs

from ..backends.base import Runner

__all__ = ["RunnerPool", "parallel_frames"]

type Process = Callable[[int, list[vs.VideoFrame], vs.VideoFrame], vs.VideoFrame]


class RunnerPool:
    """Runners handed to whichever thread asks; a thread blocks while all are busy."""

    def __init__(self, runners: Sequence[Runner]) -> None:
        if not runners:
            raise ValueError("a runner pool needs at least one runner")
        self.runners = tuple(runners)
        self._free: queue.SimpleQueue[Runner] = queue.SimpleQueue()
        for runner in runners:
            self._free.put(runner)

    @contextlib.contextmanager
    def borrow(self) -> Iterator[Runner]:
        runner = self._free.get()
        try:
            yield runner
        finally:
            self._free.put(runner)

    def close(self) -> None:
        for runner in self.runners:
            runner.close()


def parallel_frames(
    template: vs.VideoNode, clips: Sequence[vs.VideoNode], process: Process, num_streams: int
) -> vs.VideoNode:
    """A clip shaped like `template` whose frame n is `process(n, [clip frames n], writable out frame)`.

    `num_streams` ModifyFrame instances each take every num_streams-th frame, so up to
    num_streams callbacks run at once.
    """
    core = vs.core
    length = template.num_frames
    streams = max(1, min(num_streams, length))

    def instance(index: int) -> vs.VideoNode:
        def select(c: vs.VideoNode) -> vs.VideoNode:
            return c if streams == 1 else c.std.SelectEvery(streams, index, modify_duration=False)

        t = select(template)
        inputs = [t, *(select(c) for c in clips)]

        def callback(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
            return process(n * streams + index, f[1:], f[0].copy())

        return core.std.ModifyFrame(t, inputs, callback)

    if streams == 1:
        return instance(0)
    parts = [instance(i) for i in range(streams)]
    return core.std.Interleave(parts, modify_duration=False).std.Trim(length=length)
