"""Signing image URLs for the owner: ``POST /sign`` (for a page's back end, and the playground,
with the access key in ``Authorization: Bearer``) and ``signed_url``, which the command line
(``iris-proxy sign``) shares. Only what the image route would accept is signed: a ``/prompt/``
(or ``/image/``) path whose parameters parse, naming one image (not ``seed=-1``) and carrying no ``key``.

Who may sign: whoever holds the access key, which already lets them make any image. So the
signer gives nobody more than they have: an anonymous visitor of the playground, which asks this
route for its snippet, has no key and gets a 401 (and a wrong key counts toward the automatic
block like any other). The key is taken from the header only, never from the URL, and the route
sends no CORS headers, so a page on another origin cannot use a visitor's browser to sign."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from aiohttp import web
from multidict import MultiDict

from proxy.config.image import ImageSettings
from proxy.errors import BadRequest
from proxy.imagegen.formats import parse_wanted
from proxy.imagegen.params import decode_path, parse_request
from proxy.imagegen.targets import image_path
from proxy.keys import ADMISSION, SETTINGS
from proxy.security.signing import SIG, Signer
from proxy.web.responses import json_response

MAX_EXPIRES = 10 * 365 * 86400  # seconds


def signed_url(signer: Signer, url: str, cfg: ImageSettings, *, expires: float | None = None,
               now: float | None = None) -> str:
    """``url`` (``/prompt/...?...``, or a whole URL) signed; ``BadRequest`` for anything the image
    route would refuse, or would answer with a new image every time."""
    parts = urlsplit(url)
    found = image_path(parts.path)
    if found is None:
        raise BadRequest("only image URLs are signed: the path must start with /prompt/ (or /image/)",
                         code="not_an_image_url")
    query = MultiDict(parse_qsl(parts.query, keep_blank_values=True))
    query.popall(SIG, None)
    req = parse_request(decode_path(found[1]), query, cfg)
    parse_wanted(query)  # format= and quality= as the route reads them
    if req.seed == -1:
        raise BadRequest("seed=-1 makes a new image on every request; a signed URL must name one image: "
                         "give a seed", code="random_seed")
    if expires is not None and not 0 < expires <= MAX_EXPIRES:
        raise BadRequest(f"expires must be seconds from now, 1 to {MAX_EXPIRES}", code="bad_parameter")
    return signer.sign(url, expires_in=expires, now=now)


async def sign_route(request: web.Request) -> web.Response:
    admission = request.app[ADMISSION]
    await admission.require_access_key(request, bearer_only=True)
    body = _body(await request.read())
    url = signed_url(admission.signer, body["path"], request.app[SETTINGS].image, expires=body.get("expires"))
    return json_response({"url": url}, headers={"Cache-Control": "no-store"})


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("path"), str):
        raise BadRequest('the body must be JSON: {"path": "/prompt/...", "expires"?: seconds}',
                         code="bad_body")
    expires = body.get("expires")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int | float)):
        raise BadRequest("expires must be a number of seconds", code="bad_parameter")
    return body
