"""An image request, parsed strictly from the URL (or the admin delete body), and its cache key."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from proxy.config.image import ImageSettings
from proxy.errors import BadRequest

KEY_VERSION = 1
SEED_MAX = 2**32 - 1
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Passed to Pollinations on fallback; they change nothing else.
PASSTHROUGH = ("nologo", "safe", "private", "nofeed", "referrer", "transparent")


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    width: int
    height: int
    model: str | None
    seed: int
    enhance: bool | None = None
    negative_prompt: str | None = None
    passthrough: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def key(self) -> str:
        """SHA-256 over an unambiguous encoding (a JSON array): no field can bleed into another."""
        fields = [KEY_VERSION, self.prompt, self.width, self.height, self.model, self.seed,
                  self.enhance, self.negative_prompt]
        return hashlib.sha256(orjson.dumps(fields)).hexdigest()


def decode_path(raw: str) -> str:
    """Strict percent-decoding of the raw path tail: bad escapes or bad UTF-8 are a 400."""
    if _BAD_ESCAPE.search(raw):
        raise BadRequest("the prompt has a malformed percent-encoding", code="bad_encoding")
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the prompt is not valid UTF-8 once decoded", code="bad_encoding") from None


def parse_request(prompt: str, query: Mapping[str, Any], cfg: ImageSettings) -> ImageRequest:
    prompt = prompt.strip()
    if not prompt:
        raise BadRequest("the prompt is empty", code="bad_prompt")
    if len(prompt) > cfg.max_prompt_length:
        raise BadRequest(f"the prompt is longer than {cfg.max_prompt_length} characters",
                         code="prompt_too_long")
    return ImageRequest(
        prompt=prompt,
        width=_int(query, "width", cfg.default_width, cfg.min_side, cfg.max_side),
        height=_int(query, "height", cfg.default_height, cfg.min_side, cfg.max_side),
        model=_text(query, "model", 100),
        seed=_int(query, "seed", cfg.default_seed, -1, SEED_MAX),
        enhance=_flag(query, "enhance"),
        negative_prompt=_text(query, "negative_prompt", cfg.max_prompt_length),
        passthrough={k: str(query[k]) for k in PASSTHROUGH if query.get(k) not in (None, "")},
    )


def _int(query: Mapping[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    value = query.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise BadRequest(f"{name} must be a whole number", code="bad_parameter")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a whole number, not {str(value)[:20]!r}",
                         code="bad_parameter") from None
    if not lo <= number <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}", code="bad_parameter")
    return number


def _text(query: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    value = str(value).strip()
    if len(value) > limit:
        raise BadRequest(f"{name} is longer than {limit} characters", code="bad_parameter")
    return value or None


def _flag(query: Mapping[str, Any], name: str) -> bool | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    lowered = str(value).lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise BadRequest(f"{name} must be true or false", code="bad_parameter")
