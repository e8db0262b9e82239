"""What the image cache keeps under a key, and its one-buffer encoding.

An entry is an image (bytes and content type), a hosted image (a URL, KV style), or a recent
failure (kept only briefly). The prompts actually used and the backend travel with it.

The encoding puts everything but the body first (``MAGIC``, the header's length, the header), so
an entry can be read from its header alone (``decode_head``): a large image left in the store's
file has its body there (``body_file``), to be sent from it, not read."""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from proxy.cache.bodyfile import StoredBody

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
    # the body left in the store's file (then ``body`` is empty): only the image route's hits see
    # such an entry, and ``ImageCache.whole`` reads the body where something needs the bytes
    body_file: StoredBody | None = field(default=None, compare=False, repr=False)

    @property
    def url(self) -> str | None:
        return self.meta.get("url")

    @property
    def length(self) -> int:
        """The body's length, wherever it is."""
        return len(self.body) if self.body_file is None else self.body_file.length

    def release(self) -> None:
        """Lets go of the store's file holding the body, if any (again: nothing)."""
        if self.body_file is not None:
            self.body_file.close()

    def encode(self) -> bytes:
        if self.body_file is not None:
            raise ValueError("an entry whose body was left in the store's file cannot be stored again")
        header = orjson.dumps({"kind": self.kind, "content_type": self.content_type, "meta": self.meta})
        return b"".join((MAGIC, _LEN.pack(len(header)), header, self.body))

    @classmethod
    def decode(cls, raw: bytes) -> CacheEntry | None:
        """None for anything that is not a whole entry."""
        found = cls.decode_head(raw)
        if found is None:
            return None
        entry, start = found
        return cls(entry.kind, raw[start:], entry.content_type, entry.meta)

    @classmethod
    def decode_head(cls, raw: bytes) -> tuple[CacheEntry, int] | None:
        """The entry without its body, and where the body starts, from the first bytes of an
        encoded entry; None when they are not the start of an entry, or do not hold its whole
        header (``header_end`` says how many would)."""
        end = cls.header_end(raw)
        if end is None or len(raw) < end:
            return None
        try:
            header = orjson.loads(raw[len(MAGIC) + _LEN.size:end])
            return cls(header["kind"], b"", header["content_type"], header["meta"]), end
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None

    @staticmethod
    def header_end(raw: bytes) -> int | None:
        """Where the body of the encoded entry starting with ``raw`` starts; None when ``raw``
        is not the start of an entry."""
        start = len(MAGIC) + _LEN.size
        if not raw.startswith(MAGIC) or len(raw) < start:
            return None
        return start + _LEN.unpack_from(raw, len(MAGIC))[0]


def image_entry(body: bytes, content_type: str, **meta: Any) -> CacheEntry:
    return CacheEntry(IMAGE, body, content_type, {"created": time.time(), **meta})


def failure_entry(status: int, code: str, message: str, *, transient: bool = False) -> CacheEntry:
    """``transient``: the failure says nothing about the request (a backend cooling down, say), so
    it is answered but never kept."""
    meta = {"status": status, "code": code, "message": message, "created": time.time()}
    return CacheEntry(FAILURE, meta={**meta, "transient": True} if transient else meta)
