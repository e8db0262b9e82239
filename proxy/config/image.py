"""The image route: backends, prompt LLM, safety rewrite, Pollinations fallback, limits."""

from __future__ import annotations

import hashlib
from dataclasses import astuple, dataclass, field
from functools import cached_property
from pathlib import Path

import orjson

from proxy.config.backends import BackendSpec, checked_url, normalise_base
from proxy.config.env import Env, Network
from proxy.errors import ConfigError
from proxy.shipped import shipped

DEFAULT_POLLINATIONS = "https://image.pollinations.ai"


@dataclass(frozen=True)
class UpstreamTimeouts:
    connect: float = 5.0
    backend: float = 60.0
    llm: float = 20.0
    fetch_max_bytes: int = 25 * 1024 * 1024
    fetch_allow: tuple[Network, ...] = ()
    """Networks an image URL a backend or image host answered with may point into, beyond public
    addresses and that upstream's own origin (``IMAGE_FETCH_ALLOW``)."""
    per_host: int = 64
    """Connections open at once to one upstream host (``UPSTREAM_CONNECTIONS_PER_HOST``)."""


@dataclass(frozen=True)
class BreakerSettings:
    threshold: int = 3
    cooldown: float = 30.0
    max_cooldown: float = 600.0


@dataclass(frozen=True)
class LLMSettings:
    enabled: bool = False
    url: str | None = None
    token: str | None = field(default=None, repr=False)
    model: str = "gpt-4.1-mini"
    optimize_template: str = ""
    de_nsfw_enabled: bool = False
    de_nsfw_template: str = ""
    de_nsfw_max_attempts: int = 2

    @property
    def backend(self) -> BackendSpec | None:
        if not self.url:
            return None
        return BackendSpec(url=self.url, token=self.token, name="llm", model=self.model, role="llm")


@dataclass(frozen=True)
class ImageSettings:
    backends: tuple[BackendSpec, ...] = ()
    image_model: str | None = None
    """The model sent when a request names none (``IMAGE_MODEL``; each backend maps it by MODEL_MAP)."""
    blocked_retry_attempts: int = 2
    llm: LLMSettings = LLMSettings()
    pollinations_url: str = DEFAULT_POLLINATIONS
    pollinations_fallback: bool = True
    pollinations_is_pool: bool = False
    timeouts: UpstreamTimeouts = UpstreamTimeouts()
    breaker: BreakerSettings = BreakerSettings()
    max_prompt_length: int = 2000
    min_side: int = 64
    max_side: int = 2048
    default_width: int = 1024
    default_height: int = 1024
    default_seed: int = 42
    input_image_max_bytes: int = 10 * 1024 * 1024
    """INPUT_IMAGE_MAX_BYTES: the largest input image (``image=``) Iris fetches for an edit."""

    @cached_property
    def models(self) -> tuple[str, ...]:
        """The model names a request may give: IMAGE_MODEL and the names MODEL_MAP maps (what the
        playground suggests and the model lists of the APIs show)."""
        names = {name for spec in self.backends for name in spec.model_map}
        if self.image_model:
            names.add(self.image_model)
        return tuple(sorted(names))

    @cached_property
    def fingerprint(self) -> str:
        """A digest of what decides how an image is made (the backends with their tokens and models,
        the prompt LLM, Pollinations): a failure remembered under other settings is not served."""
        made_by = [[astuple(spec) for spec in self.backends], astuple(self.llm), self.pollinations_url,
                   self.pollinations_fallback, self.blocked_retry_attempts]
        return hashlib.sha256(orjson.dumps(made_by, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def load_image(env: Env) -> ImageSettings:
    urls = [normalise_base(checked_url("BACKEND_API_URLS", u)) for u in env.items("BACKEND_API_URLS")]
    if len(set(urls)) != len(urls):
        raise ConfigError("BACKEND_API_URLS", "names one backend twice", "list each backend URL once")
    pollinations = normalise_base(checked_url("POLLINATIONS_URL", env.text("POLLINATIONS_URL",
                                                                           DEFAULT_POLLINATIONS)))
    image_model = env.optional("IMAGE_MODEL")
    return ImageSettings(
        backends=_backends(env, urls, image_model),
        image_model=image_model,
        blocked_retry_attempts=env.integer("BLOCKED_RETRY_ATTEMPTS", 2, lo=1, hi=100),
        llm=_llm(env),
        pollinations_url=pollinations,
        pollinations_fallback=env.flag("POLLINATIONS_FALLBACK", True),
        pollinations_is_pool=not urls,
        timeouts=UpstreamTimeouts(
            connect=env.number("UPSTREAM_CONNECT_TIMEOUT", 5.0, lo=0.1, hi=120),
            backend=env.number("BACKEND_TIMEOUT", 60.0, lo=0.1, hi=900),
            llm=env.number("LLM_TIMEOUT", 20.0, lo=0.1, hi=300),
            fetch_max_bytes=env.integer("FETCH_MAX_BYTES", 25 * 1024 * 1024, lo=1024),
            fetch_allow=env.networks("IMAGE_FETCH_ALLOW"),
            per_host=env.integer("UPSTREAM_CONNECTIONS_PER_HOST", 64, lo=1, hi=10_000),
        ),
        breaker=BreakerSettings(
            threshold=env.integer("BREAKER_THRESHOLD", 3, lo=1, hi=1000),
            cooldown=env.number("BREAKER_COOLDOWN", 30.0, lo=0.0, hi=86400),
            max_cooldown=env.number("BREAKER_MAX_COOLDOWN", 600.0, lo=0.0, hi=86400),
        ),
        max_prompt_length=env.integer("MAX_PROMPT_LENGTH", 2000, lo=1, hi=100_000),
        max_side=env.integer("MAX_IMAGE_SIDE", 2048, lo=64, hi=16384),
        default_width=env.integer("DEFAULT_WIDTH", 1024, lo=64, hi=16384),
        default_height=env.integer("DEFAULT_HEIGHT", 1024, lo=64, hi=16384),
        input_image_max_bytes=env.integer("INPUT_IMAGE_MAX_BYTES", 10 * 1024 * 1024, lo=1024,
                                          hi=512 * 1024 * 1024),
    )


def _backends(env: Env, urls: list[str], image_model: str | None) -> tuple[BackendSpec, ...]:
    """The pool, each backend named ``backend-N`` (its place in BACKEND_API_URLS) wherever a URL
    must not be shown: error messages, logs, the public parts of /status."""
    weights = _keyed(env, "BACKEND_WEIGHTS", urls, (int,))
    tokens = _keyed(env, "TOKEN_MAP", urls, (str,))
    models = _keyed(env, "MODEL_MAP", urls, (dict,))
    if any(w < 0 for w in weights.values()) or (urls and not any(weights.get(u, 1) for u in urls)):
        raise ConfigError("BACKEND_WEIGHTS", "weights must be >= 0 and not all 0", "give positive integers")
    fallback_token = env.optional("AUTH_TOKEN")
    edits = _edit_backends(env, urls)
    return tuple(
        BackendSpec(
            url=url,
            weight=weights.get(url, 1),
            token=tokens.get(url, fallback_token),
            model_map={str(k): str(v) for k, v in models.get(url, {}).items()},
            name=f"backend-{number}",
            model=image_model,
            edits=url in edits,
        )
        for number, url in enumerate(urls, 1)
    )


def _edit_backends(env: Env, urls: list[str]) -> set[str]:
    """EDIT_BACKENDS: the backends that take image edits; ``all`` (the default) or ``none``."""
    items = env.items("EDIT_BACKENDS") or ["all"]
    if [item.lower() for item in items] == ["all"]:
        return set(urls)
    if [item.lower() for item in items] == ["none"]:
        return set()
    named = {normalise_base(item) for item in items}
    unknown = sorted(named - set(urls))
    if unknown:
        raise ConfigError("EDIT_BACKENDS", f"names {unknown[0]!r}, which is not in BACKEND_API_URLS",
                          "use the same URLs as BACKEND_API_URLS, or all, or none")
    return named


def _keyed(env: Env, name: str, urls: list[str], kinds: tuple[type, ...]) -> dict:
    raw = env.json(name, {}, dict)
    out = {}
    for key, value in raw.items():
        url = normalise_base(key)
        if url not in urls:
            raise ConfigError(name, f"names {url!r}, which is not in BACKEND_API_URLS",
                              "use the same URLs as BACKEND_API_URLS")
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise ConfigError(name, f"the value for {url!r} has the wrong type",
                              f"give a {kinds[0].__name__} per URL")
        out[url] = value
    return out


def _llm(env: Env) -> LLMSettings:
    enabled = env.flag("LLM_OPTIMIZATION_ENABLED", False)
    de_nsfw = env.flag("DE_NSFW_ENABLED", False)
    url = env.optional("LLM_OPTIMIZATION_API_URL")
    if (enabled or de_nsfw) and not url:
        var = "LLM_OPTIMIZATION_ENABLED" if enabled else "DE_NSFW_ENABLED"
        raise ConfigError(var, "needs an LLM but LLM_OPTIMIZATION_API_URL is empty",
                          "set LLM_OPTIMIZATION_API_URL to an OpenAI-compatible base URL")
    return LLMSettings(
        enabled=enabled,
        url=normalise_base(checked_url("LLM_OPTIMIZATION_API_URL", url)) if url else None,
        token=env.optional("LLM_OPTIMIZATION_TOKEN"),
        model=env.text("LLM_OPTIMIZATION_MODEL", "gpt-4.1-mini"),
        optimize_template=_template(env, "LLM_OPTIMIZATION", "prompt-template.txt") if enabled else "",
        de_nsfw_enabled=de_nsfw,
        de_nsfw_template=_template(env, "DE_NSFW", "safe-prompt-template.txt") if de_nsfw else "",
        de_nsfw_max_attempts=env.integer("DE_NSFW_MAX_ATTEMPTS", 2, lo=0, hi=20),
    )


def _template(env: Env, prefix: str, default: str) -> str:
    """File named by ``{prefix}_TEMPLATE_FILE``, else ``{prefix}_TEMPLATE``, else the shipped file."""
    var = f"{prefix}_TEMPLATE_FILE"
    path = env.optional(var)
    if path:
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(var, f"cannot read {path!r} ({exc.strerror})",
                              "point it at a readable file") from None
    else:
        text = (env.raw(f"{prefix}_TEMPLATE") or "").replace("\\n", "\n") or _shipped(default)
        if not text:
            raise ConfigError(var, f"{default} is neither in the working directory nor installed with Iris",
                              f"point {var} at a template, or reinstall iris-proxy")
    if "{ORIGINAL_PROMPT}" not in text:
        raise ConfigError(var, "the template has no {ORIGINAL_PROMPT} placeholder", "add {ORIGINAL_PROMPT}")
    return text


def _shipped(name: str) -> str:
    """``name`` from the working directory (as the Deno proxy reads it), else the one Iris ships."""
    for candidate in (Path.cwd() / name, shipped(name)):
        if candidate is not None and candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    return ""
