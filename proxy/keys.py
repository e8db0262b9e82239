"""Typed keys for the objects the app shares, each opened and closed in a cleanup context of
``proxy.app``. The types are imported for the type checker only, so any room may import these
keys without importing every other room."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    import aiohttp

    from proxy.accounts.service import Accounts
    from proxy.admin.cookie import AdminSessions
    from proxy.admin.metrics import BreakerSync
    from proxy.admin.revocations import Revocations
    from proxy.cache.entry import CacheEntry
    from proxy.cache.flight import SingleFlight
    from proxy.cache.images import ImageCache
    from proxy.cache.stores.base import ByteStore
    from proxy.config import Settings
    from proxy.db.database import Database
    from proxy.hosting.stage import HostingStage
    from proxy.imagegen.allowance import Allowance
    from proxy.imagegen.pipeline import ImagePipeline
    from proxy.imagegen.recent import RecentGenerations
    from proxy.imagegen.safety import SafetyCheck
    from proxy.imagegen.targets import ParsedTargets
    from proxy.imagegen.variants import Variants
    from proxy.local.models import LocalModels
    from proxy.redis.shared import SharedRedis
    from proxy.security.admission import Admission
    from proxy.security.credentials import Secrets
    from proxy.security.guard import Guard
    from proxy.upstream.breaker import Breaker
    from proxy.vision.service import VisionService
    from proxy.web.drain import Drain
    from proxy.web.observe import Observer
    from proxy.web.protocol import ConnectionLimits

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
LOCAL: web.AppKey[LocalModels] = web.AppKey("local")  # local models (none loaded without a setting asking)
SECRETS: web.AppKey[Secrets] = web.AppKey("secrets")
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("http")
SHARED: web.AppKey[SharedRedis] = web.AppKey("shared")  # only with REDIS_URL
STORE: web.AppKey[ByteStore] = web.AppKey("store")
HOST_STORE: web.AppKey[ByteStore] = web.AppKey("host_store")  # this host's disk store (STORE's fallback)
IMAGE_CACHE: web.AppKey[ImageCache] = web.AppKey("image_cache")
FLIGHT: web.AppKey[SingleFlight[CacheEntry]] = web.AppKey("flight")
BREAKER: web.AppKey[Breaker] = web.AppKey("breaker")
PIPELINE: web.AppKey[ImagePipeline] = web.AppKey("pipeline")
SAFETY: web.AppKey[SafetyCheck] = web.AppKey("safety")  # the safety check of generated images (SAFETY_CHECK)
TARGETS: web.AppKey[ParsedTargets] = web.AppKey("targets")
VARIANTS: web.AppKey[Variants] = web.AppKey("variants")  # images in other formats, and the format rules
RECENT: web.AppKey[RecentGenerations] = web.AppKey("recent")
HOSTING: web.AppKey[HostingStage | None] = web.AppKey("hosting")  # None: IMAGE_HOSTING_ENABLED=false
DATABASE: web.AppKey[Database[Any]] = web.AppKey("database")
GUARD: web.AppKey[Guard] = web.AppKey("guard")
ADMISSION: web.AppKey[Admission] = web.AppKey("admission")
ALLOWANCE: web.AppKey[Allowance] = web.AppKey("allowance")
ACCOUNTS: web.AppKey[Accounts] = web.AppKey("accounts")
VISION: web.AppKey[VisionService] = web.AppKey("vision")
OBSERVER: web.AppKey[Observer] = web.AppKey("observer")
DRAIN: web.AppKey[Drain] = web.AppKey("drain")
BACKEND_COUNTS: web.AppKey[BreakerSync] = web.AppKey("backend_counts")  # the breakers' counts, every worker's
ADMIN_SESSIONS: web.AppKey[AdminSessions] = web.AppKey("admin_sessions")
CONNECTION_LIMITS: web.AppKey[ConnectionLimits] = web.AppKey("connection_limits")
ADMIN_REVOCATIONS: web.AppKey[Revocations] = web.AppKey("admin_revocations")
