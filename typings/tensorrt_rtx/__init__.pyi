"""tensorrt_rtx has TensorRT's Python API (vssr drives both through one code path): one stub, `tensorrt`'s."""

from tensorrt import *
from tensorrt import __version__ as __version__
