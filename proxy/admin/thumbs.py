"""GET /admin/thumb/{key}: a small JPEG of a cached image for the dashboard's gallery."""

from __future__ import annotations

import asyncio
import io
import re

from aiohttp import web
from PIL import Image

from proxy.admin.login import require_admin_page
from proxy.cache.entry import IMAGE
from proxy.keys import IMAGE_CACHE

SIDE = 320
_KEY = re.compile(r"[0-9a-f]{64}")
GONE = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 160 160"><rect width="160" height="160" '
        b'fill="#eef0f4"/><text x="80" y="86" font-family="sans-serif" font-size="14" fill="#8a93a6" '
        b'text-anchor="middle">not in cache</text></svg>')


def thumbnail(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((SIDE, SIDE))
        out = io.BytesIO()
        image.convert("RGB").save(out, "JPEG", quality=82)
        return out.getvalue()


async def thumb(request: web.Request) -> web.Response:
    await require_admin_page(request)
    key = request.match_info["key"].lower()
    entry = await request.app[IMAGE_CACHE].get(key) if _KEY.fullmatch(key) else None
    headers = {"Cache-Control": "private, max-age=60", "X-Content-Type-Options": "nosniff"}
    if entry is None or entry.kind != IMAGE:
        return web.Response(body=GONE, content_type="image/svg+xml", headers=headers)
    try:
        body = await asyncio.get_running_loop().run_in_executor(None, thumbnail, entry.body)
    except (OSError, ValueError):
        return web.Response(body=entry.body, content_type=entry.content_type, headers=headers)
    return web.Response(body=body, content_type="image/jpeg", headers=headers)
