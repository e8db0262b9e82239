"""The app factory and the one place the app is wired: every shared object is opened in a cleanup
context below, in order (each needs only what comes before it) and closed in reverse; each context
only calls the owning room's constructors. Routes are added from the rooms' handlers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.accounts import routes as account_routes
from proxy.accounts.service import Accounts, open_database
from proxy.accounts.sessions import SessionStore, SqliteSessions
from proxy.accounts.sessions_redis import RedisSessions
from proxy.accounts.users import UserCache
from proxy.admin import api, dashboard, login, metrics, probes, status, thumbs
from proxy.admin.cookie import AdminSessions
from proxy.admin.metrics import BreakerSync
from proxy.admin.revocations import Revocations, SqliteRevocations
from proxy.admin.revocations_redis import RedisRevocations
from proxy.cache.backing import open_backing
from proxy.cache.entry import CacheEntry
from proxy.cache.flight import SingleFlight
from proxy.cache.images import ImageCache
from proxy.cache.slots import GenerationSlots, open_slots
from proxy.cache.slots_redis import RedisSlots
from proxy.config import Settings
from proxy.hosting.stage import HostingStage
from proxy.imagegen import openai_api
from proxy.imagegen.allowance import Allowance
from proxy.imagegen.pipeline import ImagePipeline
from proxy.imagegen.recent import FINISH as NOTES_FINISH
from proxy.imagegen.recent import RecentGenerations
from proxy.imagegen.route import prompt_image
from proxy.imagegen.safety import SafetyCheck
from proxy.imagegen.sign import sign_route
from proxy.imagegen.targets import IMAGE_ROUTE, PROMPT_ROUTE, ParsedTargets
from proxy.imagegen.variants import Variants
from proxy.keys import (
    ACCOUNTS,
    ADMIN_REVOCATIONS,
    ADMIN_SESSIONS,
    ADMISSION,
    ALLOWANCE,
    BACKEND_COUNTS,
    BREAKER,
    CONNECTION_LIMITS,
    DATABASE,
    DRAIN,
    FLIGHT,
    GUARD,
    HOST_STORE,
    HOSTING,
    HTTP,
    IMAGE_CACHE,
    LOCAL,
    OBSERVER,
    PIPELINE,
    RECENT,
    SAFETY,
    SECRETS,
    SETTINGS,
    SHARED,
    STORE,
    TARGETS,
    VARIANTS,
    VISION,
)
from proxy.lifecycle import stop_tasks
from proxy.local.models import LocalModels
from proxy.pages import views
from proxy.redis.shared import SharedRedis
from proxy.security.admission import Admission
from proxy.security.blacklist import BlacklistSignal, SqliteSignal
from proxy.security.blacklist_redis import RedisBlacklistSignal
from proxy.security.credentials import Secrets, resolve_secrets
from proxy.security.gate import admission_middleware
from proxy.security.guard import Guard
from proxy.security.limits import RateLimiter
from proxy.security.limits_redis import RedisLimiter
from proxy.security.limits_sqlite import SqliteLimiter
from proxy.security.spend import Budget, SpendLedger, SqliteSpend
from proxy.security.spend_redis import RedisSpend
from proxy.upstream.breaker import Breaker
from proxy.upstream.breaker_redis import RedisCooldowns
from proxy.upstream.transport import open_session
from proxy.vision import routes as vision_routes
from proxy.vision.analyze import analyze
from proxy.vision.cors import analyze_origins, health_origins, preflight, with_cors
from proxy.vision.dedup import DedupStore
from proxy.vision.dedup.disk import DiskDedup
from proxy.vision.dedup.redis import RedisDedup
from proxy.vision.service import VisionService
from proxy.web.drain import Drain
from proxy.web.errors import errors_middleware
from proxy.web.metrics import Metrics
from proxy.web.observe import Observer
from proxy.web.protocol import ConnectionLimits


def create_app(settings: Settings, secrets: Secrets | None = None) -> web.Application:
    observer = Observer(Metrics(), Drain())
    app = web.Application(middlewares=(observer.middleware, errors_middleware, admission_middleware),
                          client_max_size=settings.server.max_upload_bytes + 64 * 1024)
    app[SETTINGS] = settings
    app[SECRETS] = secrets or resolve_secrets(settings.server)
    app[OBSERVER] = observer
    app[DRAIN] = observer.drain
    app[ADMIN_SESSIONS] = AdminSessions(app[SECRETS].admin_token, settings.web.admin_session_ttl)
    server = settings.server
    app[CONNECTION_LIMITS] = ConnectionLimits(server.header_timeout, server.body_timeout,
                                              server.keepalive_timeout, server.max_connections,
                                              server.send_timeout)
    app.cleanup_ctx.extend([
        local_ctx,       # local models (ONNX Runtime): a model that cannot be used stops start-up first
        http_ctx,        # the one ClientSession
        redis_ctx,       # the shared Redis client, its health and signals (REDIS_URL only)
        cache_ctx,       # byte store (and the host's), image cache, single flight
        formats_ctx,     # image formats: variants and their converter threads, parsed image targets
        image_ctx,       # backend pool, breaker (cool-downs shared over Redis), prompt LLM, safety, pipeline
        hosting_ctx,     # image hosts (IMAGE_HOSTING_ENABLED)
        database_ctx,    # SQLite: profiles, activity, frames, sessions, limits, blacklist
        admin_ctx,       # dashboard logouts (revoked session ids, shared over Redis)
        security_ctx,    # limits, the blacklist and its refresh, the admission rule
        spending_ctx,    # what new images may cost: limits on misses, generation slots, the budget
        accounts_ctx,    # user cache, sessions, retention
        vision_ctx,      # the vision cascade and dedup
        observe_ctx,     # the recent-generations gallery, backend counters into the metrics
    ])
    views.setup_pages(app)
    add_routes(app)
    return app


async def local_ctx(app: web.Application) -> AsyncIterator[None]:
    app[LOCAL] = local = await LocalModels.open(app[SETTINGS])
    yield
    local.close()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    app[HTTP] = open_session(app[SETTINGS].image.timeouts)
    yield
    await app[HTTP].close()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    if not app[SETTINGS].redis.enabled:
        yield
        return
    app[SHARED] = await SharedRedis.open(app[SETTINGS].redis)
    yield
    await app[SHARED].close()


async def cache_ctx(app: web.Application) -> AsyncIterator[None]:
    backing = await open_backing(app[SETTINGS].cache, app.get(SHARED))
    images = ImageCache(backing.store, backing.generation, app[SETTINGS].cache,
                        failure_scope=app[SETTINGS].image.fingerprint)
    flight: SingleFlight[CacheEntry] = SingleFlight(backing.lock)
    app[STORE], app[IMAGE_CACHE], app[FLIGHT] = backing.store, images, flight
    app[HOST_STORE] = backing.host_store
    flusher = asyncio.create_task(images.run_flusher())
    yield
    await stop_tasks([flusher])
    await flight.close()
    await images.flush_counts()
    images.close()
    await backing.close()


async def formats_ctx(app: web.Application) -> AsyncIterator[None]:
    app[VARIANTS] = variants = Variants(app[SETTINGS].formats, app[IMAGE_CACHE], app[FLIGHT])
    app[TARGETS] = ParsedTargets(app[SETTINGS].image)
    yield
    variants.close()


async def image_ctx(app: web.Application) -> AsyncIterator[None]:
    app[BREAKER] = breaker = Breaker(app[SETTINGS].image.breaker)
    if (shared := app.get(SHARED)) is not None:
        RedisCooldowns(breaker, shared.bus)
    app[SAFETY] = safety = SafetyCheck.open(app[SETTINGS], app[LOCAL], app[STORE], app[OBSERVER].metrics)
    app[PIPELINE] = ImagePipeline.open(app[SETTINGS], app[HTTP], app[STORE], breaker, safety)
    refusals = asyncio.create_task(safety.refusals.run(), name="safety-refusals")
    yield
    safety.refusals.stop()
    await stop_tasks([refusals], finish=NOTES_FINISH)


async def hosting_ctx(app: web.Application) -> AsyncIterator[None]:
    app[HOSTING] = HostingStage.open(app[SETTINGS], app[HTTP], app[IMAGE_CACHE], app[FLIGHT])
    yield


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    app[DATABASE] = db = await open_database(app[SETTINGS])
    yield
    await db.close()


async def admin_ctx(app: web.Application) -> AsyncIterator[None]:
    revocations: Revocations = SqliteRevocations(app[DATABASE])
    if (shared := app.get(SHARED)) is not None:
        revocations = RedisRevocations(shared, revocations)
    app[ADMIN_REVOCATIONS] = revocations
    yield


async def security_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, db, shared = app[SETTINGS].security, app[DATABASE], app.get(SHARED)
    local_limiter = SqliteLimiter(db)
    limiter: RateLimiter = local_limiter if shared is None else RedisLimiter(shared, local_limiter)
    signal: BlacklistSignal = SqliteSignal(db)
    if shared is not None:
        signal = RedisBlacklistSignal(shared, signal)
    app[GUARD] = guard = Guard(settings, db, limiter, signal)
    app[ADMISSION] = Admission(guard, app[SECRETS], require_signed=settings.require_signed)
    await guard.blacklist.reload()
    refresher = asyncio.create_task(guard.blacklist.refresh_forever(settings.blacklist_refresh))
    yield
    await stop_tasks([refresher])
    await local_limiter.settle()  # hits admitted but not yet written


async def spending_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, shared = app[SETTINGS], app.get(SHARED)
    cfg = settings.spending
    slots: GenerationSlots | None = None
    if cfg.max_in_flight:
        slots = open_slots(settings.cache.directory / "generations.lock", cfg.max_in_flight)
        if shared is not None:
            slots = RedisSlots(shared, slots)
    ledger: SpendLedger = SqliteSpend(app[DATABASE])
    if shared is not None:
        ledger = RedisSpend(shared, ledger)
    app[ALLOWANCE] = allowance = Allowance(cfg, app[GUARD].limiter, slots, Budget(cfg, ledger),
                                           app[OBSERVER].metrics)
    yield
    await allowance.close()


async def accounts_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, db, shared = app[SETTINGS].accounts, app[DATABASE], app.get(SHARED)
    users = UserCache(db)
    sessions: SessionStore = SqliteSessions(db, users)
    if shared is not None:
        sessions = RedisSessions(shared, sessions)
    app[ACCOUNTS] = accounts = Accounts(db, users, sessions)
    await users.check()
    tasks = [asyncio.create_task(users.refresh_forever(settings.profile_refresh)),
             asyncio.create_task(accounts.sweep_forever(settings.retention_interval))]
    yield
    await stop_tasks(tasks)


async def vision_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg, shared = app[SETTINGS].vision, app.get(SHARED)
    dedup: DedupStore = DiskDedup(app[HOST_STORE], ttl=2 * cfg.dedup_seconds)
    if shared is not None:
        dedup = RedisDedup(shared, dedup, ttl=2 * cfg.dedup_seconds)
    app[VISION] = service = await VisionService.open(app[SETTINGS], app[HTTP], app[LOCAL], dedup,
                                                     app[DATABASE])
    yield
    await service.close()


async def observe_ctx(app: web.Application) -> AsyncIterator[None]:
    app[RECENT] = recent = RecentGenerations(app[STORE], app[SETTINGS].web.recent_generations)
    app[BACKEND_COUNTS] = sync = BreakerSync(app[OBSERVER].metrics, [app[BREAKER], app[VISION].breaker],
                                             app[FLIGHT])
    tasks = [asyncio.create_task(recent.run(), name="recent-generations"),
             asyncio.create_task(sync.run(), name="breaker-metrics")]
    yield
    recent.stop()
    await stop_tasks(tasks[:1], finish=NOTES_FINISH)
    await stop_tasks(tasks[1:])
    sync.once()


ROUTES = (
    ("GET", "/prompt/{description:.+}", prompt_image, PROMPT_ROUTE),
    ("GET", "/image/{description:.+}", prompt_image, IMAGE_ROUTE),
    ("POST", "/sign", sign_route, "sign"),
    ("POST", "/v1/images/generations", openai_api.generations, "openai_images"),
    ("GET", "/v1/models", openai_api.models, "openai_models"),
    ("GET", "/v1/models/{model}", openai_api.model, "openai_model"),
    ("GET", "/models", openai_api.pollinations_models, "models"),
    ("POST", "/cache/delete", api.cache_delete, "cache_delete"),
    ("DELETE", "/cache/{key}", api.cache_delete_key, "cache_delete_key"),
    ("GET", "/status", status.status, "status"),
    ("GET", "/healthz", probes.healthz, "healthz"),
    ("GET", "/readyz", probes.readyz, "readyz"),
    ("GET", "/", views.playground, "playground"),
    ("GET", "/docs", views.docs, "docs"),
    ("GET", "/openapi.json", views.openapi, "openapi"),
    ("GET", "/metrics", metrics.metrics, "metrics"),
    ("GET", "/admin", dashboard.admin, "admin"),
    ("POST", "/admin/login", login.login, "admin_login"),
    ("POST", "/admin/logout", login.logout, "admin_logout"),
    ("POST", "/admin/cache/delete", dashboard.delete_entry, "admin_cache_delete"),
    ("GET", "/admin/thumb/{key}", thumbs.thumb, "admin_thumb"),
    ("POST", "/admin/profiles", dashboard.add_profile, "admin_profile_add"),
    ("POST", "/admin/blacklist", dashboard.block, "admin_block"),
    ("POST", "/admin/blacklist/remove", dashboard.unblock, "admin_unblock"),
    ("POST", "/auth-{key}", account_routes.auth, "auth"),
    ("GET", "/prompt-{username}", account_routes.get_prompt, "get_prompt"),
    ("POST", "/prompt-{username}", account_routes.set_prompt, "set_prompt"),
    ("POST", "/profile", account_routes.profile, "profile"),
    ("POST", "/process", vision_routes.process, "process"),
    ("POST", "/analyze", with_cors(analyze, analyze_origins), "analyze"),
    ("OPTIONS", "/analyze", preflight(analyze_origins), "analyze_preflight"),
    ("GET", "/health", with_cors(vision_routes.health, health_origins), "health"),
    ("OPTIONS", "/health", preflight(health_origins), "health_preflight"),
)


def add_routes(app: web.Application) -> None:
    for method, path, handler, name in ROUTES:
        if method == "GET":
            app.router.add_get(path, handler, name=name)  # and HEAD
        else:
            app.router.add_route(method, path, handler, name=name)
