"""What the image cache keeps under a key, and its one-buffer encoding.

An entry is an image (bytes and content type), a hosted image (a URL, KV style), or a recent
failure (kept only briefly). The prompts actually used and the backend travel with it."""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

MAGIC = b"IRIS1"
_LEN = struct.Struct(">I")

IMAGE = "image"
HOSTED = "hosted"
FAILURE = "failure"


@dataclass(frozen=True)
class CacheEntry:
    kind: str
    body: bytes = b""
    content_type: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str | None:
        return self.meta.get("url")

    def encode(self) -> bytes:
        header = orjson.dumps({"kind": self.kind, "content_type": self.content_type, "meta": self.meta})
        return b"".join((MAGIC, _LEN.pack(len(header)), header, self.body))

    @classmethod
    def decode(cls, raw: bytes) -> CacheEntry | None:
        """None for anything that is not a whole entry."""
        if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + _LEN.size:
            return None
        (size,) = _LEN.unpack_from(raw, len(MAGIC))
        start = len(MAGIC) + _LEN.size
        try:
            header = orjson.loads(raw[start:start + size])
        except orjson.JSONDecodeError:
            return None
        return cls(kind=header["kind"], body=raw[start + size:], content_type=header["content_type"],
                   meta=header["meta"])


def image_entry(body: bytes, content_type: str, **meta: Any) -> CacheEntry:
    return CacheEntry(IMAGE, body, content_type, {"created": time.time(), **meta})


def failure_entry(status: int, code: str, message: str, *, transient: bool = False) -> CacheEntry:
    """``transient``: the failure says nothing about the request (a backend cooling down, say), so
    it is answered but never kept."""
    meta = {"status": status, "code": code, "message": message, "created": time.time()}
    return CacheEntry(FAILURE, meta={**meta, "transient": True} if transient else meta)
