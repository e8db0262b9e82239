"""Tiny image classifiers built here with the ``onnx`` package's helpers (no weights downloaded),
whose answers are known for given images: the mean colour of the image, normalised, goes through
one linear layer (``W`` = 4 x identity, plus a "gray" class of constant logit 1) and a softmax.

So for a uniform image of colour ``rgb`` the probabilities are ``expected(rgb)``: pure red gives
"red" at 0.95197, mid grey gives "gray" at 0.47146, and (200, 100, 30) gives all four apart.
``colour_model`` writes the model with or without its preprocessing in the metadata, channels
first or last, with the softmax or without (logits), so each way of learning the preprocessing is
exercised."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LABELS = ("red", "green", "blue", "gray")
W = np.zeros((3, 4), dtype=np.float32)
W[0, 0] = W[1, 1] = W[2, 2] = 4.0
B = np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32)
HALF = (0.5, 0.5, 0.5)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def expected(rgb: tuple[int, int, int], mean: tuple[float, ...] = HALF,
             std: tuple[float, ...] = HALF) -> dict[str, float]:
    """The model's probabilities for a uniform image of colour ``rgb`` under that normalisation."""
    z = (np.asarray(rgb, np.float64) / 255.0 - np.asarray(mean)) / np.asarray(std)
    logits = z @ W.astype(np.float64) + B
    e = np.exp(logits - logits.max())
    p = e / e.sum()
    return dict(zip(LABELS, (float(v) for v in p), strict=True))


def colour_model(path: Path, *, layout: str = "NCHW", metadata: bool = True, softmax: bool = True,
                 size: int = 32, fixed: bool = True, weight: np.ndarray = W, bias: np.ndarray = B) -> Path:
    """Writes the classifier to ``path``. ``metadata``: its mean and std (0.5) and layout are in
    the model; without, they must come from the settings (or be ImageNet's). ``fixed``: the input
    has a fixed height and width (``size``), else they are symbolic. ``weight`` and ``bias``: the
    linear layer (3 x classes, classes), the colour classifier's unless given."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    sides: list[int | str] = [size, size] if fixed else ["height", "width"]
    if layout == "NCHW":
        shape = ["batch", 3, *sides]
        nodes = [helper.make_node("GlobalAveragePool", ["pixels"], ["pooled"]),
                 helper.make_node("Flatten", ["pooled"], ["features"], axis=1)]
    else:
        shape = ["batch", *sides, 3]
        axes = numpy_helper.from_array(np.array([1, 2], dtype=np.int64), name="axes")
        nodes = [helper.make_node("ReduceMean", ["pixels", "axes"], ["features"], keepdims=0)]
    out = "probabilities" if softmax else "logits"
    nodes += [helper.make_node("MatMul", ["features", "weight"], ["scaled"]),
              helper.make_node("Add", ["scaled", "bias"], ["logits"])]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1))
    initializers = [numpy_helper.from_array(weight.astype(np.float32), name="weight"),
                    numpy_helper.from_array(bias.astype(np.float32), name="bias")]
    if layout != "NCHW":
        initializers.append(axes)
    graph = helper.make_graph(
        nodes, "colours", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", len(bias)])], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="iris-tests")
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, {"mean": json.dumps(HALF), "std": json.dumps(HALF), "layout": layout})
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def fixed_model(path: Path, logits: tuple[float, ...]) -> Path:
    """A classifier whose scores are ``softmax(logits)`` whatever the image (no weight on it)."""
    return colour_model(path, metadata=False, weight=np.zeros((3, len(logits))), bias=np.asarray(logits))


def labels_file(path: Path, labels: tuple[str, ...] = LABELS) -> Path:
    path.write_text("".join(f"{label}\n" for label in labels))
    return path


def slow_model(path: Path, *, steps: int = 40, side: int = 384) -> Path:
    """A classifier of the same four labels that takes a while: ``steps`` products of ``side`` x
    ``side`` matrices that depend on the image (so nothing can be computed ahead). Its answers
    mean nothing, but it is sure of them ("red", near 1): without a deadline it would answer. It is for deadlines and concurrency."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    m = numpy_helper.from_array((rng.standard_normal((side, side)) / np.sqrt(side)).astype(np.float32), "m")
    out_w = numpy_helper.from_array(rng.standard_normal((side, len(LABELS))).astype(np.float32), "out_w")
    sure = numpy_helper.from_array(np.array([20.0, 0.0, 0.0, 0.0], dtype=np.float32), "sure")
    nodes = [helper.make_node("ReduceMean", ["pixels"], ["level"], keepdims=0),  # a scalar from the image
             helper.make_node("Mul", ["m", "level"], ["a0"])]
    for i in range(steps):
        nodes += [helper.make_node("MatMul", [f"a{i}", "m"], [f"p{i}"]),
                  helper.make_node("Tanh", [f"p{i}"], [f"a{i + 1}"])]
    nodes += [helper.make_node("ReduceMean", [f"a{steps}"], ["row"], axes=[0], keepdims=1),
              helper.make_node("MatMul", ["row", "out_w"], ["mixed"]),
              helper.make_node("Add", ["mixed", "sure"], ["logits"]),
              helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1)]
    graph = helper.make_graph(
        nodes, "slow", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, len(LABELS)])],
        initializer=[m, out_w, sure])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="iris-tests")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path
