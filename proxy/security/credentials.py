"""The server's credentials: the access key, the admin token and the image URL signing keys
(configured, or generated once under DATA_DIR with mode 0600 for a zero-configuration start), how
they are read from a request, and how they are compared: always in constant time."""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from proxy.config.server import ServerSettings
from proxy.errors import ConfigError
from proxy.web.view import RequestView

SIGNING_KEY_FILE = "signing-key"


@dataclass(frozen=True)
class Secrets:
    access_key: str = field(repr=False)
    admin_token: str = field(repr=False)
    generated: tuple[Path, ...] = ()
    signing_keys: tuple[str, ...] = field(default=(), repr=False)
    """The image URL signing keys: the first signs, all verify (empty: nothing verifies)."""
    files: tuple[Path, ...] = ()
    """The files the secrets were read from (generated now, or at an earlier start)."""

    def describe(self) -> list[str]:
        """Where each secret comes from, for the start-up lines (never a secret itself)."""
        lines = []
        for path in self.files:
            how = "generated now" if path in self.generated else "kept from an earlier start"
            lines.append(f"{path.name.replace('-', ' ')} in {path} ({how}); read it with: cat {path}")
        return lines


def resolve_secrets(server: ServerSettings) -> Secrets:
    """The configured key, token and signing keys, or ones generated (once) under DATA_DIR."""
    generated: list[Path] = []
    files: list[Path] = []
    values = []
    for configured, name in ((server.access_key, "access-key"), (server.admin_token, "admin-token")):
        if configured:
            values.append(configured)
            continue
        values.append(_from_file(server, name, generated, files))
    signing = server.signing_keys or (_from_file(server, SIGNING_KEY_FILE, generated, files),)
    return Secrets(values[0], values[1], generated=tuple(generated), files=tuple(files), signing_keys=signing)


def signing_keys(server: ServerSettings, generated: list[Path] | None = None) -> tuple[str, ...]:
    """IMAGE_SIGNING_KEYS, or the key generated under DATA_DIR (created now if it is missing, and
    its path added to ``generated``): what the server verifies with, for the command line."""
    found = [] if generated is None else generated
    return server.signing_keys or (_from_file(server, SIGNING_KEY_FILE, found, []),)


def _from_file(server: ServerSettings, name: str, generated: list[Path], files: list[Path]) -> str:
    path = server.data_dir / "secrets" / name
    value, created = load_or_create(path)
    files.append(path)
    if created:
        generated.append(path)
    return value


def same(given: str | None, expected: str) -> bool:
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def bearer_of(request: RequestView) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


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
