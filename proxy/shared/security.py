"""With REDIS_URL, the security state (SECURITY_STATE, local by default) becomes the fallback of
its Redis twin: limits, sessions and the blacklist signal are shared while Redis answers."""

from __future__ import annotations

from aiohttp import web

from proxy.keys import SHARED
from proxy.security.state import SecurityState
from proxy.shared.limits import SharedLimiter
from proxy.shared.sessions import SharedSessions
from proxy.shared.signal import SharedSignal


def shared_security(app: web.Application, local: SecurityState) -> SecurityState:
    shared = app.get(SHARED)
    if shared is None:
        return local
    args = (shared.client, shared.settings.prefix, shared.health)
    return SecurityState(SharedLimiter(*args, local.limiter), SharedSessions(*args, local.sessions),
                         SharedSignal(*args, local.signal))
