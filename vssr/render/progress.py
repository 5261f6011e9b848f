"""Frames done by the chunks in flight, read from the `-progress` files their ffmpeg writes into
the work folder (the same way for local workers and for Ray workers on shared storage)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["frames"]

_TAIL = 512  # bytes: the last `frame=` line of ffmpeg's key=value blocks is in the file's end


def frames(work: Path, index: int) -> int:
    """Frames encoded so far by the running attempt(s) at chunk `index` (0 when none has started)."""
    best = 0
    for path in work.glob(f"chunk-{index:05d}.*.progress"):
        try:
            with open(path, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - _TAIL))
                tail = f.read().decode(errors="replace")
        except OSError:  # finished (removed) between glob and open
            continue
        for line in reversed(tail.splitlines()):
            if line.startswith("frame="):
                value = line.removeprefix("frame=").strip()
                best = max(best, int(value) if value.isdigit() else 0)
                break
    return best
