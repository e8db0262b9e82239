"""Vision: the cascade's providers (in order), the judge, thresholds, deadlines, how frames are
checked, repeated-scene dedup, and which origins and keys may call /analyze and /health."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from proxy.config.backends import checked_url, normalise_base
from proxy.config.env import Env
from proxy.errors import ConfigError

# name, base URL, model, server key variable, profile key field
DEFAULT_PROVIDERS = (
    ("gemini", "https://generativelanguage.googleapis.com/v1beta/openai", "gemini-2.0-flash",
     "GEMINI_API_KEY", "gemini_api_key"),
    ("deepseek", "https://api.deepseek.com/v1", "deepseek-chat", "DEEPSEEK_API_KEY", "deepseek_api_key"),
    ("qwen", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "qwen-vl-max", "QWEN_API_KEY",
     "qwen_api_key"),
    ("openai", "https://api.openai.com/v1", "gpt-4o", "OPENAI_API_KEY", "chatgpt_api_key"),
)
PROFILE_FIELDS = {name: profile_field for name, _, _, _, profile_field in DEFAULT_PROVIDERS}
PROFILE_FIELDS["chatgpt"] = "chatgpt_api_key"


@dataclass(frozen=True)
class ProviderSettings:
    """One OpenAI-compatible chat endpoint of the cascade. ``token`` is the server's key."""

    name: str
    base_url: str
    model: str
    token: str | None = field(default=None, repr=False)
    threshold: float | None = None
    profile_field: str | None = None
    keyless: bool = False


@dataclass(frozen=True)
class VisionSettings:
    providers: tuple[ProviderSettings, ...] = ()
    judge: str | None = None
    threshold: float = 0.7
    deadline: float = 25.0
    call_timeout: float = 12.0
    max_tokens: int = 300
    max_side: int = 1024
    max_pixels: int = 16_000_000
    decode_threads: int = 2
    jpeg_quality: int = 85
    dedup_seconds: float = 10.0
    dedup_distance: int = 6
    cors_origins: tuple[str, ...] = ("*",)
    """VISION_CORS_ORIGINS: who may read /health from a browser."""
    analyze_origins: tuple[str, ...] = ()
    """ANALYZE_ORIGINS: the only origins whose pages may call /analyze (none by default)."""
    analyze_access_key: bool = False
    """ANALYZE_ACCESS_KEY: /analyze also takes the server's image access key (else profile keys only)."""


def load_vision(env: Env) -> VisionSettings:
    providers = _providers(env)
    judge = env.optional("VISION_JUDGE")
    if judge is not None and judge not in {p.name for p in providers}:
        raise ConfigError("VISION_JUDGE", f"{judge!r} is not a provider of VISION_PROVIDERS",
                          "name one of the providers, or leave it empty for the first")
    return VisionSettings(
        providers=providers,
        judge=judge,
        threshold=env.number("VISION_CONFIDENCE_THRESHOLD", 0.7, lo=0.0, hi=1.0),
        deadline=env.number("VISION_DEADLINE", 25.0, lo=0.1, hi=600.0),
        call_timeout=env.number("VISION_CALL_TIMEOUT", 12.0, lo=0.1, hi=600.0),
        max_tokens=env.integer("VISION_MAX_TOKENS", 300, lo=16, hi=8192),
        max_side=env.integer("VISION_MAX_SIDE", 1024, lo=64, hi=8192),
        max_pixels=env.integer("VISION_MAX_PIXELS", 16_000_000, lo=4096),
        decode_threads=env.integer("VISION_DECODE_THREADS", 2, lo=1, hi=64),
        jpeg_quality=env.integer("VISION_JPEG_QUALITY", 85, lo=30, hi=95),
        dedup_seconds=env.number("VISION_DEDUP_SECONDS", 10.0, lo=0.0, hi=86400.0),
        dedup_distance=env.integer("VISION_DEDUP_DISTANCE", 6, lo=0, hi=64),
        cors_origins=tuple(env.items("VISION_CORS_ORIGINS")) or ("*",),
        analyze_origins=tuple(env.items("ANALYZE_ORIGINS")),
        analyze_access_key=env.flag("ANALYZE_ACCESS_KEY", False),
    )


def _providers(env: Env) -> tuple[ProviderSettings, ...]:
    raw = env.json("VISION_PROVIDERS", None, list)
    if raw is None:
        return tuple(ProviderSettings(name, url, model, env.optional(var), None, profile_field)
                     for name, url, model, var, profile_field in DEFAULT_PROVIDERS)
    providers = tuple(_provider(env, i, item) for i, item in enumerate(raw))
    names = [p.name for p in providers]
    if len(set(names)) != len(names):
        raise ConfigError("VISION_PROVIDERS", "two providers share a name", "give each provider its own name")
    return providers


def _provider(env: Env, index: int, item: Any) -> ProviderSettings:
    def bad(problem: str) -> ConfigError:
        return ConfigError("VISION_PROVIDERS", f"entry {index} {problem}",
                           'write [{"name": "gemini", "base_url": "https://...", "model": "...", '
                           '"token": "..."}, ...]')

    if not isinstance(item, dict):
        raise bad("is not an object")
    for key in ("name", "base_url", "model"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise bad(f"has no {key}")
    threshold = item.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)
                                  or not 0.0 <= threshold <= 1.0):
        raise bad("has a threshold outside 0..1")
    name = item["name"].strip()
    defaults = {d[0]: d for d in DEFAULT_PROVIDERS}
    server_var = defaults[name][3] if name in defaults else None
    token = item.get("token") or (env.optional(server_var) if server_var else None)
    return ProviderSettings(
        name=name,
        base_url=normalise_base(checked_url("VISION_PROVIDERS", item["base_url"].strip())),
        model=item["model"].strip(),
        token=str(token) if token else None,
        threshold=None if threshold is None else float(threshold),
        profile_field=str(item.get("profile_key") or PROFILE_FIELDS.get(name) or "") or None,
        keyless=bool(item.get("keyless", False)),
    )
