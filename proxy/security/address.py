"""The client's address: the peer, or, when the peer is a trusted reverse proxy (TRUSTED_PROXIES),
the nearest address in X-Forwarded-For that is not itself a trusted proxy; and whether the client
reached the front over HTTPS (X-Forwarded-Proto, believed from those proxies only)."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from proxy.config.env import Network


def address_for(request: web.BaseRequest, trusted: tuple[Network, ...]) -> str:
    """The client's address of ``request`` (X-Forwarded-For is believed only from ``trusted``)."""
    return client_address(request.remote, request.headers.get("X-Forwarded-For"), trusted)


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool | None:
    """True/False, or None when ``address`` is not an IP address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    return any(ip in net for net in trusted)


def client_address(remote: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    peer = remote or "unknown"
    if not trusted or not forwarded_for or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        verdict = _trusted(hop, trusted)
        if verdict is None:
            return peer
        if not verdict:
            return hop
    return hops[0] if hops else peer


def client_used_https(secure: bool, remote: str | None, forwarded_proto: str | None,
                      trusted: tuple[Network, ...]) -> bool:
    """Whether the client spoke HTTPS: to Iris itself, or to the trusted proxy in front, whose
    ``X-Forwarded-Proto`` names it first (proxies in a chain append their own)."""
    if secure:
        return True
    if not trusted or not forwarded_proto or not _trusted(remote or "", trusted):
        return False
    return forwarded_proto.split(",")[0].strip().lower() == "https"
