"""The dashboard session: an encrypted, expiring cookie (Fernet) carrying its CSRF token and its id.

Its key is derived from the admin token with HKDF, so every worker reads the cookie without shared
state, and changing the admin token ends every session. Logging out revokes the session's id
server-side (``proxy.admin.revocations``), so a copy of the cookie is refused by every worker and
instance until it would have expired anyway."""

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
    sid: str
    """The session's id, what a logout revokes (not secret: the cookie is what proves a session)."""

    def csrf_ok(self, given: object) -> bool:
        return isinstance(given, str) and hmac.compare_digest(given.encode(), self.csrf.encode())


class AdminSessions:
    def __init__(self, admin_token: str, ttl: int):
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"iris admin session cookie v1").derive(admin_token.encode())
        self.fernet = Fernet(base64.urlsafe_b64encode(key))
        self.ttl = ttl

    def issue(self) -> tuple[str, AdminSession]:
        session = AdminSession(csrf=secrets.token_urlsafe(24), sid=secrets.token_urlsafe(16))
        payload = {"csrf": session.csrf, "sid": session.sid}
        return self.fernet.encrypt(orjson.dumps(payload)).decode(), session

    def read(self, cookie: str | None, now: float | None = None) -> AdminSession | None:
        """The session in a cookie, or None when absent, forged or older than the TTL (whether it
        was revoked is the revocation store's to say)."""
        if not cookie:
            return None
        try:
            token = cookie.encode()
            plain = (self.fernet.decrypt(token, ttl=self.ttl) if now is None
                     else self.fernet.decrypt_at_time(token, self.ttl, int(now)))
            payload = orjson.loads(plain)
        except (InvalidToken, orjson.JSONDecodeError, UnicodeEncodeError):
            return None
        if not isinstance(payload, dict):
            return None
        csrf, sid = payload.get("csrf"), payload.get("sid")
        return AdminSession(csrf, sid) if isinstance(csrf, str) and isinstance(sid, str) else None
