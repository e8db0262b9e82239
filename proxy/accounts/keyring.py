"""The server secret and what is derived from it: the auth-key HMAC and the provider-key cipher.

Auth keys are stored only as HMAC-SHA256(key) under a derived key, so a database lookup by the
digest finds a profile without scanning and without the key ever being stored. Provider keys are
encrypted with Fernet. The master secret is ``PROXY_SECRET_KEY`` or a file generated once under
DATA_DIR (mode 0600); losing it makes stored provider keys unreadable and auth keys unusable."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from proxy.errors import ConfigError
from proxy.security.credentials import load_or_create


def master_secret(configured: str | None, data_dir: Path, *, create: bool = True) -> str:
    """``PROXY_SECRET_KEY``, else the file under DATA_DIR (generated first when ``create``)."""
    if configured:
        return configured
    path = data_dir / "secrets" / "master-key"
    if not create and not path.exists():
        raise ConfigError("PROXY_SECRET_KEY", f"{path} does not exist, and the profiles' keys need it",
                          "set the PROXY_SECRET_KEY the server uses, or restore that file")
    value, _created = load_or_create(path)
    return value


def _derive(master: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"iris-proxy", info=purpose).derive(
        master.encode("utf-8"))


def new_key() -> str:
    """A strong auth key: 256 random bits, URL-safe (it travels in the /auth-{key} path)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Keyring:
    hmac_key: bytes = field(repr=False)
    fernet: Fernet = field(repr=False)

    @classmethod
    def from_master(cls, master: str) -> Keyring:
        fernet_key = base64.urlsafe_b64encode(_derive(master, b"provider-keys fernet"))
        return cls(_derive(master, b"auth-keys hmac-sha256"), Fernet(fernet_key))

    def digest(self, key: str) -> bytes:
        return hmac.new(self.hmac_key, key.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()

    def matches(self, key: str, stored: bytes) -> bool:
        return hmac.compare_digest(self.digest(key), stored)

    def fingerprint(self) -> bytes:
        """Identifies the master secret without revealing it (stored to catch a changed secret)."""
        return self.digest("\x00iris keyring fingerprint")

    def encrypt(self, value: str) -> bytes:
        return self.fernet.encrypt(value.encode("utf-8"))

    def decrypt(self, token: bytes) -> str | None:
        """The plaintext, or None when the token was made under another master secret."""
        try:
            return self.fernet.decrypt(token).decode("utf-8")
        except InvalidToken:
            return None
