"""The dashboard session: an encrypted, expiring cookie (Fernet) carrying its CSRF token.

Its key is derived from the admin token with HKDF, so every worker reads the cookie without shared
state, and changing the admin token ends every session."""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass

import orjson
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

COOKIE = "iris_admin"
COOKIE_PATH = "/"


@dataclass(frozen=True)
class AdminSession:
    csrf: str

    def csrf_ok(self, given: object) -> bool:
        return isinstance(given, str) and hmac.compare_digest(given.encode(), self.csrf.encode())


class AdminSessions:
    def __init__(self, admin_token: str, ttl: int):
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"iris admin session cookie v1").derive(admin_token.encode())
        self.fernet = Fernet(base64.urlsafe_b64encode(key))
        self.ttl = ttl

    def issue(self) -> tuple[str, AdminSession]:
        session = AdminSession(csrf=secrets.token_urlsafe(24))
        return self.fernet.encrypt(orjson.dumps({"csrf": session.csrf})).decode(), session

    def read(self, cookie: str | None, now: float | None = None) -> AdminSession | None:
        """The session in a cookie, or None when absent, forged or older than the TTL."""
        if not cookie:
            return None
        try:
            token = cookie.encode()
            plain = (self.fernet.decrypt(token, ttl=self.ttl) if now is None
                     else self.fernet.decrypt_at_time(token, self.ttl, int(now)))
            payload = orjson.loads(plain)
        except (InvalidToken, orjson.JSONDecodeError, UnicodeEncodeError):
            return None
        csrf = payload.get("csrf") if isinstance(payload, dict) else None
        return AdminSession(csrf) if isinstance(csrf, str) else None
