"""TensorRT (`tensorrt` 10.x/11.x) and TensorRT-RTX (`tensorrt_rtx`) through one code path.

In Polygraphy's shape (backend/trt/{config,profile,loader,runner}.py), one concern per module,
imports running one way (tests/test_layers.py checks it):

    config.py   TRT, TRT_RTX and their validation; load() and build_engine()
      -> build.py   TensorRT's logger and progress, parse, configure, build; prepare()
      -> runner.py  TrtRunner: one execution context, stream and buffers per stream
      -> cache.py   the engine cache, timing caches, TensorRT-RTX's runtime cache
      -> plan.py    profiles, BuildPlan (the graph in its precision), the engine's key

No module imports a runtime at import time: `import vssr` needs neither tensorrt nor cuda.
"""

from __future__ import annotations

from .config import TRT, TRT_RTX

__all__ = ["TRT", "TRT_RTX"]
