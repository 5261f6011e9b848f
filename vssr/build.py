"""`vssr build SCRIPT.vpy [-a name=value ...]`: build every engine a script needs, ahead of time.

The script is evaluated as vspipe evaluates it (`__name__ == "__vapoursynth__"`, `-a` arguments
as globals), with the real VapourSynth core: creating its filters builds or compiles whatever they
need (TensorRT engines, OpenVINO compiled models, converted and int8 ONNX) into the caches, with
the build progress in the log. No frame is rendered. Then it prints what is new in the caches, so
the first preview or encode starts at once.
"""

from __future__ import annotations

import logging
import os
import runpy
import time
from pathlib import Path

from . import caches

__all__ = ["build_script"]

logger = logging.getLogger(__name__)


def build_script(script: str | os.PathLike[str], args: dict[str, str]) -> list[caches.CacheEntry]:
    """Evaluate `script` with `args` (as vspipe's -a name=value); return the cache entries it wrote."""
    import vapoursynth as vs

    path = Path(script).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such script: {path}")
    before = {e.path: e.last_used for e in caches.entries()}
    start = time.time()
    # vspipe passes -a values as bytes; scripts written for it decode them
    runpy.run_path(os.fspath(path), init_globals={k: v.encode() for k, v in args.items()}, run_name="__vapoursynth__")
    outputs = vs.get_outputs()
    logger.info("%s evaluated in %.1f s: %d output(s)", path.name, time.time() - start, len(outputs))
    return [e for e in caches.entries() if e.kind != "lock" and before.get(e.path, -1.0) < e.last_used]
