"""Descriptions of the APIs image tools already speak (OpenAI's Images API, Pollinations' paths and
model list), with real examples (the tests send the request examples and check the answers), for
/docs and /openapi.json; and the "use it from code" snippet the docs and the README show."""

from __future__ import annotations

from typing import Any

from proxy.pages.apidoc import INT, STR, json_body, path_param, ref

# Shown on /docs and in the README; the tests run it against a real server.
OPENAI_PYTHON = """\
import base64
from openai import OpenAI

client = OpenAI(base_url="https://YOUR-HOST/v1", api_key="YOUR-ACCESS-KEY")

result = client.images.generate(prompt="a lighthouse at dusk, oil painting", size="1024x1024",
                                response_format="b64_json")
with open("lighthouse.png", "wb") as out:
    out.write(base64.b64decode(result.data[0].b64_json))
print(result.data[0].revised_prompt)  # the prompt that made it (after enhancement or a safety rewrite)

signed = client.images.generate(prompt="a lighthouse at dusk, oil painting", size="1024x1024",
                                response_format="url")
print(signed.data[0].url)  # a signed /prompt/... URL: put it in an <img>, it needs no key
"""

NULLABLE_STR = {"type": ["string", "null"]}
SIZE_EXAMPLE = "1024x1024"
REQUEST_EXAMPLE = {"prompt": "a lighthouse at dusk, oil painting", "size": SIZE_EXAMPLE, "n": 2,
                   "response_format": "b64_json", "quality": "hd"}
PNG_1PX = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mN4VqEBAAPOAYeuK73cAAAAAElFTkSuQmCC",
           "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mPQsOkBAAGAAPGzfAfZAAAAAElFTkSuQmCC")
ANSWER_EXAMPLE = {"created": 1767225600, "data": [  # two 1x1 PNGs, for brevity
    {"b64_json": PNG_1PX[0], "revised_prompt": "a lighthouse at dusk, oil painting"},
    {"b64_json": PNG_1PX[1], "revised_prompt": "a lighthouse at dusk, oil painting"}]}
MODELS_EXAMPLE = {"object": "list", "data": [
    {"id": "dall-e-3", "object": "model", "created": 0, "owned_by": "iris"},
    {"id": "flux", "object": "model", "created": 0, "owned_by": "iris"}]}

OPENAI_SCHEMAS: dict[str, Any] = {
    "OpenAIError": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["message", "type", "param", "code"],
        "properties": {"message": STR, "type": STR, "param": NULLABLE_STR, "code": STR}}},
        "example": {"error": {"message": 'size must be "WIDTHxHEIGHT" (such as "1024x1024") or "auto"',
                              "type": "invalid_request_error", "param": "size", "code": "invalid_size"}}},
    "ImagesBody": {"type": "object", "required": ["prompt"], "properties": {
        "prompt": {"type": "string", "description": "what to draw"},
        "model": {"type": "string", "description": "mapped per backend by MODEL_MAP (default IMAGE_MODEL)"},
        "n": {"type": "integer", "minimum": 1, "maximum": 4,
              "description": "images, each with its own seed (seed, seed+1, ...) and cache entry"},
        "size": {"type": "string", "description": '"WIDTHxHEIGHT" within 64..MAX_IMAGE_SIDE, or "auto"'},
        "response_format": {"enum": ["b64_json", "url"],
                            "description": "`url`: a signed /prompt URL that needs no key; absent: both"},
        "quality": {"enum": ["auto", "low", "medium", "high", "standard", "hd"]},
        "style": {"enum": ["vivid", "natural"]},
        "user": {"type": "string", "description": "the end user's id, passed to backends"},
        "seed": {"type": "integer", "description": "Iris: the first image's seed (default 42; -1: random)"},
        "negative_prompt": {"type": "string", "description": "Iris: what to avoid"},
        "enhance": {"type": "boolean", "description": "Iris: prompt enhancement for this call"},
        "image": {"type": "array", "items": {"type": "string"}, "maxItems": 8,
                  "description": "Iris: input image URLs (image-to-image through backends that edit)"},
        "output_format": {"enum": ["png", "jpeg", "webp", "avif"],
                          "description": "convert the image (the original stays cached)"},
        "output_compression": {"type": "integer", "minimum": 0, "maximum": 100,
                               "description": "the converted format's quality"}},
        "example": REQUEST_EXAMPLE},
    "Images": {"type": "object", "required": ["created", "data"], "properties": {
        "created": INT,
        "data": {"type": "array", "items": {"type": "object", "required": ["revised_prompt"], "properties": {
            "b64_json": STR, "url": {"type": "string", "format": "uri"}, "revised_prompt": STR}}}},
        "example": ANSWER_EXAMPLE},
    "Model": {"type": "object", "required": ["id", "object", "created", "owned_by"], "properties": {
        "id": STR, "object": {"const": "model"}, "created": INT, "owned_by": STR}},
    "ModelList": {"type": "object", "required": ["object", "data"], "properties": {
        "object": {"const": "list"}, "data": {"type": "array", "items": ref("Model")}},
        "example": MODELS_EXAMPLE},
}


def openai_error(description: str) -> dict[str, Any]:
    return json_body(ref("OpenAIError"), description)


OPENAI_OPERATIONS: dict[str, dict[str, Any]] = {
    "openai_images": {
        "tags": ["openai"],
        "summary": "Generate images: OpenAI's Images API (the OpenAI SDKs work as they are)",
        "description": "`client = OpenAI(base_url=\"https://YOUR-HOST/v1\", api_key=ACCESS_KEY)`, then "
                       "`client.images.generate(...)`. Each image goes through the image route: the same "
                       "cache entry as the `/prompt` URL with its parameters, single flight, failover, the "
                       "safety rewrite and the limits on new images. `revised_prompt` is the prompt that "
                       "made the image. Errors are OpenAI's shape, so the SDK raises its own exceptions.",
        "security": [{"bearer": []}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": ref("ImagesBody"), "example": REQUEST_EXAMPLE}}},
        "responses": {"200": {"description": "the images, in request order", "content": {"application/json": {
                          "schema": ref("Images"), "example": ANSWER_EXAMPLE}}},
                      "400": openai_error("a bad body: `invalid_size`, `bad_prompt`, `bad_parameter` "
                                          "(`param` names the field); `bad_input_image`"),
                      "401": openai_error("a missing or wrong access key (`AuthenticationError`)"),
                      "403": openai_error("`blocked`"),
                      "429": openai_error("`generate_limited` or `budget_exhausted`, with `Retry-After` "
                                          "(`RateLimitError`; `x-should-retry: false` past 120 s)"),
                      "502": openai_error("every backend, the rewrite and the fallback failed"),
                      "503": openai_error("`generations_busy`, with `Retry-After`"),
                      "504": openai_error("past REQUEST_DEADLINE")},
    },
    "openai_models": {
        "tags": ["openai"], "summary": "The image models a request may name (OpenAI's list shape)",
        "description": "IMAGE_MODEL and the names MODEL_MAP maps, for `client.models.list()`.",
        "security": [{"bearer": []}],
        "responses": {"200": {"description": "the list", "content": {"application/json": {
                          "schema": ref("ModelList"), "example": MODELS_EXAMPLE}}},
                      "401": openai_error("a missing or wrong access key")},
    },
    "openai_model": {
        "tags": ["openai"], "summary": "One image model (`client.models.retrieve`)",
        "security": [{"bearer": []}], "parameters": [path_param("model", "a name from GET /v1/models")],
        "responses": {"200": {"description": "the model", "content": {"application/json": {
                          "schema": ref("Model"), "example": MODELS_EXAMPLE["data"][0]}}},
                      "401": openai_error("a missing or wrong access key"),
                      "404": openai_error("`model_not_found`")},
    },
    "models": {
        "tags": ["images"], "summary": "The image models, as Pollinations lists them (a JSON array; public)",
        "responses": {"200": {"description": "the names", "content": {"application/json": {
            "schema": {"type": "array", "items": STR}, "example": ["dall-e-3", "flux"]}}}},
    },
}
