"""Repeated scenes: the last answer per user (``base``), kept in this process's memory
(``memory``) or, with REDIS_URL, shared by every instance (``redis``)."""

from __future__ import annotations

from proxy.vision.dedup.base import DedupStore, Remembered, repeats
from proxy.vision.dedup.memory import MemoryDedup

__all__ = ["DedupStore", "MemoryDedup", "Remembered", "repeats"]
