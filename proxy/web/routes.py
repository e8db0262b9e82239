"""Wiring for the pages, the dashboard and /metrics: templates, the session key and routes."""

from __future__ import annotations

from aiohttp import web

from proxy.web import dashboard, dashboard_actions, login, pages, scrape, thumbs

ROUTES = (
    ("GET", "/", pages.playground, "playground"),
    ("GET", "/docs", pages.docs, "docs"),
    ("GET", "/openapi.json", pages.openapi, "openapi"),
    ("GET", "/metrics", scrape.metrics, "metrics"),
    ("GET", "/admin", dashboard.admin, "admin"),
    ("POST", "/admin/login", login.login, "admin_login"),
    ("POST", "/admin/logout", login.logout, "admin_logout"),
    ("POST", "/admin/cache/delete", dashboard.delete_entry, "admin_cache_delete"),
    ("GET", "/admin/thumb/{key}", thumbs.thumb, "admin_thumb"),
    ("POST", "/admin/profiles", dashboard_actions.add_profile, "admin_profile_add"),
    ("POST", "/admin/blacklist", dashboard_actions.block, "admin_block"),
    ("POST", "/admin/blacklist/remove", dashboard_actions.unblock, "admin_unblock"),
)


def setup_web(app: web.Application) -> None:
    pages.setup_pages(app)
    login.setup_sessions(app)


def add_page_routes(app: web.Application) -> None:
    for method, path, handler, name in ROUTES:
        app.router.add_route(method, path, handler, name=name)
