"""Repeated scenes: the last answer per user (``base``), kept in this process's memory
(``memory``), in the disk cache every worker on the host shares (``disk``) and, with REDIS_URL,
in Redis for every instance (``redis``, with ``disk`` as its local twin)."""

from __future__ import annotations

from proxy.vision.dedup.base import DedupStore, Remembered, repeats
from proxy.vision.dedup.memory import MemoryDedup

__all__ = ["DedupStore", "MemoryDedup", "Remembered", "repeats"]
