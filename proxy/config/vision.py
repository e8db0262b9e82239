"""Vision: the cascade's providers (in order), the judge, thresholds, deadlines, how frames are
checked, repeated-scene dedup, and which origins and keys may call /analyze and /health.

A provider is of a kind: ``chat`` (the default: an OpenAI-compatible chat endpoint) or ``onnx`` (an
image classifier in an ONNX file, run on this machine; the ``local`` extra)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy.config.backends import checked_url, normalise_base
from proxy.config.env import Env
from proxy.config.local import require
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


LAYOUTS = ("NCHW", "NHWC")
_WORDNET_ID = re.compile(r"^n\d{8}\s+")
CHAT_EXAMPLE = ('write [{"name": "gemini", "base_url": "https://...", "model": "...", "token": "..."}, ...]')
ONNX_EXAMPLE = ('write {"name": "resnet", "kind": "onnx", "model_path": "/models/resnet50.onnx", '
                '"labels_path": "/models/imagenet-labels.txt"}')


@dataclass(frozen=True)
class LocalModel:
    """An image classifier in an ONNX file: its labels (one a line in the file, in the model's output
    order), and the preprocessing to use where the model itself does not say it (``None``: ImageNet's)."""

    path: Path
    labels: tuple[str, ...]
    input_size: tuple[int, int] | None = None  # height, width
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    layout: str | None = None


@dataclass(frozen=True)
class ProviderSettings:
    """One provider of the cascade: an OpenAI-compatible chat endpoint (``token`` is the server's
    key), or a local model (``kind="onnx"``: ``base_url`` is the model file's ``file://`` URL and
    ``model`` its file name, so it is shown and counted like the others)."""

    name: str
    base_url: str
    model: str
    token: str | None = field(default=None, repr=False)
    threshold: float | None = None
    profile_field: str | None = None
    keyless: bool = False
    kind: str = "chat"
    local: LocalModel | None = None

    @property
    def judges(self) -> bool:
        """A local classifier answers with a label; it cannot weigh other answers."""
        return self.kind == "chat"


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
    if judge is not None and not next(p for p in providers if p.name == judge).judges:
        raise ConfigError("VISION_JUDGE", f"{judge!r} is a local model, which cannot judge",
                          "name a chat provider, or leave it empty for the first chat provider")
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
    if not isinstance(item, dict):
        raise _bad(index, "is not an object")
    kind = item.get("kind", "chat")
    parse = PROVIDER_KINDS.get(kind) if isinstance(kind, str) else None
    if parse is None:
        raise _bad(index, f"has the kind {kind!r}, which is not one of {', '.join(PROVIDER_KINDS)}")
    return parse(env, index, item)


def _bad(index: int, problem: str, fix: str = CHAT_EXAMPLE) -> ConfigError:
    return ConfigError("VISION_PROVIDERS", f"entry {index} {problem}", fix)


def _chat_provider(env: Env, index: int, item: dict[str, Any]) -> ProviderSettings:
    for key in ("name", "base_url", "model"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise _bad(index, f"has no {key}")
    name = item["name"].strip()
    defaults = {d[0]: d for d in DEFAULT_PROVIDERS}
    server_var = defaults[name][3] if name in defaults else None
    token = item.get("token") or (env.optional(server_var) if server_var else None)
    return ProviderSettings(
        name=name,
        base_url=normalise_base(checked_url("VISION_PROVIDERS", item["base_url"].strip())),
        model=item["model"].strip(),
        token=str(token) if token else None,
        threshold=_threshold(index, item),
        profile_field=str(item.get("profile_key") or PROFILE_FIELDS.get(name) or "") or None,
        keyless=bool(item.get("keyless", False)),
    )


def _onnx_provider(env: Env, index: int, item: dict[str, Any]) -> ProviderSettings:
    def bad(problem: str) -> ConfigError:
        return _bad(index, problem, ONNX_EXAMPLE)

    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise bad("has no name")
    name = name.strip()
    require("VISION_PROVIDERS", "onnxruntime", f"the local model {name!r} (kind onnx)")
    model_path = _file(item, "model_path", bad)
    labels = _labels(_file(item, "labels_path", bad), bad)
    return ProviderSettings(
        name=name, base_url=model_path.as_uri(), model=model_path.name, threshold=_threshold(index, item),
        keyless=True, kind="onnx",
        local=LocalModel(model_path, labels, input_size=_size(item.get("input_size"), bad),
                         mean=_triple(item.get("mean"), "mean", bad),
                         std=_triple(item.get("std"), "std", bad),
                         layout=_layout(item.get("layout"), bad)),
    )


PROVIDER_KINDS: dict[str, Callable[[Env, int, dict[str, Any]], ProviderSettings]] = {
    "chat": _chat_provider,
    "onnx": _onnx_provider,
}


def _threshold(index: int, item: dict[str, Any]) -> float | None:
    threshold = item.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)
                                  or not 0.0 <= threshold <= 1.0):
        raise _bad(index, "has a threshold outside 0..1")
    return None if threshold is None else float(threshold)


def _file(item: dict[str, Any], key: str, bad: Callable[[str], ConfigError]) -> Path:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise bad(f"has no {key}")
    path = Path(value.strip()).expanduser().resolve()
    if not path.is_file():
        raise bad(f"names {key} {str(path)!r}, which is not a file")
    return path


def _labels(path: Path, bad: Callable[[str], ConfigError]) -> tuple[str, ...]:
    """One label a line, in the model's output order. A WordNet id before a label (``n01440764
    tench, Tinca tinca``) is dropped, and of synonyms after commas the first is kept."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise bad(f"has a labels_path that cannot be read as UTF-8 text ({exc})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    labels = []
    for number, line in enumerate(lines, 1):
        label = _WORDNET_ID.sub("", line.strip()).split(",", 1)[0].replace("_", " ").strip()
        if not label:
            raise bad(f"has an empty label on line {number} of {path}")
        labels.append(label)
    if not labels:
        raise bad(f"has no labels in {path}")
    return tuple(labels)


def _size(value: Any, bad: Callable[[str], ConfigError]) -> tuple[int, int] | None:
    if value is None:
        return None
    sides = [value, value] if isinstance(value, int) and not isinstance(value, bool) else value
    if (not isinstance(sides, list) or len(sides) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 8 <= v <= 4096 for v in sides)):
        raise bad("has an input_size that is not a side (8 to 4096) or [height, width]")
    return sides[0], sides[1]


def _triple(value: Any, key: str, bad: Callable[[str], ConfigError]) -> tuple[float, ...] | None:
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 3
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            or (key == "std" and not all(v > 0 for v in value))):
        raise bad(f"has a {key} that is not three numbers (one per colour channel"
                  f"{', each above 0' if key == 'std' else ''})")
    return tuple(float(v) for v in value)


def _layout(value: Any, bad: Callable[[str], ConfigError]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.upper() not in LAYOUTS:
        raise bad(f"has the layout {value!r}, which is not one of {', '.join(LAYOUTS)}")
    return value.upper()
