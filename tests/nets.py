"""Tiny real ONNX networks for tests, and one `check_runner` every backend must pass."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
import onnx

from vssr.arch.ops import GraphBuilder
from vssr.backends.base import Runner


def identity(channels: int = 3) -> onnx.ModelProto:
    g = GraphBuilder("identity")
    x = g.input("input", channels)
    g.output(g.op("Identity", [x]), "output", channels)
    return g.model(scale=1)


def conv3x3(channels: int = 3, seed: int = 0, layers: int = 1, out_channels: int | None = None) -> onnx.ModelProto:
    """`layers` 3x3 convs with LeakyReLU: receptive-field radius = layers."""
    rng = np.random.default_rng(seed)
    out_channels = out_channels or channels
    g = GraphBuilder(f"conv3x3x{layers}")
    x = g.input("input", channels)
    c_in = channels
    for i in range(layers):
        c_out = out_channels if i == layers - 1 else channels
        w = rng.normal(0, 0.3, (c_out, c_in, 3, 3)).astype(np.float32)
        x = g.conv(x, w, rng.normal(0, 0.1, c_out).astype(np.float32), f"conv{i}")
        c_in = c_out
        if i < layers - 1:
            x = g.leaky_relu(x, 0.2)
    g.output(x, "output", out_channels)
    return g.model()


def pixel_shuffle_x2(channels: int = 3, seed: int = 0) -> onnx.ModelProto:
    """conv3x3 to 4C channels then PixelShuffle(2): a 2x upscaler with receptive-field radius 1."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder("shuffle_x2")
    x = g.input("input", channels)
    w = rng.normal(0, 0.3, (4 * channels, channels, 3, 3)).astype(np.float32)
    y = g.depth_to_space(g.conv(x, w, np.zeros(4 * channels, np.float32), "conv"), 2)
    g.output(y, "output", channels)
    return g.model()


def strided_x1(channels: int = 3, seed: int = 0) -> onnx.ModelProto:
    """stride-2 conv then PixelShuffle(2): same size out, needs H, W multiples of 2."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder("strided")
    x = g.input("input", channels)
    w = rng.normal(0, 0.3, (4 * channels, channels, 3, 3)).astype(np.float32)
    y = g.depth_to_space(g.conv(x, w, None, "conv", stride=2), 2)
    g.output(y, "output", channels)
    return g.model(multiple=2)


def two_input(channels: int = 3) -> onnx.ModelProto:
    """input (C) and a [1,1,1,1] scalar 'gain': output = input * gain."""
    g = GraphBuilder("two_input")
    x = g.input("input", channels)
    k = g.input("gain", None, shape=[1, 1, 1, 1])
    g.output(g.mul(x, k), "output", channels)
    return g.model(scale=1)


def static(width: int = 16, height: int = 16, channels: int = 3, seed: int = 0) -> onnx.ModelProto:
    """A 3x3 conv whose input and output have a fixed width x height (an export without dynamic axes)."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder(f"static{width}x{height}")
    x = g.input("input", channels, height, width)
    w = rng.normal(0, 0.3, (channels, channels, 3, 3)).astype(np.float32)
    y = g.conv(x, w, None, "conv")
    g.output(y, "output", shape=[1, channels, height, width])
    return g.model()


SINGLE_INPUT: dict[str, Callable[[], onnx.ModelProto]] = {
    "identity": identity,
    "conv3x3": lambda: conv3x3(layers=2),
    "shuffle_x2": pixel_shuffle_x2,
    "strided_x1": strided_x1,
}
"""The one-input nets above by name: every backend's runners must match the reference on each."""


def check_runner(runner: Runner, model: onnx.ModelProto, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    """Run `runner` on a random input and compare with onnx.reference (independent of any runtime)."""
    from onnx.reference import ReferenceEvaluator

    spec = runner.inputs[0]
    rng = np.random.default_rng(1)
    shape = [d if d is not None else (1 if i == 0 else 24) for i, d in enumerate(spec.shape)]
    x = rng.random(shape, dtype=np.float32).astype(spec.dtype)
    (want,) = ReferenceEvaluator(model).run(None, {spec.name: x.astype(np.float32)})
    got = runner.infer({spec.name: x})[runner.outputs[0].name]
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=rtol, atol=atol)


def run_cpu(model: onnx.ModelProto, x: np.ndarray, name: str = "input") -> np.ndarray:
    """The first output of `model` fed `x` as `name`, on a one-thread ONNX Runtime CPU session."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    out: np.ndarray = session.run(None, {name: x})[0]
    return out


def check_runners_from_threads(runners: Sequence[Runner], model: onnx.ModelProto, rounds: int = 5) -> None:
    """Each runner, on its own thread at the same time, passes `check_runner` `rounds` times."""
    errors: list[BaseException] = []

    def work(runner: Runner) -> None:
        try:
            for _ in range(rounds):
                check_runner(runner, model)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
