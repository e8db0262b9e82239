"""An OpenAI-compatible client: image generation, image edits (image-to-image, OpenAI's multipart
``/images/edits``) and chat completions, over the shared session."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from proxy.config.backends import BackendSpec, normalise_base
from proxy.config.image import UpstreamTimeouts
from proxy.upstream import transport
from proxy.upstream.errors import HttpStatus, Refusal, UpstreamError, error_detail

REFUSAL_CODES = frozenset({
    "content_policy_violation", "moderation_blocked", "content_filter", "contentfilter",
    "responsibleaipolicyviolation", "safety_violation", "image_generation_user_error",
    "prompt_blocked", "nsfw",
})
# In the message of a 400/403/422/451. "contentpolicyviolationerror" is LiteLLM's: it keeps the
# exception's name ("litellm.ContentPolicyViolationError: Request blocked.") but loses the provider's code.
REFUSAL_WORDS = ("content policy", "content_policy", "safety system", "moderation", "safety filter",
                 "responsible ai", "nsfw", "content filter", "contentpolicyviolationerror")
JSON_CAP = 64 * 1024 * 1024


EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif",
              "image/avif": "avif", "image/bmp": "bmp", "image/tiff": "tiff"}


@dataclass(frozen=True)
class InputImage:
    """An input image for an edit: its bytes and the type read from them."""

    data: bytes = field(repr=False)
    content_type: str


@dataclass(frozen=True)
class ImageJob:
    prompt: str
    width: int
    height: int
    model: str | None
    seed: int | None
    negative_prompt: str | None = None
    quality: str | None = None
    style: str | None = None
    user: str | None = None
    inputs: tuple[InputImage, ...] = ()
    """Input images: an edit (``/images/edits``) instead of a generation."""


def refusal_in(status: int, payload: Any) -> bool:
    """Only a content-policy decision counts as a refusal, never any 400 by itself."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, str):
        error = {"message": error}
    if not isinstance(error, dict):
        return False
    fields = [str(error.get(k) or "").lower() for k in ("code", "type", "param")]
    if any(f.replace(" ", "_") in REFUSAL_CODES for f in fields if f):
        return True
    message = str(error.get("message") or "").lower()
    return status in (400, 403, 422, 451) and any(word in message for word in REFUSAL_WORDS)


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


class OpenAIClient:
    def __init__(self, session: aiohttp.ClientSession, timeouts: UpstreamTimeouts):
        self.session = session
        self.timeouts = timeouts

    async def post_json(self, spec: BackendSpec, path: str, payload: dict[str, Any], *,
                        total: float) -> Any:
        return await self._post(spec, path, orjson.dumps(payload), {"Content-Type": "application/json"},
                                total=total)

    async def _post(self, spec: BackendSpec, path: str, sent: bytes | aiohttp.FormData,
                    headers: dict[str, str], *, total: float) -> Any:
        """POST ``sent``; the answer's JSON, or the refusal or error it says."""
        headers = {**headers, **transport.bearer(spec.token)}
        async with transport.request(self.session, "POST", api_url(spec.url, path), label=spec.label,
                                limits=transport.timeout(total, self.timeouts.connect),
                                data=sent, headers=headers) as resp:
            body = await transport.read_capped(resp, JSON_CAP, label=spec.label)
            status = resp.status
        data = transport.maybe_json(body)
        if refusal_in(status, data):
            raise Refusal("refused by content policy", backend=spec.label)
        if status >= 400:
            raise HttpStatus(status, backend=spec.label, detail=error_detail(data))
        if data is None:
            raise UpstreamError("answer is not JSON", backend=spec.label)
        return data

    async def generate_image(self, spec: BackendSpec, job: ImageJob) -> tuple[bytes | None, str | None]:
        """``(bytes, None)`` for ``b64_json`` answers, ``(None, url)`` for ``url`` answers; with input
        images, an edit."""
        if job.inputs:
            return await self.edit_image(spec, job)
        payload = _job_fields(spec, job)
        if job.style:
            payload["style"] = job.style
        data = await self.post_json(spec, "images/generations", payload, total=self.timeouts.backend)
        return _image_from(data, spec.label)

    async def edit_image(self, spec: BackendSpec, job: ImageJob) -> tuple[bytes | None, str | None]:
        """OpenAI's ``/images/edits``: multipart, the input image in the field ``image`` (several in
        ``image[]``, one part each, as the OpenAI SDK sends them), the rest as plain fields."""
        form = aiohttp.FormData()
        for name, value in _job_fields(spec, job).items():
            form.add_field(name, str(value))
        field_name = "image" if len(job.inputs) == 1 else "image[]"
        for number, image in enumerate(job.inputs, 1):
            extension = EXTENSIONS.get(image.content_type, "bin")
            form.add_field(field_name, image.data, filename=f"image-{number}.{extension}",
                           content_type=image.content_type)
        data = await self._post(spec, "images/edits", form, {}, total=self.timeouts.backend)
        return _image_from(data, spec.label)

    async def chat(self, spec: BackendSpec, messages: list[dict[str, Any]], *, total: float,
                   **extra: Any) -> str:
        payload = {"model": spec.model, "messages": messages, **extra}
        data = await self.post_json(spec, "chat/completions", payload, total=total)
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise UpstreamError("answer has no choices[0].message.content", backend=spec.label) from None
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str) or not content.strip():
            raise UpstreamError("empty answer", backend=spec.label)
        return content


def _job_fields(spec: BackendSpec, job: ImageJob) -> dict[str, Any]:
    """What every image call sends, only what the job has: prompt, one image, size, the model
    (through MODEL_MAP), seed, negative prompt, quality and the end user's id."""
    payload: dict[str, Any] = {"prompt": job.prompt, "n": 1, "size": f"{job.width}x{job.height}"}
    model = spec.map_model(job.model)
    if model:
        payload["model"] = model
    if job.seed is not None:
        payload["seed"] = job.seed
    for name in ("negative_prompt", "quality", "user"):
        if value := getattr(job, name):
            payload[name] = value
    return payload


def _image_from(data: Any, label: str) -> tuple[bytes | None, str | None]:
    try:
        item = data["data"][0]
    except (KeyError, IndexError, TypeError):
        raise UpstreamError("answer has no data[0]", backend=label) from None
    if not isinstance(item, dict):
        raise UpstreamError("data[0] is not an object", backend=label)
    if isinstance(item.get("b64_json"), str):
        try:
            return base64.b64decode(item["b64_json"], validate=True), None
        except (binascii.Error, ValueError):
            raise UpstreamError("b64_json is not base64", backend=label) from None
    if isinstance(item.get("url"), str) and item["url"].startswith(("http://", "https://")):
        return None, item["url"]
    raise UpstreamError("data[0] has neither b64_json nor an http url", backend=label)
