"""An image request, parsed strictly from the URL (or the admin delete body, or the OpenAI API's
body), and its cache key."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from yarl import URL

from proxy.config.image import ImageSettings
from proxy.errors import BadRequest

KEY_VERSION = 1
SEED_MAX = 2**32 - 1
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Passed to Pollinations on fallback; they change nothing else.
PASSTHROUGH = ("nologo", "safe", "private", "nofeed", "referrer", "transparent")
# How carefully the backend renders (OpenAI's and Pollinations' ``quality``): passed to backends,
# part of the cache key. A number in ``quality`` is something else: the encoding quality of a
# converted format (``proxy.imagegen.formats``), which selects a variant of the same entry.
QUALITIES = ("auto", "low", "medium", "high", "standard", "hd")
STYLES = ("vivid", "natural")
MAX_INPUT_IMAGES = 8
MAX_INPUT_URL = 2048
_IMAGE_SEPARATOR = re.compile(r"[,|]")


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    width: int
    height: int
    model: str | None
    seed: int
    enhance: bool | None = None
    negative_prompt: str | None = None
    images: tuple[str, ...] = ()
    """URLs of input images (``image=``): image-to-image through backends that edit."""
    quality: str | None = None
    """How carefully the backend renders (one of ``QUALITIES``)."""
    style: str | None = None
    passthrough: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    user: str | None = field(default=None, compare=False, hash=False)
    """The OpenAI API's end-user id, passed to backends; it does not change the image."""

    def key(self) -> str:
        """SHA-256 over an unambiguous encoding (a JSON array): no field can bleed into another.
        The fields added later (input images, quality, style) are appended as one object, and only
        when one is set, so the key of every request without them is what it always was."""
        fields: list[object] = [KEY_VERSION, self.prompt, self.width, self.height, self.model, self.seed,
                                self.enhance, self.negative_prompt]
        later = {name: value for name, value in (("image", list(self.images)), ("quality", self.quality),
                                                  ("style", self.style)) if value}
        if later:
            fields.append(later)
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
        raise BadRequest("the prompt is empty", code="bad_prompt", param="prompt")
    if len(prompt) > cfg.max_prompt_length:
        raise BadRequest(f"the prompt is longer than {cfg.max_prompt_length} characters",
                         code="prompt_too_long", param="prompt")
    return ImageRequest(
        prompt=prompt,
        width=_int(query, "width", cfg.default_width, cfg.min_side, cfg.max_side),
        height=_int(query, "height", cfg.default_height, cfg.min_side, cfg.max_side),
        model=_text(query, "model", 100),
        seed=_int(query, "seed", cfg.default_seed, -1, SEED_MAX),
        enhance=_flag(query, "enhance"),
        negative_prompt=_text(query, "negative_prompt", cfg.max_prompt_length),
        images=input_images(query.get("image")),
        quality=_choice(query, "quality", QUALITIES, numbers_elsewhere=True),
        style=_choice(query, "style", STYLES),
        passthrough={k: str(query[k]) for k in PASSTHROUGH if query.get(k) not in (None, "")},
    )


def input_images(value: Any) -> tuple[str, ...]:
    """``image=``: one URL, or several separated by ``,`` or ``|`` (Pollinations' spelling), or a
    list of them (a JSON body); each an absolute http(s) URL."""
    if value is None or value == "":
        return ()
    if isinstance(value, list | tuple):
        if any(_IMAGE_SEPARATOR.search(str(item)) for item in value):
            raise BadRequest("an input image URL may not hold , or | (they separate URLs): percent-encode "
                             "them", code="bad_parameter", param="image")
        items = [str(item) for item in value]
    else:
        items = _IMAGE_SEPARATOR.split(str(value))
    urls = tuple(item.strip() for item in items if item.strip())
    if len(urls) > MAX_INPUT_IMAGES:
        raise BadRequest(f"image names {len(urls)} input images; at most {MAX_INPUT_IMAGES} are taken",
                         code="bad_parameter", param="image")
    for url in urls:
        if len(url) > MAX_INPUT_URL or not _is_http_url(url):
            raise BadRequest("image must be the http(s) URL of an input image (several separated by commas)",
                             code="bad_parameter", param="image")
    return urls


def _is_http_url(text: str) -> bool:
    try:
        url = URL(text)
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.raw_host) and url.is_absolute()


def values(query: Mapping[str, Any], name: str) -> list[Any]:
    """Every value of ``name`` (a URL may repeat a parameter; a JSON body has one)."""
    getall = getattr(query, "getall", None)
    if getall is not None:
        return list(getall(name, []))
    value = query.get(name)
    return [] if value is None else [value]


def _choice(query: Mapping[str, Any], name: str, allowed: tuple[str, ...], *,
            numbers_elsewhere: bool = False) -> str | None:
    """One of ``allowed`` (case aside), or None; numbers are left to another reader when
    ``numbers_elsewhere`` (``quality=80`` is the encoding quality of a converted format, and a URL
    may carry both: ``quality=hd&quality=80``)."""
    given = [str(v).strip().lower() for v in values(query, name) if v not in (None, "")]
    if numbers_elsewhere:
        given = [text for text in given if not text.isdigit()]
    if not given:
        return None
    if given[0] not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}", code="bad_parameter", param=name)
    return given[0]


def _int(query: Mapping[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    value = query.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise BadRequest(f"{name} must be a whole number", code="bad_parameter", param=name)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a whole number, not {str(value)[:20]!r}",
                         code="bad_parameter", param=name) from None
    if not lo <= number <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}", code="bad_parameter", param=name)
    return number


def _text(query: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    value = str(value).strip()
    if len(value) > limit:
        raise BadRequest(f"{name} is longer than {limit} characters", code="bad_parameter", param=name)
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
    raise BadRequest(f"{name} must be true or false", code="bad_parameter", param=name)
