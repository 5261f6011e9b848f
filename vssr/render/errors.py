"""The render package's exceptions: plain, with messages meant for the user."""

from __future__ import annotations

__all__ = ["ChunkError", "Interrupted", "RenderError"]


class RenderError(RuntimeError):
    """A user-facing failure of `vssr render`: the message says what happened and what to do."""


class Interrupted(RenderError):
    """Ctrl+C (or SIGTERM): completed chunks were kept, partial ones removed."""


class ChunkError(RuntimeError):
    """A chunk failed. `killed` is True when a process died from a signal (a lost worker: retried)."""

    def __init__(self, message: str, *, killed: bool = False) -> None:
        super().__init__(message)
        self.killed = killed

    def __reduce__(self) -> tuple[object, ...]:  # crosses process boundaries (Ray) with its flag
        return (_chunk_error, (str(self), self.killed))


def _chunk_error(message: str, killed: bool) -> ChunkError:
    return ChunkError(message, killed=killed)
