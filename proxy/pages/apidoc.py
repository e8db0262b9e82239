"""The people-facing description of each route, keyed by route name. The OpenAPI document and
the /docs page put these on the paths and methods found in the app's own route table."""

from __future__ import annotations

from typing import Any


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error(description: str) -> dict[str, Any]:
    return json_body(ref("Error"), description)


def query(name: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}}


# How a page's back end signs image URLs itself, with the signing key (IMAGE_SIGNING_KEYS, or
# DATA_DIR/secrets/signing-key). Shown on /docs and in the README; the tests run it.
SIGNING_PYTHON = """\
import base64, hmac
from urllib.parse import parse_qsl, quote, unquote, urlsplit

def sign(url: str, signing_key: str) -> str:
    \"\"\"url: "/prompt/...?width=512&seed=7" (add &exp=UNIX_SECONDS to make it expire).\"\"\"
    parts = urlsplit(url)
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "sig"]
    path = quote(unquote(parts.path), safe="/")
    pairs = [f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params]
    message = f"{path}?{'&'.join(sorted(pairs))}".encode()
    digest = hmac.digest(signing_key.encode(), message, "sha256")
    sig = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return f"{path}?{'&'.join([*pairs, 'sig=' + sig])}"
"""

ADMIN_AUTH: list[dict[str, list[str]]] = [{"adminToken": []}, {"bearer": []}]
INT = {"type": "integer"}
STR = {"type": "string"}
BOOL_STR = {"type": "string", "enum": ["true", "false"]}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": STR, "message": STR}}}},
    "Status": {"type": "object", "required": ["status", "version"], "properties": {
        "status": {"const": "ok"}, "version": STR, "time": {"type": "number"},
        "backends": {"type": "array", "items": ref("Backend")}, "cache": ref("CacheStats")}},
    "Backend": {"type": "object", "required": ["label", "url", "model", "weight", "state"], "properties": {
        "label": STR, "url": STR, "model": {"type": ["string", "null"]}, "weight": INT, "kind": STR,
        "token": {"type": "boolean"}, "state": {"enum": ["healthy", "degraded", "cooling_down"]},
        "cooldown_remaining": {"type": "number"}, "latency_ms": {"type": ["number", "null"]},
        "calls": INT, "failures": INT, "refusals": INT, "rejected": INT}},
    "Readiness": {"type": "object", "required": ["status", "checks"], "properties": {
        "status": {"enum": ["ready", "not_ready"]},
        "checks": {"type": "object", "additionalProperties": STR,
                   "description": "cache, database and (with REDIS_URL) redis: `ok` or what failed"}}},
    "CacheStats": {"type": "object", "required": ["hits", "misses"], "properties": {
        "keys": INT, "bytes": INT, "hits": INT, "misses": INT,
        "hit_ratio": {"type": ["number", "null"]},
        "store_files": {"type": "object", "properties": {"opened": INT, "open": INT, "dropped": INT},
                        "description": "this worker's hits of images over CACHE_MEMORY_ITEM_BYTES sent "
                                       "from the disk store's file of them, those files open now, and "
                                       "any closed late, when dropped (a bug)"}}},
    "CacheDeleteBody": {"type": "object", "required": ["description"], "properties": {
        "description": STR, "width": INT, "height": INT, "model": STR, "seed": INT}},
    "CacheDeleted": {"type": "object", "required": ["deleted", "key"], "properties": {
        "deleted": {"const": True}, "key": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}},
    "SignBody": {"type": "object", "required": ["path"], "properties": {
        "path": {"type": "string", "description": "`/prompt/...?...` (or a whole URL), without `key`"},
        "expires": {"type": "number", "description": "seconds from now until the URL stops working"}}},
    "Signed": {"type": "object", "required": ["url"], "properties": {
        "url": {"type": "string", "description": "the same path and query with `sig` (and `exp`) added"}}},
}

IMAGE = {"description": "The image; `X-Cache: HIT|MISS`, `ETag`, immutable caching, CORS `*`.",
         "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}

OPERATIONS: dict[str, dict[str, Any]] = {
    "prompt_image": {
        "tags": ["images"], "summary": "An image for a prompt",
        "description": "The description is the rest of the path, percent-encoded; it may contain `/`. "
                       "Embed it as `<img src=...>`: signed (`sig`, made by `POST /sign` or "
                       "`iris-proxy sign`), a page needs no key. Identical requests are served from the "
                       "cache; new images are limited per address and credential, in flight and by the "
                       "daily budget (cached ones never are).",
        "security": [{"signature": []}, {"accessKey": []}, {"bearer": []}],
        "parameters": [
            path_param("description", "what to draw, percent-encoded"),
            query("sig", "the signature of a signed URL: HMAC-SHA256 of the path and every other "
                  "parameter, base64url; no key is needed with it", STR),
            query("exp", "when a signed URL stops working (Unix seconds; covered by `sig`)", INT),
            query("key", "the access key (or `Authorization: Bearer KEY`); refused with REQUIRE_SIGNED", STR),
            query("width", "pixels, 64 to MAX_IMAGE_SIDE (default 1024)", INT),
            query("height", "pixels, 64 to MAX_IMAGE_SIDE (default 1024)", INT),
            query("seed", "default 42; -1 picks a random seed", INT),
            query("model", "passed to the backend, mapped by MODEL_MAP (default: IMAGE_MODEL)", STR),
            query("enhance", "prompt enhancement for this request", BOOL_STR),
            query("negative_prompt", "what to avoid, for backends that accept it", STR),
            query("image", "input image URL(s), separated by `,` or `|`: image-to-image through backends "
                  "that edit (EDIT_BACKENDS), fetched from public addresses only; part of the cache key",
                  STR),
            query("format", "`png`, `jpeg`, `webp` or `avif`: the image converted (once, cached beside the "
                  "original, its own ETag). Without it, `Accept` chooses AVIF, then WebP "
                  "(NEGOTIATE_FORMATS), and the answer carries `Vary: Accept`",
                  {"enum": ["png", "jpeg", "jpg", "webp", "avif"]}),
            query("quality", "1 to 100: the quality of a converted lossy format (JPEG_QUALITY, "
                  "WEBP_QUALITY, AVIF_QUALITY by default); or `low`, `medium`, `high`, `hd`, `standard`, "
                  "`auto`: how carefully the backend renders (part of the cache key). Both may be given",
                  STR),
            query("style", "`vivid` or `natural`, for backends that take it (part of the cache key)",
                  {"enum": ["vivid", "natural"]}),
        ],
        "responses": {"200": IMAGE, "304": {"description": "`If-None-Match` matched the ETag"},
                      "302": {"description": "with image hosting: the hosted image"},
                      "400": error("a malformed encoding, a bad number or an over-long prompt; "
                                   "`bad_input_image` for an input image that cannot be used"),
                      "401": error("a missing or wrong access key (`signature_required` with "
                                   "REQUIRE_SIGNED)"),
                      "403": error("`bad_signature`: the URL was changed after signing; `expired`; "
                                   "`blocked`"),
                      "429": error("`generate_limited` (RATE_LIMIT_GENERATE) or `budget_exhausted` "
                                   "(DAILY_BUDGET), with `Retry-After`; cached images still answer"),
                      "502": error("every backend, the rewrite and the fallback failed"),
                      "503": error("`generations_busy`: MAX_GENERATIONS_IN_FLIGHT, with `Retry-After`"),
                      "504": error("past REQUEST_DEADLINE")},
    },
    "sign": {
        "tags": ["images"], "summary": "Sign an image URL for a page (no key in the page)",
        "description": "For a page's back end (and the playground): the access key in "
                       "`Authorization: Bearer` (never in the URL); no CORS. The path must be one the "
                       "image route accepts, naming one image (`seed=-1` and `key` are refused).",
        "security": [{"bearer": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref("SignBody")}}},
        "responses": {"200": json_body(ref("Signed"), "the signed URL"),
                      "400": error("not a valid image URL, or a bad body"),
                      "401": error("a missing or wrong access key")},
    },
    "cache_delete": {
        "tags": ["admin"], "summary": "Delete the cache entry a GET would use",
        "security": ADMIN_AUTH,
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": ref("CacheDeleteBody")}}},
        "responses": {"200": json_body(ref("CacheDeleted"), "deleted"),
                      "400": error("the body is not the expected JSON"),
                      "401": error("a missing or wrong admin token"),
                      "404": error("no such entry")},
    },
    "cache_delete_key": {
        "tags": ["admin"], "summary": "Delete a cache entry by key (the image's ETag)",
        "security": ADMIN_AUTH, "parameters": [path_param("key", "64 hex digits")],
        "responses": {"200": json_body(ref("CacheDeleted"), "deleted"),
                      "400": error("not a cache key"), "401": error("a missing or wrong admin token"),
                      "404": error("no such entry")},
    },
    "status": {
        "tags": ["operations"], "summary": "Health; with the admin token, backends and cache",
        "responses": {"200": json_body(ref("Status"), "never a secret; backends only for admins")},
    },
    "healthz": {
        "tags": ["operations"], "summary": "Liveness: the process and its event loop answer",
        "description": "No I/O: it fails only when the worker itself is stuck. For orchestrators' "
                       "liveness probes.",
        "responses": {"200": json_body({"type": "object", "properties": {
            "status": {"const": "alive"}, "version": STR}}, "alive")},
    },
    "readyz": {
        "tags": ["operations"], "summary": "Readiness: the cache store, the database and Redis answer",
        "description": "Each check is bounded (2 s). `iris-proxy health` asks this route; load balancers "
                       "and `HEALTHCHECK` should too.",
        "responses": {
            "200": json_body(ref("Readiness"), "ready: every check is `ok`"),
            "503": json_body(ref("Readiness"), "not ready: the failed checks say what went wrong"),
        },
    },
    "metrics": {
        "tags": ["operations"], "summary": "Prometheus metrics (text exposition format)",
        "description": "Requests by route and status, latency histograms, cache hits and misses, "
                       "backend calls, failures and cool-downs, coalesced requests, dedup savings. "
                       "Needs the admin token (or a dashboard session) unless METRICS_PUBLIC=true.",
        "security": ADMIN_AUTH,
        "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": STR}}},
                      "401": error("a missing or wrong admin token")},
    },
    "openapi": {"tags": ["pages"], "summary": "This API as an OpenAPI 3.1 document",
                "responses": {"200": json_body({"type": "object", "required": ["openapi", "paths"]},
                                               "the document")}},
    "playground": {"tags": ["pages"], "summary": "The playground: try a prompt, copy the <img> snippet",
                   "responses": {"200": {"description": "an HTML page"}}},
    "docs": {"tags": ["pages"], "summary": "This documentation",
             "responses": {"200": {"description": "an HTML page"}}},
    "admin": {"tags": ["pages"], "summary": "The admin dashboard (or its login form)",
              "responses": {"200": {"description": "an HTML page"}}},
}

OPERATIONS["image"] = {**OPERATIONS["prompt_image"],
                       "summary": "An image for a prompt, on Pollinations' newer path (the same images)",
                       "description": "The same route as `/prompt/{description}`: the same parameters, "
                                      "answers and cache entries (a signed URL is signed for its own path)."}

SECURITY_SCHEMES = {
    "signature": {"type": "apiKey", "in": "query", "name": "sig"},
    "accessKey": {"type": "apiKey", "in": "query", "name": "key"},
    "adminToken": {"type": "apiKey", "in": "header", "name": "X-Admin-Token"},
    "bearer": {"type": "http", "scheme": "bearer"},
}
