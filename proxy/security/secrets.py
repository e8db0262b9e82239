"""Secrets Iris generates for a zero-configuration start, kept under DATA_DIR with mode 0600."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from proxy.errors import ConfigError


def load_or_create(path: Path, *, nbytes: int = 32) -> tuple[str, bool]:
    """The secret stored at ``path``, created first if missing. Returns (secret, created).

    Written whole under a temporary name and linked into place, which fails if the name exists:
    two processes starting at once (the workers, the CLI) agree on one secret, and none can read
    a file that is still being written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return _read(path), False
    value = secrets.token_urlsafe(nbytes)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    except FileExistsError:
        return _read(path), False  # another process was first: its secret it is
    finally:
        temporary.unlink(missing_ok=True)
    return value, True


def _read(path: Path) -> str:
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ConfigError("DATA_DIR", f"{path} is empty", f"delete {path} (a new secret is generated) "
                          "or write the secret it held back into it")
    return value
