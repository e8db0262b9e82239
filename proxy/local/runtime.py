"""ONNX Runtime sessions, and where inference runs.

Each model gets a ``LocalRunner``: a pool of ``LOCAL_MODEL_CONCURRENCY`` threads (ONNX Runtime
releases the GIL while it computes, so the event loop keeps serving), each inference with
``LOCAL_MODEL_THREADS`` threads of its own, and a deadline per image that includes the wait for a
free thread. A caller past its deadline stops waiting; an inference not yet started is dropped, one
already running finishes on its thread (ONNX Runtime cannot be interrupted) and keeps its slot, so
the bound holds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from proxy.config.local import EXTRA
from proxy.errors import ConfigError

T = TypeVar("T")
log = logging.getLogger(__name__)
CPU = ["CPUExecutionProvider"]
QUIET = 3  # ONNX Runtime's log severity: errors only


def onnxruntime(variable: str) -> ModuleType:
    """The ``onnxruntime`` module, or a ``ConfigError`` naming the extra that brings it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(variable, f"ONNX Runtime cannot be imported ({exc})",
                          f"install Iris with its local models: {EXTRA}") from None
    return onnxruntime


def session_options(threads: int, variable: str) -> Any:
    ort = onnxruntime(variable)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = QUIET
    return options


def open_session(path: Path, threads: int, variable: str, what: str) -> Any:
    """An ``InferenceSession`` on the CPU; a file ONNX Runtime cannot load is a ``ConfigError``."""
    ort = onnxruntime(variable)
    try:
        return ort.InferenceSession(str(path), session_options(threads, variable), providers=CPU)
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime's own types (not RuntimeError): re-raised
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ConfigError(variable, f"{what}: {path} is not a model ONNX Runtime can load ({reason})",
                          "point it at a complete .onnx file (see README: Local models)") from None


class LocalRunner:
    """Runs inference off the event loop, at most ``concurrency`` at once, each within ``deadline``."""

    def __init__(self, name: str, *, concurrency: int, deadline: float):
        self.name = name
        self.deadline = deadline
        self.executor = ThreadPoolExecutor(concurrency, thread_name_prefix=f"iris-{name}")

    async def run(self, fn: Callable[..., T], *args: Any, limit: float | None = None) -> T:
        """``fn(*args)`` on the pool; ``TimeoutError`` past the deadline (or ``limit``, if shorter)."""
        budget = self.deadline if limit is None else min(limit, self.deadline)
        future = asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        async with asyncio.timeout(budget):
            return await future

    def close(self) -> None:
        """Drops what has not started; a running inference ends on its own thread."""
        self.executor.shutdown(wait=False, cancel_futures=True)
