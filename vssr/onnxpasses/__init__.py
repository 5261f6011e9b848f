"""Pure ONNX graph passes: onnx and numpy only, no runtime, no backend, no VapourSynth.

- `io_dtype`: the element types of a graph's inputs and outputs, with Casts at the edge;
- `precision`: lowering to fp16/bf16 outside fp32 islands, and BatchNormalization folding.

Backends apply them while loading a network (the I/O dtype is an argument of
`BackendConfig.load`); tests/test_layers.py keeps this folder free of backend imports.
"""
