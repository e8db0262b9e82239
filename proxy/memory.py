"""Giving freed memory back to the system.

A large image decode allocates tens of megabytes in blocks that glibc's malloc keeps for reuse once
they are freed (its threshold for returning large blocks rises with the largest one freed), so a
worker that decoded one large image once stayed hundreds of MB larger for good. ``give_back`` asks
glibc to return what is free (``malloc_trim``); where there is no glibc it does nothing."""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc; absent from musl
    except OSError:
        return None


_TRIM = _malloc_trim()


def give_back() -> None:
    """Return free heap memory to the system (a few ms at most; call it after large, rare work)."""
    if _TRIM is not None:
        _TRIM(0)
