"""Helpers for the page tests: logging in to the dashboard and reading its forms."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import ADMIN_TOKEN

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def login(client: TestClient, token: str = ADMIN_TOKEN) -> Any:
    return await client.post("/admin/login", data={"token": token}, allow_redirects=False)


async def dashboard(client: TestClient) -> tuple[str, str]:
    """Logs in and returns the dashboard's HTML and its CSRF token."""
    resp = await login(client)
    assert resp.status == 303, await resp.text()
    page = await client.get("/admin")
    html = await page.text()
    match = CSRF.search(html)
    assert match, "the dashboard has no CSRF field"
    return html, match.group(1)
