"""Typed keys for the objects the app shares; each is opened and closed in a cleanup context."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from proxy.cache.base import ByteStore
from proxy.cache.entry import CacheEntry
from proxy.cache.flight import SingleFlight
from proxy.cache.images import ImageCache
from proxy.config import Settings
from proxy.hosting.stage import HostingStage
from proxy.imagegen.pipeline import ImagePipeline
from proxy.imagegen.targets import ParsedTargets
from proxy.security.auth import Secrets
from proxy.security.guard import Guard
from proxy.shared.state import SharedRedis
from proxy.store.database import Database
from proxy.upstream.breaker import Breaker
from proxy.vision.service import VisionService
from proxy.web.observer import Observer
from proxy.web.session import AdminSessions

SETTINGS = web.AppKey("settings", Settings)
SECRETS = web.AppKey("secrets", Secrets)
HTTP = web.AppKey("http", aiohttp.ClientSession)
STORE = web.AppKey("store", ByteStore)
IMAGE_CACHE = web.AppKey("image_cache", ImageCache)
FLIGHT = web.AppKey("flight", SingleFlight[CacheEntry])
BREAKER = web.AppKey("breaker", Breaker)
PIPELINE = web.AppKey("pipeline", ImagePipeline)
TARGETS = web.AppKey("targets", ParsedTargets)
SHARED = web.AppKey("shared", SharedRedis)
HOSTING = web.AppKey("hosting", HostingStage | None)  # None: IMAGE_HOSTING_ENABLED=false
OBSERVER = web.AppKey("observer", Observer)
ADMIN_SESSIONS = web.AppKey("admin_sessions", AdminSessions)
DATABASE = web.AppKey("database", Database)
GUARD = web.AppKey("guard", Guard)
VISION = web.AppKey("vision", VisionService)
