"""The OpenAPI document, built from the app's own route table plus the descriptions in apidoc.

Every route the router knows appears (a route with no description gets a plain entry), so the
document cannot drift from what the app serves."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from proxy import __version__
from proxy.pages.apidoc import OPERATIONS, SCHEMAS, SECURITY_SCHEMES
from proxy.pages.apidoc_openai import OPENAI_OPERATIONS, OPENAI_SCHEMAS
from proxy.pages.apidoc_vision import VISION_OPERATIONS, VISION_SCHEMAS, VISION_SECURITY

_PATTERN = re.compile(r"\{(\w+):[^}]*\}")
HIDDEN_PREFIXES = ("/static",)


def openapi_path(resource: web.AbstractResource) -> str | None:
    info = resource.get_info()
    path = info.get("formatter") or info.get("path")
    if not isinstance(path, str) or path.startswith(HIDDEN_PREFIXES):
        return None
    return _PATTERN.sub(r"{\1}", path)


def operation(route: web.AbstractRoute) -> dict[str, Any]:
    name = route.name or (route.resource.name if route.resource else None)
    documented = (OPERATIONS.get(name or "") or OPENAI_OPERATIONS.get(name or "")
                  or VISION_OPERATIONS.get(name or ""))
    if documented is None:
        return {"summary": name or "undocumented", "responses": {"default": {"description": "see README"}}}
    return {"operationId": f"{route.method.lower()}_{name}", **documented}


def build_openapi(app: web.Application) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for resource in app.router.resources():
        path = openapi_path(resource)
        if path is None:
            continue
        for route in resource:
            if route.method in ("HEAD", "*"):
                continue
            paths.setdefault(path, {})[route.method.lower()] = operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Iris", "version": __version__,
                 "description": "AI image generation and vision behind one cached HTTP front."},
        "paths": paths,
        "components": {"schemas": {**SCHEMAS, **OPENAI_SCHEMAS, **VISION_SCHEMAS},
                       "securitySchemes": {**SECURITY_SCHEMES, **VISION_SECURITY}},
    }
