"""Tiny random DWPose ONNX models with the real input/output signatures, made at test time.

``yolox_l.onnx``: ``images`` [1, 3, 640, 640] -> ``output`` [1, 8400, 85] (rows for the 80x80,
40x40 and 20x20 grids; box offsets raw, objectness and class scores through a sigmoid, as the
exported YOLOX has them). ``dw-ll_ucoco_384.onnx``: ``input`` [1, 3, 384, 288] -> ``simcc_x``
[1, 133, 576], ``simcc_y`` [1, 133, 768]. Weights are random (seeded): the pipeline is real,
accuracy is not claimed. ``person_bias`` lifts objectness and person scores so some boxes pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _init(name, arr):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


def make_detector(path: Path, seed: int = 0, person_bias: float = 4.0) -> Path:
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    nodes, inits, parts = [], [], []
    for s in (8, 16, 32):
        nodes.append(helper.make_node("AveragePool", ["images"], [f"p{s}"], kernel_shape=[s, s], strides=[s, s]))
        w = rng.normal(0, 0.002, (85, 3, 1, 1))
        b = np.zeros(85)
        b[4] = b[5] = person_bias  # objectness and "person"
        b[6:] = -6.0
        inits += [_init(f"w{s}", w), _init(f"b{s}", b)]
        nodes.append(helper.make_node("Conv", [f"p{s}", f"w{s}", f"b{s}"], [f"c{s}"]))
    inits.append(onnx.numpy_helper.from_array(np.array([1, 85, -1], np.int64), "shape"))
    for s in (8, 16, 32):
        nodes.append(helper.make_node("Reshape", [f"c{s}", "shape"], [f"r{s}"]))
        parts.append(f"r{s}")
    nodes.append(helper.make_node("Concat", parts, ["cat"], axis=2))
    nodes.append(helper.make_node("Transpose", ["cat"], ["rows"], perm=[0, 2, 1]))
    inits.append(onnx.numpy_helper.from_array(np.array([4, 81], np.int64), "split"))
    nodes.append(helper.make_node("Split", ["rows", "split"], ["box", "logits"], axis=2))
    nodes.append(helper.make_node("Sigmoid", ["logits"], ["probs"]))
    nodes.append(helper.make_node("Concat", ["box", "probs"], ["output"], axis=2))
    graph = helper.make_graph(nodes, "yolox_tiny_random",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8400, 85])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_pose(path: Path, seed: int = 1) -> Path:
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    inits = [_init("w", rng.normal(0, 0.5, (133, 3, 1, 1))), _init("b", rng.normal(0, 0.1, 133)),
             _init("wx", rng.normal(0, 1.0, (48, 576))), _init("wy", rng.normal(0, 1.0, (48, 768))),
             onnx.numpy_helper.from_array(np.array([1, 133, 48], np.int64), "shape")]
    nodes = [helper.make_node("AveragePool", ["input"], ["p"], kernel_shape=[48, 48], strides=[48, 48]),  # 8x6
             helper.make_node("Conv", ["p", "w", "b"], ["c"]),
             helper.make_node("Reshape", ["c", "shape"], ["f"]),
             helper.make_node("MatMul", ["f", "wx"], ["mx"]), helper.make_node("Sigmoid", ["mx"], ["simcc_x"]),
             helper.make_node("MatMul", ["f", "wy"], ["my"]), helper.make_node("Sigmoid", ["my"], ["simcc_y"])]
    graph = helper.make_graph(nodes, "dwpose_tiny_random",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 384, 288])],
                              [helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, [1, 133, 576]),
                               helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, [1, 133, 768])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_dwpose_folder(folder: Path, **kw) -> Path:
    """``folder`` with both files, named as controlnet_aux names them."""
    folder.mkdir(parents=True, exist_ok=True)
    make_detector(folder / "yolox_l.onnx", **kw)
    make_pose(folder / "dw-ll_ucoco_384.onnx")
    return folder
