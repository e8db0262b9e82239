"""Secrets Iris generates for a zero-configuration start, kept under DATA_DIR with mode 0600."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create(path: Path, *, nbytes: int = 32) -> tuple[str, bool]:
    """The secret stored at ``path``, created first if missing. Returns (secret, created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip(), False
    value = secrets.token_urlsafe(nbytes)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value, True
