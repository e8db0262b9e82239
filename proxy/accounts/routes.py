"""Frame-Backend's account routes: ``POST /auth-{key}``, ``GET/POST /prompt-{username}``,
``POST /profile``. Unlike Frame-Backend, prompt and profile changes require the user's key or
session, and provider keys are never echoed back.

A session belongs to the caller's address, so any page a user on that address visits could make
their browser post to these routes: the posts refuse another site's ``Origin`` and take only
the body they document (JSON, or none for ``/auth-{key}``), which a page on another site cannot
send without asking Iris first (``proxy.web.bodies``). A key sent in a header is checked before
the body is read."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from proxy.accounts.identity import authenticate, header_caller, must_be, require_user
from proxy.accounts.models import PROVIDER_KEY_NAMES
from proxy.errors import BadRequest, IrisError, Unauthorized
from proxy.keys import ACCOUNTS, GUARD, SETTINGS
from proxy.security.gate import address_of, refuse_cross_site
from proxy.web.bodies import require_json, require_no_body
from proxy.web.responses import json_response


async def auth(request: web.Request) -> web.Response:
    """The glasses app's login: no body, it needs ``success == true``."""
    try:
        return await _auth(request)
    except IrisError as exc:
        return json_response({"success": False, **exc.body()}, status=exc.status, headers=exc.headers)


async def _auth(request: web.Request) -> web.Response:
    refuse_cross_site(request)
    require_no_body(request)
    guard, accounts, address = request.app[GUARD], request.app[ACCOUNTS], address_of(request)
    await guard.auth_attempt(address)
    profile = await accounts.profile_by_key(request.match_info["key"])
    if profile is None:
        await guard.key_failed(address, counted=True)
        raise Unauthorized("the key is not valid", code="invalid_key")
    ttl = request.app[SETTINGS].accounts.session_ttl
    await accounts.sessions.grant(address, profile.username, profile.stamp, ttl)
    await accounts.record_activity(profile.username, "auth", address=address)
    return json_response({"success": True, "username": profile.username,
                          "message": "authenticated", "session_ttl": ttl})


async def get_prompt(request: web.Request) -> web.Response:
    username = request.match_info["username"]
    await require_user(request, username)
    return json_response(await _prompt_state(request, username))


async def set_prompt(request: web.Request) -> web.Response:
    username = request.match_info["username"]
    _json_post(request)
    caller = await header_caller(request)
    if caller is not None:
        must_be(caller, username)
    body = await _json_object(request)
    if caller is None:
        await require_user(request, username, _str_or_none(body, "key"))
    await request.app[GUARD].profile_update(username)
    text = body.get("prompt")
    if text is not None and not isinstance(text, str):
        raise BadRequest("prompt must be a string", code="invalid_prompt")
    limit = request.app[SETTINGS].accounts.max_prompt_chars
    if text and len(text) > limit:
        raise BadRequest(f"the prompt is longer than {limit} characters", code="prompt_too_long")
    accounts = request.app[ACCOUNTS]
    await accounts.set_prompt(username, text or None)
    await accounts.record_activity(username, "prompt", custom=bool(text and text.strip()))
    return json_response({"success": True, **await _prompt_state(request, username)})


async def profile(request: web.Request) -> web.Response:
    _json_post(request)
    caller = await header_caller(request)
    body = await _json_object(request)
    username = body.get("username")
    if not isinstance(username, str) or not username:
        raise BadRequest("username is required", code="missing_username")
    keys = body.get("api_keys", {})
    if not isinstance(keys, dict) or not all(v is None or isinstance(v, str) for v in keys.values()):
        raise BadRequest("api_keys must be an object of strings", code="invalid_api_keys")
    if any(v and len(v) > 512 for v in keys.values()):
        raise BadRequest("an API key is longer than 512 characters", code="invalid_api_keys")
    if caller is None:
        caller = await authenticate(request, _str_or_none(body, "key"))
    must_be(caller, username)
    await request.app[GUARD].profile_update(username)
    accounts = request.app[ACCOUNTS]
    await accounts.set_provider_keys(username, keys)
    stored = await accounts.provider_keys(username)
    await accounts.record_activity(username, "profile", updated=sorted(keys))
    return json_response({"success": True, "username": username, "message": "profile updated",
                          "api_keys": {name: name in stored for name in PROVIDER_KEY_NAMES}})


async def _prompt_state(request: web.Request, username: str) -> dict[str, Any]:
    custom = await request.app[ACCOUNTS].prompt(username)
    default = request.app[SETTINGS].accounts.default_prompt
    return {"username": username, "prompt": custom or default, "is_custom": custom is not None,
            "default_prompt": default}


def _json_post(request: web.Request) -> None:
    """Another site's page may not post here, and a JSON body is what these routes take."""
    refuse_cross_site(request)
    require_json(request)


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_json")
    return body


def _str_or_none(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) and value else None
