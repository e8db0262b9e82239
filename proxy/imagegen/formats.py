"""Which representation of a cached image a request gets, and the conversion that makes it.

An image is cached in the format its backend made. A request may ask for another with
``format=png|jpeg|webp|avif`` (``quality=`` 1-100 for the lossy ones); without ``format=``, the
``Accept`` header chooses among NEGOTIATE_FORMATS (AVIF, then WebP by default: the first the
client names, in the server's order), else the original is served, and the answer carries
``Vary: Accept``. A format the original already has is the original (a lossy image is never
re-encoded into its own format). Everything here is decided from the URL and the headers without
I/O, so the fast lane can answer a variant hit as cheaply as any other hit; the conversion itself
(``convert``) is CPU work for a thread, run once per variant (``proxy.imagegen.variants``)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from proxy.config.formats import NEGOTIABLE, QUALITY_RANGE, FormatSettings
from proxy.errors import BadRequest
from proxy.imagegen.params import values

MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "avif": "image/avif"}
ALIASES = {"jpg": "jpeg"}
LOSSY = frozenset({"jpeg", "webp", "avif"})
PILLOW_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}
REMEMBERED_ACCEPTS = 256  # distinct Accept headers whose choice is remembered (browsers send a few)


@dataclass(frozen=True, slots=True)
class Variant:
    """A representation other than the original: a format and, when lossy, its quality."""

    format: str
    quality: int | None = None
    suffix: str = field(init=False, compare=False)
    """Names the variant in its cache key and ETag: ``avif-q60``, ``png``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "suffix", self.format if self.quality is None else
                           f"{self.format}-q{self.quality}")

    @property
    def content_type(self) -> str:
        return MIME[self.format]


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a request target asks of the representation: ``format=`` (None: negotiated from
    ``Accept`` when NEGOTIATE_FORMATS allows) and ``quality=`` (None: the format's default)."""

    format: str | None = None
    quality: int | None = None


ORIGINAL = Wanted()


class Formats:
    """The settings, and the choice made for each ``Accept`` header seen (bounded)."""

    def __init__(self, settings: FormatSettings):
        self.settings = settings
        self.choices: dict[str, str | None] = {}
        self.made: dict[tuple[str, int | None], Variant] = {}  # at most 4 formats x 100 qualities

    def negotiates(self, wanted: Wanted) -> bool:
        """The answer depends on ``Accept`` (and says so with ``Vary: Accept``)."""
        return wanted.format is None and bool(self.settings.negotiate)

    def chosen_format(self, wanted: Wanted, accept: str | None) -> str | None:
        """The format to answer in, or None for the original's."""
        if wanted.format is not None:
            return wanted.format
        if not self.settings.negotiate or not accept:
            return None
        try:
            return self.choices[accept]
        except KeyError:
            pass
        chosen = choose(self.settings.negotiate, accept)
        if len(self.choices) >= REMEMBERED_ACCEPTS:
            del self.choices[next(iter(self.choices))]
        self.choices[accept] = chosen
        return chosen

    def variant(self, wanted: Wanted, accept: str | None, original_type: str) -> Variant | None:
        """The variant to answer with, or None for the original itself."""
        fmt = self.chosen_format(wanted, accept)
        if fmt is None or MIME[fmt] == original_type:
            return None
        quality = None if fmt not in LOSSY else (
            wanted.quality if wanted.quality is not None else self.settings.quality[fmt])
        found = self.made.get((fmt, quality))
        if found is None:
            found = self.made[(fmt, quality)] = Variant(fmt, quality)
        return found


def parse_wanted(query: Mapping[str, Any], *, param: str = "format") -> Wanted:
    """``format=`` and a numeric ``quality=`` from a query (or body); ``BadRequest`` for others.
    (A word in ``quality`` is the backend's rendering quality, read by ``params``.)"""
    name = query.get(param)
    fmt = None
    if name not in (None, ""):
        fmt = ALIASES.get(str(name).lower(), str(name).lower())
        if fmt not in MIME:
            raise BadRequest(f"{param} must be one of {', '.join(NEGOTIABLE)}", code="bad_parameter",
                             param=param)
    number = None
    for quality in values(query, "quality"):  # the first number (a word is the rendering quality)
        if isinstance(quality, int) and not isinstance(quality, bool):
            number = quality
        elif isinstance(quality, str) and quality.strip().lstrip("-").isdigit():
            number = int(quality)
        if number is not None:
            break
    if number is not None and not QUALITY_RANGE[0] <= number <= QUALITY_RANGE[1]:
        raise BadRequest(f"quality must be between {QUALITY_RANGE[0]} and {QUALITY_RANGE[1]} (or a "
                         "rendering quality such as hd)", code="bad_parameter", param="quality")
    return ORIGINAL if fmt is None and number is None else Wanted(fmt, number)


def choose(preference: tuple[str, ...], accept: str) -> str | None:
    """The first format of ``preference`` the ``Accept`` header names explicitly with q > 0
    (``image/*`` and ``*/*`` name none: they take the original)."""
    named: dict[str, float] = {}
    for part in accept.split(","):
        fields = part.strip().split(";")
        mime = fields[0].strip().lower()
        weight = 1.0
        for param in fields[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        named[mime] = max(weight, named.get(mime, 0.0))
    for fmt in preference:
        if named.get(MIME[fmt], 0.0) > 0:
            return fmt
    return None


def convert(body: bytes, variant: Variant, avif_speed: int) -> bytes:
    """The image re-encoded (blocking: run it on a thread). The first frame, same size, colour
    profile kept, metadata dropped; JPEG has no alpha, so transparency is laid on white."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(body)) as source:
            source.load()
            icc = source.info.get("icc_profile")
            image = _fit(source, variant.format)
    options: dict[str, Any] = {}
    if variant.format == "jpeg":
        options = {"quality": variant.quality, "optimize": True, "progressive": True}
    elif variant.format == "webp":
        options = {"quality": variant.quality, "method": 4}
    elif variant.format == "avif":
        options = {"quality": variant.quality, "speed": avif_speed}
    if icc:
        options["icc_profile"] = icc
    out = io.BytesIO()
    image.save(out, PILLOW_NAMES[variant.format], **options)
    return out.getvalue()


def _fit(image: Image.Image, fmt: str) -> Image.Image:
    """The image in a mode the format stores."""
    alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if fmt == "jpeg":
        if alpha:
            rgba = image.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            return flat
        return image if image.mode in ("RGB", "L") else image.convert("RGB")
    if fmt == "png":
        return image if image.mode in ("RGB", "RGBA", "L", "LA", "P", "I", "I;16") else image.convert(
            "RGBA" if alpha else "RGB")
    return image.convert("RGBA" if alpha else "RGB") if image.mode not in ("RGB", "RGBA") else image
