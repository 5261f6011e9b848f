"""supports_op: models choose DeformConv or its decomposition by asking the backend, not by type."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from vssr.backends import Backend


def test_deformconv_support_per_backend() -> None:
    assert Backend.ORT().supports_op("DeformConv")  # onnxruntime >= 1.25 is required by vssr
    assert not Backend.OV().supports_op("DeformConv")
    assert not Backend.TRT_RTX().supports_op("DeformConv")
    assert all(b.supports_op("Conv") for b in (Backend.ORT(), Backend.OV(), Backend.TRT_RTX()))


def test_ort_claim_is_true() -> None:
    """The claim is checked by running a DeformConv on onnxruntime (zero offsets == plain conv)."""
    import onnxruntime as ort

    x = np.random.default_rng(0).random((1, 2, 5, 5), dtype=np.float32)
    w = np.random.default_rng(1).random((2, 2, 3, 3), dtype=np.float32)
    node = helper.make_node("DeformConv", ["x", "w", "off"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    conv = helper.make_node("Conv", ["x", "w"], ["z"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    f = onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        [node, conv], "g",
        [helper.make_tensor_value_info(n, f, s) for n, s in (("x", [1, 2, 5, 5]), ("w", [2, 2, 3, 3]), ("off", [1, 18, 5, 5]))],
        [helper.make_tensor_value_info("y", f, None), helper.make_tensor_value_info("z", f, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y, z = sess.run(None, {"x": x, "w": w, "off": np.zeros((1, 18, 5, 5), np.float32)})
    np.testing.assert_allclose(y, z, atol=1e-5)
