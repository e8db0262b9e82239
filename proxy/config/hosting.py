"""Image hosting: where generated images are uploaded, and how Iris answers for them."""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.config.backends import checked_url
from proxy.config.env import Env
from proxy.errors import ConfigError

SMMS_UPLOAD = "https://sm.ms/api/v2/upload"
RESPONSES = ("redirect", "proxy")
# What each provider needs; the uploader registry (proxy/hosting/registry.py) has the same names.
REQUIRED = {
    "smms": ("IMAGE_HOSTING_KEY",),
    "picgo": ("IMAGE_HOSTING_KEY", "IMAGE_HOSTING_URL"),
    "cloudflare_imgbed": ("IMAGE_HOSTING_URL",),
}
DEFAULT_URL = {"smms": SMMS_UPLOAD}


@dataclass(frozen=True)
class HostingSettings:
    enabled: bool = False
    provider: str = "smms"
    key: str | None = field(default=None, repr=False)
    url: str = SMMS_UPLOAD
    auth_code: str | None = field(default=None, repr=False)
    response: str = "redirect"
    timeout: float = 30.0
    connect_timeout: float = 5.0
    attempts: int = 3
    backoff: float = 0.5
    retry_after: float = 60.0
    max_answer_bytes: int = 1024 * 1024


def load_hosting(env: Env) -> HostingSettings:
    enabled = env.flag("IMAGE_HOSTING_ENABLED", False)
    provider = env.text("IMAGE_HOSTING_PROVIDER", "smms").lower()
    response = env.text("IMAGE_HOSTING_RESPONSE", "redirect").lower()
    if enabled:
        _check(env, provider, response)
    return HostingSettings(
        enabled=enabled,
        provider=provider,
        key=env.optional("IMAGE_HOSTING_KEY"),
        url=env.text("IMAGE_HOSTING_URL", DEFAULT_URL.get(provider, "")),
        auth_code=env.optional("IMAGE_HOSTING_AUTH_CODE"),
        response=response,
        timeout=env.number("IMAGE_HOSTING_TIMEOUT", 30.0, lo=0.1, hi=600),
        connect_timeout=env.number("IMAGE_HOSTING_CONNECT_TIMEOUT", 5.0, lo=0.1, hi=120),
        attempts=env.integer("IMAGE_HOSTING_ATTEMPTS", 3, lo=1, hi=10),
        backoff=env.number("IMAGE_HOSTING_BACKOFF", 0.5, lo=0.0, hi=60),
        retry_after=env.number("IMAGE_HOSTING_RETRY_AFTER", 60.0, lo=0.0, hi=86400),
    )


def _check(env: Env, provider: str, response: str) -> None:
    if provider not in REQUIRED:
        raise ConfigError("IMAGE_HOSTING_PROVIDER", f"{provider!r} is not a provider",
                          f"use one of {', '.join(REQUIRED)}")
    if response not in RESPONSES:
        raise ConfigError("IMAGE_HOSTING_RESPONSE", f"{response!r} is not a mode", "use redirect or proxy")
    for name in REQUIRED[provider]:
        if not env.optional(name):
            raise ConfigError(name, f"is required when IMAGE_HOSTING_PROVIDER={provider}",
                              f"set {name} (or IMAGE_HOSTING_ENABLED=false)")
    url = env.optional("IMAGE_HOSTING_URL")
    if url is not None:
        checked_url("IMAGE_HOSTING_URL", url, "an http(s) upload address")
