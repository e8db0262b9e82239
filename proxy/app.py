"""The app factory: it only wires settings, shared objects and routes together."""

from __future__ import annotations

from aiohttp import web

from proxy.cache.context import cache_ctx
from proxy.config import Settings
from proxy.hosting.context import hosting_ctx
from proxy.imagegen.context import image_ctx
from proxy.imagegen.route import prompt_image
from proxy.imagegen.targets import targets_ctx
from proxy.keys import SECRETS, SETTINGS
from proxy.security.auth import Secrets, resolve_secrets
from proxy.security.context import security_ctx
from proxy.security.middleware import blacklist_middleware
from proxy.security.routes import add_account_routes
from proxy.shared.context import cooldowns_ctx, redis_ctx
from proxy.store.context import store_ctx
from proxy.upstream.session import http_ctx
from proxy.vision.context import vision_ctx
from proxy.vision.routes import add_vision_routes
from proxy.web.admin import cache_delete, cache_delete_key
from proxy.web.errors import errors_middleware
from proxy.web.observe import observe_ctx, observe_middleware
from proxy.web.routes import add_page_routes, setup_web
from proxy.web.status import status


def create_app(settings: Settings, secrets: Secrets | None = None) -> web.Application:
    app = web.Application(
        middlewares=[observe_middleware, errors_middleware, blacklist_middleware],
        client_max_size=settings.server.max_upload_bytes + 64 * 1024,
    )
    app[SETTINGS] = settings
    app[SECRETS] = secrets or resolve_secrets(settings.server)
    # Opened in this order, closed in reverse: each needs only what comes before it.
    app.cleanup_ctx.extend([
        http_ctx,        # the one ClientSession
        redis_ctx,       # the shared Redis client, when REDIS_URL is set
        cache_ctx,       # byte store, image cache, single flight
        image_ctx,       # backend pool, breaker, prompt LLM, pipeline
        hosting_ctx,     # image hosts (IMAGE_HOSTING_ENABLED)
        store_ctx,       # SQLite: profiles, activity, frames, blacklist
        security_ctx,    # sessions, limits, blacklist view
        vision_ctx,      # the vision cascade
        observe_ctx,     # metrics, request ids, recent generations
        targets_ctx,     # remembered request targets (hot path)
        cooldowns_ctx,   # backend cool-downs shared over Redis
    ])
    setup_web(app)
    add_routes(app)
    return app


def add_routes(app: web.Application) -> None:
    app.router.add_get("/prompt/{description:.+}", prompt_image, name="prompt_image")
    app.router.add_post("/cache/delete", cache_delete, name="cache_delete")
    app.router.add_delete("/cache/{key}", cache_delete_key, name="cache_delete_key")
    app.router.add_get("/status", status, name="status")
    add_account_routes(app)
    add_vision_routes(app)
    add_page_routes(app)
