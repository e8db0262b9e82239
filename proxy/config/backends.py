"""One upstream endpoint as configured: where it is, how much traffic it gets, how to authenticate,
and how to name it where a URL must not be shown."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from yarl import URL

from proxy.errors import ConfigError


@dataclass(frozen=True)
class BackendSpec:
    url: str
    weight: int = 1
    token: str | None = field(default=None, repr=False)
    model_map: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    name: str = ""
    model: str | None = None
    kind: str = "openai"
    role: str = "image"
    """What Iris asks of it (image, llm, vision): health is kept per role, URL and model."""
    edits: bool = True
    """It takes image-to-image requests (OpenAI's ``/images/edits``; ``EDIT_BACKENDS``)."""

    @property
    def label(self) -> str:
        """A name safe to show: the given name, else host and path (never a token)."""
        return self.name or public_url(self.url)

    def map_model(self, model: str | None) -> str | None:
        """The model to send for a request naming ``model`` (``None``: the default model), through
        ``MODEL_MAP``."""
        chosen = self.model if model is None else model
        return None if chosen is None else self.model_map.get(chosen, chosen)

    def __repr__(self) -> str:
        return f"BackendSpec({self.label!r}, weight={self.weight})"


def normalise_base(url: str) -> str:
    return url.strip().rstrip("/")


def checked_url(variable: str, url: str, what: str = "an http(s) URL") -> str:
    """``url`` if it is an absolute http(s) URL with a host, else a ``ConfigError`` naming ``variable``."""
    try:
        parsed = URL(url)
        ok = parsed.scheme in ("http", "https") and bool(parsed.host) and parsed.port is not None
    except ValueError:
        ok = False
    if not ok:
        shown = public_url(url) or url.rsplit("@", 1)[-1][:80]  # never the credentials of a URL
        raise ConfigError(variable, f"{shown!r} is not {what}",
                          "write the full address, such as https://api.example.com/v1")
    return url


def public_url(url: str) -> str:
    """The URL without credentials or query string, fit for /status and logs."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}{parts.path}".rstrip("/") if parts.scheme else ""
