"""Cross-site requests: a browser on the client's network may be made, by any page it visits, to
post to Iris; the routes that act for a session (the dashboard's cookie, a glasses session bound
to the caller's address) refuse what such a page can send.

A request is cross-site when its ``Origin`` names another host (or is ``null``), or, from a browser
that sent no ``Origin``, when its ``Sec-Fetch-Site`` says ``cross-site`` or ``same-site``. The site's
own host is the request's ``Host``, or the ``X-Forwarded-Host`` of a trusted proxy
(``proxy.security.address.host_for``). Host names and ports are compared, not schemes: behind a
TLS-terminating proxy Iris sees http. A request without ``Origin`` or ``Sec-Fetch-Site`` (the
glasses app, curl, another server) is not a browser's cross-site request."""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
CROSS = ("cross-site", "same-site")


def same_host(origin: str, host: str) -> bool:
    """Does the ``Origin`` header ``origin`` name ``host`` (a ``Host`` header's value)? A port left
    out on either side is the default port of the origin's scheme."""
    try:
        parts = urlsplit(origin.strip())
        default = DEFAULT_PORTS.get(parts.scheme.lower())
        if default is None or not parts.hostname:
            return False  # "null", or not a web origin
        ours = urlsplit("//" + host.strip())
        return bool(ours.hostname) and parts.hostname == ours.hostname and \
            (parts.port or default) == (ours.port or default)
    except ValueError:  # a malformed port or address
        return False


def cross_site(origin: str | None, fetch_site: str | None, host: str) -> bool:
    if origin is not None:
        return not same_host(origin, host)
    return (fetch_site or "").strip().lower() in CROSS
