"""One upstream endpoint as configured: where it is, how much traffic it gets, how to authenticate,
and how to name it where a URL must not be shown."""

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


def public_url(url: str) -> str:
    """The URL without credentials or query string, fit for /status and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}".rstrip("/")
