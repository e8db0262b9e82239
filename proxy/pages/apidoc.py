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
        "hit_ratio": {"type": ["number", "null"]}}},
    "CacheDeleteBody": {"type": "object", "required": ["description"], "properties": {
        "description": STR, "width": INT, "height": INT, "model": STR, "seed": INT}},
    "CacheDeleted": {"type": "object", "required": ["deleted", "key"], "properties": {
        "deleted": {"const": True}, "key": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}},
}

IMAGE = {"description": "The image; `X-Cache: HIT|MISS`, `ETag`, immutable caching, CORS `*`.",
         "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}

OPERATIONS: dict[str, dict[str, Any]] = {
    "prompt_image": {
        "tags": ["images"], "summary": "An image for a prompt",
        "description": "The description is the rest of the path, percent-encoded; it may contain `/`. "
                       "Embed it as `<img src=...>`. Identical requests are served from the cache.",
        "security": [{"accessKey": []}, {"bearer": []}],
        "parameters": [
            path_param("description", "what to draw, percent-encoded"),
            query("key", "the access key (or `Authorization: Bearer KEY`)", STR),
            query("width", "pixels, 64 to MAX_IMAGE_SIDE (default 1024)", INT),
            query("height", "pixels, 64 to MAX_IMAGE_SIDE (default 1024)", INT),
            query("seed", "default 42; -1 picks a random seed", INT),
            query("model", "passed to the backend, mapped by MODEL_MAP (default: IMAGE_MODEL)", STR),
            query("enhance", "prompt enhancement for this request", BOOL_STR),
            query("negative_prompt", "what to avoid, for backends that accept it", STR),
        ],
        "responses": {"200": IMAGE, "304": {"description": "`If-None-Match` matched the ETag"},
                      "400": error("a malformed encoding, a bad number or an over-long prompt"),
                      "401": error("a missing or wrong access key"),
                      "502": error("every backend, the rewrite and the fallback failed"),
                      "504": error("past REQUEST_DEADLINE")},
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

SECURITY_SCHEMES = {
    "accessKey": {"type": "apiKey", "in": "query", "name": "key"},
    "adminToken": {"type": "apiKey", "in": "header", "name": "X-Admin-Token"},
    "bearer": {"type": "http", "scheme": "bearer"},
}
