"""Seeded hostile requests over every route of the app's own route table: what the fuzz test
sends. Each request is a pure function of the seed and its index, so a failure is replayed by
running the same seed. Secrets go only where a credential goes (a key parameter, a header), never
into free text, so that any trace of one in an answer is an echo."""

from __future__ import annotations

import base64
import random
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.support.fakes import jpeg, png

PLACEHOLDER = re.compile(r"\{(\w+)(?::[^}]*)?\}")
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
TEXTS = (
    "", " ", "a red apple", "%", "%zz", "%C3%28", "%00", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "../../etc/passwd",
    "\u202e\u0000", "😀" * 40, "x" * 3000, "a" * 70000, "<script>alert(1)</script>", "' OR 1=1 --",
    "${jndi:ldap://127.0.0.1/a}", "{{7*7}}", "null", "-1", "0", "1e309", "NaN", "9" * 40, "true",
    "/prompt/a?key=", "http://127.0.0.2:9/x", "file:///etc/passwd", "data:image/png;base64,AAAA",
    "\r\nX-Injected: 1", "%0d%0aX-Injected:%201", "a/b//c", "%2F%2F", "é", "\t", "@access-key",
)
PARAMS = ("key", "width", "height", "seed", "model", "enhance", "negative_prompt", "nologo", "safe",
          "private", "referrer", "transparent", "image", "format", "quality", "sig", "exp", "done", "url",
          "%6bey", "KEY", "key;x", "username", "prompt", "n", "size", "response_format")
HEADERS = ("Authorization", "X-Admin-Token", "X-API-Key", "X-Forwarded-For", "X-Forwarded-Proto",
           "X-Forwarded-Host", "Origin", "Sec-Fetch-Site", "Content-Type", "Accept", "Cookie", "Range",
           "If-None-Match", "X-Request-Id", "Host", "Referer", "Accept-Encoding")
CONTENT_TYPES = ("application/json", "text/plain", "multipart/form-data", "multipart/form-data; boundary=x",
                 "application/x-www-form-urlencoded", "image/jpeg", "application/octet-stream", "", "garbage")


@dataclass
class Credentials:
    access_key: str
    admin_token: str
    profile_key: str
    others: tuple[str, ...] = ()

    def all(self) -> tuple[str, ...]:
        return (self.access_key, self.admin_token, self.profile_key, *self.others)


@dataclass
class Hostile:
    method: str
    path: str  # already percent-encoded as it goes on the wire
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    raw: bytes | None = None
    """Set for a request sent byte for byte on a socket (what an HTTP client would refuse to send)."""


def route_templates(app: web.Application) -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves, plus a few it does not."""
    found = []
    for resource in app.router.resources():
        info = resource.get_info()
        template = info.get("formatter") or info.get("path") or info.get("prefix")
        if not isinstance(template, str):
            continue
        for route in resource:
            found.append((route.method, template))
    return [*found, ("GET", "/no/such/route"), ("POST", "/admin/no-such-form"), ("GET", "/static/../app.py")]


class HostileRequests:
    def __init__(self, app: web.Application, credentials: Credentials, seed: int):
        self.templates = route_templates(app)
        self.credentials = credentials
        self.seed = seed

    def request(self, index: int) -> Hostile:
        rng = random.Random(f"{self.seed}:{index}")
        if rng.random() < 0.03:
            return self._raw(rng)
        method, template = rng.choice(self.templates)
        if rng.random() < 0.15:
            method = rng.choice(METHODS)
        path = PLACEHOLDER.sub(lambda m: self._segment(rng, m.group(1)), template)
        query = "&".join(self._param(rng) for _ in range(rng.randrange(0, 6)))
        headers = dict(self._header(rng) for _ in range(rng.randrange(0, 6)))
        body = self._body(rng) if method in ("POST", "PUT", "PATCH", "DELETE") or rng.random() < 0.05 else None
        return Hostile(method, path + ("?" + query if query else ""), headers, body)

    def _text(self, rng: random.Random) -> str:
        return rng.choice(TEXTS) if rng.random() < 0.8 else "".join(
            chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(1, 40)))

    def _encoded(self, rng: random.Random, text: str) -> str:
        """As it goes on the wire: percent-encoded, or (sometimes) left as written."""
        if rng.random() < 0.2 and all(32 < ord(c) < 127 for c in text):
            return text
        return "".join(c if c.isalnum() or c in "-._~%/" else "".join(f"%{b:02X}" for b in c.encode()) for c in text)

    def _segment(self, rng: random.Random, name: str) -> str:
        if name == "key" and rng.random() < 0.3:
            return rng.choice([self.credentials.profile_key, "x" * 64, "0" * 64, "a" * 8])
        return self._encoded(rng, self._text(rng)) or "x"

    def _param(self, rng: random.Random) -> str:
        name = rng.choice(PARAMS)
        if name in ("key", "%6bey", "KEY", "key;x") and rng.random() < 0.5:
            value = rng.choice(self.credentials.all())
        else:
            value = self._text(rng)
        return f"{self._encoded(rng, name)}={self._encoded(rng, value)}"

    def _header(self, rng: random.Random) -> tuple[str, str]:
        name = rng.choice(HEADERS)
        secret = rng.choice(self.credentials.all())
        values = {
            "Authorization": rng.choice([f"Bearer {secret}", f"Basic {secret}", "Bearer ", "Bearer x y", secret]),
            "X-Admin-Token": rng.choice([secret, "", "wrong"]),
            "X-API-Key": rng.choice([secret, "wrong"]),
            "X-Forwarded-For": rng.choice(["1.2.3.4", "127.0.0.1, 10.0.0.1", "garbage", ",,,", "::1"]),
            "Content-Type": rng.choice(CONTENT_TYPES),
            "Origin": rng.choice(["http://evil.example", "null", "http://127.0.0.1", ""]),
            "Cookie": rng.choice(["iris_admin=garbage", "iris_admin=" + "A" * 300, "a=b"]),
            "Host": rng.choice(["evil.example", "127.0.0.1", ""]),
        }
        value = values.get(name) or self._text(rng)
        return name, "".join(c for c in value if 31 < ord(c) < 127)[:2000]

    def _body(self, rng: random.Random) -> bytes:
        kind = rng.randrange(7)
        if kind == 0:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 2000)))
        if kind == 1:
            return orjson.dumps(self._json(rng, 3))
        if kind == 2:
            image = rng.choice([jpeg(), png(), b"not an image"])
            return orjson.dumps({"image": "data:image/jpeg;base64," + base64.b64encode(image).decode(),
                                 "prompt": self._text(rng), "description": self._text(rng)})
        if kind == 3:
            return (b"--x\r\nContent-Disposition: form-data; name=\"image\"; filename=\"f.jpg\"\r\n\r\n"
                    + rng.choice([jpeg(), b"\xff\xd8junk"]) + b"\r\n--x\r\nContent-Disposition: form-data; "
                    b"name=\"username\"\r\n\r\nalice\r\n--x--\r\n")
        if kind == 4:
            return b"{" * rng.randrange(1, 5000)
        if kind == 5:
            return b"token=" + rng.choice(self.credentials.all()).encode() + b"&csrf=x&key=y&address=127.0.0.1"
        return b""

    def _json(self, rng: random.Random, depth: int) -> Any:
        choice = rng.randrange(8 if depth else 5)
        if choice == 0:
            return self._text(rng)
        if choice == 1:
            return rng.choice([0, -1, 2**63, 1e308, 3.5])
        if choice == 2:
            return rng.choice([True, False, None])
        if choice in (3, 4):
            return rng.choice(["description", "prompt", "username", "api_keys", "image", "path", "expires"])
        if choice in (5, 6):
            return {rng.choice((*PARAMS, "description", "api_keys", "path", "expires")): self._json(rng, depth - 1)
                    for _ in range(rng.randrange(0, 5))}
        return [self._json(rng, depth - 1) for _ in range(rng.randrange(0, 4))]

    def _raw(self, rng: random.Random) -> Hostile:
        line = rng.choice([b"GET /prompt/\xff\xfe HTTP/1.1", b"HEAD /x\xe2\x80\xae HTTP/1.1", b"GET / HTTP/9.9",
                           b"GARBAGE", b"GET /" + b"a" * 20000 + b" HTTP/1.1", b"POST /process HTTP/1.1"])
        headers = rng.choice([b"Host: x\r\n", b"Host: x\r\nContent-Length: -1\r\n",
                              b"Host: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                              b"Host: x\r\n" + b"X: " + b"y" * 20000 + b"\r\n", b"Bad Header\r\n"])
        return Hostile("RAW", "", raw=line + b"\r\n" + headers + b"\r\n")
