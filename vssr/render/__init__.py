"""`vssr render`: a whole video through any .vpy, in chunks of the script's output, resumable,
with progress and sound, on local workers or a Ray cluster. Knows nothing of the models: it runs
vspipe on a script and ffmpeg on vspipe's output."""

from __future__ import annotations

from .chunk import ChunkResult, ChunkSpec, chunk_ranges, run_chunk
from .errors import ChunkError, Interrupted, RenderError
from .job import DEFAULT_ENCODER, RenderOptions, RenderResult, render, work_folder
from .scripts import interpolate_script, upscale_script

__all__ = [
    "DEFAULT_ENCODER",
    "ChunkError",
    "ChunkResult",
    "ChunkSpec",
    "Interrupted",
    "RenderError",
    "RenderOptions",
    "RenderResult",
    "chunk_ranges",
    "interpolate_script",
    "render",
    "run_chunk",
    "upscale_script",
    "work_folder",
]
