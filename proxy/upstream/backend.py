"""One upstream endpoint: where it is, how much traffic it gets, and how to authenticate."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class BackendSpec:
    url: str
    weight: int = 1
    token: str | None = field(default=None, repr=False)
    model_map: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    name: str = ""
    model: str | None = None
    kind: str = "openai"

    @property
    def label(self) -> str:
        """A name safe to show: the given name, else host and path (never a token)."""
        return self.name or public_url(self.url)

    def map_model(self, model: str | None) -> str | None:
        if model is None:
            return self.model
        return self.model_map.get(model, model)

    def __repr__(self) -> str:
        return f"BackendSpec({self.label!r}, weight={self.weight})"


def normalise_base(url: str) -> str:
    return url.strip().rstrip("/")


def api_url(base: str, path: str) -> str:
    """``api_url("https://x/v1", "images/generations")`` -> ``https://x/v1/images/generations``.

    Bases are accepted with or without a trailing ``/v1`` (and with a trailing slash).
    """
    base = normalise_base(base)
    if not base.endswith("/v1") and "/v1/" not in base + "/" and not _has_version_suffix(base):
        base += "/v1"
    return f"{base}/{path.lstrip('/')}"


def _has_version_suffix(base: str) -> bool:
    """Providers such as Gemini's ``/v1beta/openai`` or DashScope's ``/compatible-mode/v1``."""
    last = base.rsplit("/", 1)[-1]
    return last in ("openai", "compatible-mode") or last.startswith(("v1", "v2", "v3"))


def public_url(url: str) -> str:
    """The URL without credentials or query string, fit for /status and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}".rstrip("/")
