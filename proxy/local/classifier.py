"""An image classifier in an ONNX file, and how an image becomes its input.

The model says what it can about its input: a fixed height and width in its input's shape, where the
colour channels are (``NCHW`` or ``NHWC``: the dimension of size 3), and, in its metadata
(``metadata_props``, read through ONNX Runtime), any of ``image_size`` (``[height, width]``),
``layout``, ``mean``, ``std`` (per channel, after scaling), ``scale`` (what a 0-255 pixel is
multiplied by first, 1/255 unless said), ``color_order`` (``RGB`` or ``BGR``) and ``output``
(``probabilities`` or ``logits``; unsaid, scores that already sum to 1 are taken as they are, others
go through a softmax). Where the model says nothing, the provider's settings apply, and where they
say nothing either, ImageNet's: 224 x 224, mean 0.485, 0.456, 0.406, std 0.229, 0.224, 0.225.

An image is turned upright and cropped in the middle to the input's proportions, keeping 87.5 %
of it (as ImageNet models are evaluated: the shorter side scaled to 256, the middle 224 kept), then
scaled to the input's size. JPEG frames are decoded at a reduced scale when they are much larger."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from proxy.config.vision import LAYOUTS, LocalModel
from proxy.errors import ConfigError
from proxy.local.runtime import open_session

log = logging.getLogger(__name__)
IMAGENET_SIZE = (224, 224)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP = 0.875
TOP = 5
VARIABLE = "VISION_PROVIDERS"
FloatArray = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True)
class Preprocessing:
    height: int
    width: int
    layout: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: float = 1 / 255
    bgr: bool = False
    output: str | None = None  # "probabilities" | "logits" | None: told by the scores themselves
    said_by: str = ""  # for the start-up log: where each part came from

    def tensor(self, image: Image.Image) -> FloatArray:
        """The image as a batch of one, in the model's layout."""
        image = ImageOps.exif_transpose(image).convert("RGB")
        pixels = np.asarray(image.resize((self.width, self.height), Image.Resampling.BILINEAR,
                                         box=_middle(image.size, self.width / self.height)), np.float32)
        if self.bgr:
            pixels = pixels[..., ::-1]
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        x = (pixels * np.float32(self.scale) - mean) / std
        if self.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[np.newaxis], dtype=np.float32)


class ImageClassifier:
    """A loaded model, its labels and preprocessing. ``classify`` blocks: call it on a thread."""

    def __init__(self, name: str, session: Any, labels: tuple[str, ...], prep: Preprocessing):
        self.name = name
        self.session = session
        self.labels = labels
        self.prep = prep
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name

    @classmethod
    def load(cls, name: str, model: LocalModel, threads: int) -> ImageClassifier:
        """Loads the model, works out its preprocessing and checks it gives one score per label
        (one inference on a grey image, which also warms it up); ``ConfigError`` otherwise."""
        what = f"the local model {name!r}"
        session = open_session(model.path, threads, VARIABLE, what)
        prep = preprocessing_of(session, model, what)
        classifier = cls(name, session, model.labels, prep)
        grey = Image.new("RGB", (prep.width, prep.height), (128, 128, 128))
        try:
            scores = classifier.scores(grey)
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime's own types (not RuntimeError): re-raised
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise ConfigError(VARIABLE, f"{what} fails on a {prep.width}x{prep.height} {prep.layout} image "
                              f"({reason})", "give the provider the model's input_size and layout") from None
        if scores.size != len(model.labels):
            raise ConfigError(VARIABLE, f"{what} gives {scores.size} scores, but its labels_path has "
                              f"{len(model.labels)} labels", "use the labels file made for this model "
                              "(one label a line, in the model's output order)")
        log.info("local model %s (%s): %d labels, input %dx%d %s; %s", name, model.path.name,
                 len(model.labels), prep.width, prep.height, prep.layout, prep.said_by)
        return classifier

    def classify(self, data: bytes, top: int = TOP) -> list[tuple[str, float]]:
        """The ``top`` most likely labels of an encoded image with their probabilities, most likely
        first."""
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (int(self.prep.width / CROP) + 1, int(self.prep.height / CROP) + 1))
            probabilities = self.probabilities(image)
        order = np.argsort(-probabilities, kind="stable")[:top]
        return [(self.labels[i], float(probabilities[i])) for i in order]

    def probabilities(self, image: Image.Image) -> np.ndarray[Any, np.dtype[np.float64]]:
        scores = self.scores(image)
        if scores.size != len(self.labels):
            raise ValueError(f"the model gave {scores.size} scores for {len(self.labels)} labels")
        if self.prep.output == "probabilities" or (self.prep.output is None and _sums_to_one(scores)):
            return scores
        shifted = np.exp(scores - scores.max())
        return shifted / shifted.sum()

    def scores(self, image: Image.Image) -> np.ndarray[Any, np.dtype[np.float64]]:
        (out,) = self.session.run([self.output_name], {self.input_name: self.prep.tensor(image)})
        return np.asarray(out, dtype=np.float64).reshape(-1)


def preprocessing_of(session: Any, model: LocalModel, what: str) -> Preprocessing:
    """What the model says (its input's shape, then its metadata), else the settings, else ImageNet."""
    said: list[str] = []

    def pick(part: str, from_model: Any, from_settings: Any, default: Any) -> Any:
        for source, value in (("the model", from_model), ("the settings", from_settings),
                              ("ImageNet's", default)):
            if value is not None:
                said.append(f"{part} from {source}")
                return value
        return None

    meta = _metadata(session, what)
    entry = session.get_inputs()[0]
    shape = list(entry.shape)
    if entry.type != "tensor(float)" or len(shape) != 4:
        raise ConfigError(VARIABLE, f"{what} takes {entry.type} of shape {shape}",
                          "use a model whose input is one float32 image batch (4 dimensions)")
    layout = pick("layout", meta.get("layout") or _layout_of(shape), model.layout, None)
    if layout not in LAYOUTS:
        raise ConfigError(VARIABLE, f"{what} does not say where its colour channels are (input {shape})",
                          'give the provider "layout": "NCHW" or "NHWC"')
    sides = shape[2:4] if layout == "NCHW" else shape[1:3]
    fixed = tuple(sides) if all(isinstance(s, int) and s > 0 for s in sides) else None
    height, width = pick("size", fixed or meta.get("image_size"), model.input_size, IMAGENET_SIZE)
    return Preprocessing(
        height=int(height), width=int(width), layout=layout,
        mean=tuple(pick("mean", meta.get("mean"), model.mean, IMAGENET_MEAN)),
        std=tuple(pick("std", meta.get("std"), model.std, IMAGENET_STD)),
        scale=float(meta.get("scale", 1 / 255)),
        bgr=str(meta.get("color_order", "RGB")).upper() == "BGR",
        output=meta.get("output"),
        said_by=", ".join(said),
    )


def _metadata(session: Any, what: str) -> dict[str, Any]:
    """The model's ``metadata_props`` that concern its input and output, checked."""
    raw = dict(session.get_modelmeta().custom_metadata_map)
    out: dict[str, Any] = {}
    for key, check in _METADATA.items():
        if key not in raw:
            continue
        try:
            value = json.loads(raw[key])
        except ValueError:
            value = raw[key].strip()
        checked = check(value)
        if checked is None:
            raise ConfigError(VARIABLE, f"{what} has metadata {key}={raw[key][:60]!r}, which Iris cannot use",
                              "fix the model's metadata (README: Local models) or remove that entry")
        out[key] = checked
    return out


def _side_pair(value: Any) -> tuple[int, int] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
        return value[0], value[1]
    return None


def _channels(value: Any) -> tuple[float, ...] | None:
    if isinstance(value, list) and len(value) == 3 and all(isinstance(v, int | float) for v in value):
        return tuple(float(v) for v in value)
    return None


def _word(*allowed: str) -> Any:
    def check(value: Any) -> str | None:
        text = str(value).strip()
        for word in allowed:
            if text.lower() == word.lower():
                return word
        return None

    return check


_METADATA = {
    "image_size": _side_pair,
    "layout": _word(*LAYOUTS),
    "mean": _channels,
    "std": lambda v: c if (c := _channels(v)) is not None and all(x > 0 for x in c) else None,
    "scale": lambda v: float(v) if isinstance(v, int | float) and not isinstance(v, bool) and v > 0 else None,
    "color_order": _word("RGB", "BGR"),
    "output": _word("probabilities", "logits"),
}


def _layout_of(shape: list[Any]) -> str | None:
    if shape[1] == 3 and shape[3] != 3:
        return "NCHW"
    if shape[3] == 3 and shape[1] != 3:
        return "NHWC"
    return None


def _middle(size: tuple[int, int], aspect: float) -> tuple[float, float, float, float]:
    """The middle ``CROP`` of the largest box of the given proportions (width over height)."""
    width, height = size
    wider = width / height > aspect
    box_w, box_h = (height * aspect, float(height)) if wider else (float(width), width / aspect)
    box_w, box_h = box_w * CROP, box_h * CROP
    left, top = (width - box_w) / 2, (height - box_h) / 2
    return left, top, left + box_w, top + box_h


def _sums_to_one(scores: np.ndarray[Any, np.dtype[np.float64]]) -> bool:
    return bool(scores.min() >= 0.0 and scores.max() <= 1.0 and abs(float(scores.sum()) - 1.0) < 1e-3)
