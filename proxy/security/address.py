"""The client's address: the peer, or, when the peer is a trusted reverse proxy (TRUSTED_PROXIES),
the nearest address in X-Forwarded-For that is not itself a trusted proxy; whether the client
reached the front over HTTPS (X-Forwarded-Proto); and the host it asked for (X-Forwarded-Host).
The forwarding headers are believed from those proxies only.

A forwarding header may come as several lines (a client's own line, then the one its proxy
added): every line is read, in order, as one list. Proxies append to the right, so the list is
walked from the right, and only as far as the hops are trusted proxies: whatever a client wrote
is on the left of the first untrusted hop and never believed."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from proxy.config.env import Network
from proxy.web.view import RequestView

FORWARDED_FOR = "X-Forwarded-For"
FORWARDED_PROTO = "X-Forwarded-Proto"
FORWARDED_HOST = "X-Forwarded-Host"
IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(address: str) -> IP | None:
    """The IP address in ``address`` (an IPv4-mapped IPv6 address as IPv4, a zone id dropped), or None."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def header_lines(request: RequestView, name: str) -> str | None:
    """Every line of the header ``name`` joined with commas, in order; None when there is none."""
    values = request.headers.getall(name, ())
    return ", ".join(values) if values else None


def address_for(request: RequestView, trusted: tuple[Network, ...]) -> str:
    """The client's address of ``request`` (X-Forwarded-For is believed only from ``trusted``)."""
    if not trusted:
        return request.remote or "unknown"
    return client_address(request.remote, header_lines(request, FORWARDED_FOR), trusted)


def https_for(request: web.BaseRequest, trusted: tuple[Network, ...]) -> bool:
    """Did the client reach Iris, or the trusted proxy it connected to, over HTTPS?"""
    return client_used_https(request.secure, request.remote, header_lines(request, FORWARDED_PROTO),
                             header_lines(request, FORWARDED_FOR), trusted)


def host_for(request: web.BaseRequest, trusted: tuple[Network, ...]) -> str:
    """The host (and port) the client asked for: ``Host``, or the X-Forwarded-Host the trusted
    proxy it connected to wrote (a proxy may rewrite Host to reach Iris)."""
    forwarded = header_lines(request, FORWARDED_HOST)
    if forwarded and trusted and _trusted(request.remote or "", trusted):
        _, depth = _walk(request.remote, header_lines(request, FORWARDED_FOR), trusted)
        chosen = _nearest(forwarded, depth)
        if chosen:
            return chosen
    return request.host


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool | None:
    """True/False, or None when ``address`` is not an IP address."""
    ip = parse_ip(address)
    return None if ip is None else any(ip in net for net in trusted)


def _walk(remote: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> tuple[str, int]:
    """``(client address, depth)``: depth is how many trusted proxies the request came through,
    counted from Iris (the peer is the first), so that the client's connection is described by the
    ``depth``-th value from the right of a forwarding header; 0 when the peer is not a trusted
    proxy (nothing forwarded is believed)."""
    peer = remote or "unknown"
    if not trusted or not _trusted(peer, trusted):
        return peer, 0
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    depth = 1
    for hop in reversed(hops):
        verdict = _trusted(hop, trusted)
        if verdict is None:  # "unknown" or garbage: nothing beyond the peer can be believed
            return peer, 1
        if not verdict:
            return hop, depth
        depth += 1
    return (hops[0], depth - 1) if hops else (peer, 1)


def _nearest(values: str, depth: int) -> str | None:
    """The value a forwarding header holds for the hop ``depth`` from the right; the leftmost when a
    proxy on the way replaced the header instead of appending to it (so it holds fewer values)."""
    items = [item.strip() for item in values.split(",") if item.strip()]
    if not items or depth < 1:
        return None
    return items[-min(depth, len(items))]


def client_address(remote: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    return _walk(remote, forwarded_for, trusted)[0]


def client_used_https(secure: bool, remote: str | None, forwarded_proto: str | None,
                      forwarded_for: str | None, trusted: tuple[Network, ...]) -> bool:
    """Whether the client spoke HTTPS: to Iris itself, or to the trusted proxy it connected to,
    whose ``X-Forwarded-Proto`` value is the one at the client's hop."""
    if secure:
        return True
    if not forwarded_proto:
        return False
    _, depth = _walk(remote, forwarded_for, trusted)
    chosen = _nearest(forwarded_proto, depth)
    return chosen is not None and chosen.lower() == "https"
