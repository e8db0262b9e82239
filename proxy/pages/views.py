"""The HTML pages' plumbing (Jinja2 templates, static files, headers) and the public pages:
the playground at GET / and the API docs at GET /docs (with GET /openapi.json)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
import orjson
from aiohttp import web
from markupsafe import Markup, escape

from proxy import __version__
from proxy.keys import SETTINGS
from proxy.pages.apidoc import SIGNING_PYTHON
from proxy.pages.apidoc_openai import OPENAI_PYTHON
from proxy.pages.openapi import build_openapi
from proxy.shipped import shipped
from proxy.web.responses import json_response

STATIC = Path(__file__).resolve().parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def setup_pages(app: web.Application) -> None:
    templates = shipped("templates")
    if templates is None:
        raise RuntimeError("the page templates are not installed with Iris: reinstall iris-proxy")
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(templates), autoescape=True,
                               undefined=jinja2.StrictUndefined)
    env.globals.update(version=__version__)
    env.filters.update(bytes=human_bytes, ago=ago, ticks=ticks, money=money)
    app.router.add_static("/static/", STATIC, name="static", append_version=True)


def render(template: str, request: web.Request, context: dict[str, Any], status: int = 200) -> web.Response:
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    response.headers.update(PAGE_HEADERS)
    return response


async def playground(request: web.Request) -> web.Response:
    app = request.app
    image = app[SETTINGS].image
    return render("playground.html", request, {
        "page": "playground", "models": list(image.models), "min_side": image.min_side,
        "max_side": image.max_side, "width": min(image.default_width, 1024),
        "height": min(image.default_height, 1024), "seed": image.default_seed,
        "max_prompt": image.max_prompt_length,
    })


TAG_ORDER = ("images", "openai", "vision", "admin", "operations", "pages", "dashboard")
TAG_TITLES = {"images": "Images", "openai": "OpenAI-compatible API", "vision": "Vision and glasses",
              "admin": "Cache administration", "operations": "Operations", "pages": "Pages",
              "dashboard": "Dashboard forms", "other": "Other"}


def grouped(spec: dict[str, Any]) -> list[tuple[str, str, list[tuple[str, str, dict[str, Any]]]]]:
    """The operations by their first tag, in a reading order: (tag, title, [(method, path, op)])."""
    groups: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            tag = (op.get("tags") or ["other"])[0]
            groups.setdefault(tag, []).append((method, path, op))
    order = [t for t in TAG_ORDER if t in groups] + sorted(set(groups) - set(TAG_ORDER))
    return [(tag, TAG_TITLES.get(tag, tag.title()), groups[tag]) for tag in order]


async def docs(request: web.Request) -> web.Response:
    spec = build_openapi(request.app)
    return render("docs.html", request, {"page": "docs", "spec": spec, "groups": grouped(spec),
                                         "signing_python": SIGNING_PYTHON, "openai_python": OPENAI_PYTHON,
                                         "example": example})


def example(op: dict[str, Any], part: str) -> str | None:
    """The JSON example of an operation's request body (``part="request"``) or 200 answer, shown
    on /docs as it is in /openapi.json."""
    holder = op.get("requestBody") if part == "request" else op.get("responses", {}).get("200")
    media = (holder or {}).get("content", {}).get("application/json", {})
    if "example" not in media:
        return None
    return orjson.dumps(media["example"], option=orjson.OPT_INDENT_2).decode()


async def openapi(request: web.Request) -> web.Response:
    return json_response(build_openapi(request.app), headers={"Access-Control-Allow-Origin": "*"})


_TICKS = re.compile(r"`([^`]+)`")


def ticks(text: str) -> Markup:
    """Escapes the text, then shows `quoted` parts as code."""
    return Markup(_TICKS.sub(lambda m: f"<code>{m.group(1)}</code>", str(escape(text))))


def money(value: float | None) -> str:
    """An amount in BACKEND_PRICES' unit, without pretending to know the currency."""
    if value is None:
        return "–"
    return f"{value:,.2f}" if value >= 1 or value == 0 else f"{value:.4g}"


def human_bytes(value: float | None) -> str:
    if value is None:
        return "–"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def ago(stamp: float | None) -> str:
    if not stamp:
        return "–"
    seconds = max(0, int(time.time() - stamp))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"
