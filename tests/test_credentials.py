"""The server's credentials and how a request's key is read and compared: an empty secret never
matches, only the Bearer scheme carries a key, the access key and the admin token are not each
other, and no secret shows in the ``repr`` of anything that holds one."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from proxy.accounts.keyring import Keyring
from proxy.accounts.models import Profile
from proxy.accounts.users import UserState
from proxy.config import load_settings
from proxy.config.backends import BackendSpec
from proxy.errors import ConfigError
from proxy.keys import GUARD
from proxy.security.admission import access_key_of, admin_token_of
from proxy.security.credentials import Secrets, bearer_of, load_or_create, resolve_secrets, same, signing_keys
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.support.pages_fakes import login

SECRET_ENV = {
    "PROXY_ACCESS_KEY": "secret-access-key-AAAA", "ADMIN_TOKEN": "secret-admin-token-BBBB",
    "AUTH_TOKEN": "secret-backend-token-CCCC", "LLM_OPTIMIZATION_API_URL": "https://llm.example/v1",
    "LLM_OPTIMIZATION_TOKEN": "secret-llm-token-DDDD", "GEMINI_API_KEY": "secret-gemini-EEEE",
    "DEEPSEEK_API_KEY": "secret-deepseek-FFFF", "QWEN_API_KEY": "secret-qwen-GGGG",
    "OPENAI_API_KEY": "secret-openai-HHHH", "IMAGE_HOSTING_KEY": "secret-hosting-IIII",
    "IMAGE_HOSTING_AUTH_CODE": "secret-authcode-JJJJ", "PROXY_SECRET_KEY": "secret-master-KKKK",
    "REDIS_URL": "redis://iris:secret-redis-LLLL@127.0.0.1:6379/0",
    "BACKEND_API_URLS": "https://a.example/v1,https://b.example/v1",
    "TOKEN_MAP": '{"https://b.example/v1": "secret-token-map-MMMM"}',
    "IMAGE_SIGNING_KEYS": "secret-signing-key-PPPP,secret-old-signing-key-QQQQ",
}


def request(headers: dict[str, str] | None = None, path: str = "/x") -> web.Request:
    return make_mocked_request("GET", path, headers=headers or {})


def test_same_compares_whole_secrets_and_never_matches_an_empty_one():
    assert same("s3cret-token", "s3cret-token")
    for given in ("", None, "s3cret-toke", "s3cret-token ", "S3CRET-TOKEN", "s3cret-token-and-more", "x"):
        assert not same(given, "s3cret-token"), repr(given)
    assert not same("", "") and not same(None, ""), "an empty secret matches nothing, not even itself"
    assert same("caf\u00e9-key", "caf\u00e9-key") and not same("cafe-key", "caf\u00e9-key")
    assert not same("\udcff", "x"), "an undecodable byte is compared, not a crash"


def test_only_the_bearer_scheme_carries_a_key():
    assert bearer_of(request({"Authorization": "Bearer abc"})) == "abc"
    assert bearer_of(request({"Authorization": "bearer  abc "})) == "abc", "the scheme is case-insensitive"
    for header in ("Basic abc", "Token abc", "Bearerabc", "Bearer", "Bearer   ", "abc", ""):
        assert bearer_of(request({"Authorization": header})) is None, header
    assert bearer_of(request()) is None


def test_where_each_credential_is_read_from():
    assert access_key_of(request(path="/p?key=k1")) == "k1"
    assert access_key_of(request({"Authorization": "Bearer k2"})) == "k2"
    assert access_key_of(request({"Authorization": "Bearer k2"}, "/p?key=k1")) == "k1", "the query wins"
    assert access_key_of(request({"Authorization": "Bearer k2"}, "/p?key=")) == "k2"
    assert access_key_of(request({"X-Admin-Token": "t"})) is None
    assert admin_token_of(request({"X-Admin-Token": "t1"})) == "t1"
    assert admin_token_of(request({"Authorization": "Bearer t2"})) == "t2"
    assert admin_token_of(request({"X-Admin-Token": "t1", "Authorization": "Bearer t2"})) == "t1"
    assert admin_token_of(request(path="/p?key=t1")) is None, "never from the query"


async def test_an_empty_admin_token_does_not_log_in(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, BLACKLIST_AUTO_FAILURES="0", RATE_LIMIT_AUTH="100/minute")
    for token in ("", "   "):
        resp = await login(client, token)
        assert resp.status == 401 and "iris_admin" not in resp.cookies, repr(token)
    resp = await client.post("/admin/login", data={}, allow_redirects=False)
    assert resp.status == 401
    for headers in ({"X-Admin-Token": ""}, {"Authorization": "Bearer "}, {"Authorization": f"Basic {ADMIN_TOKEN}"},
                    {"X-Admin-Token": ACCESS_KEY}, {"Authorization": f"Bearer {ACCESS_KEY}"}):
        body = await (await client.get("/status", headers=headers)).json()
        assert "backends" not in body, headers
        resp = await client.get("/metrics", headers=headers)
        assert resp.status == 401, headers
    assert "backends" in await (await client.get("/status", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})).json()


@pytest.mark.parametrize("path", ["/admin/login", "/admin/cache/delete"])
async def test_a_malformed_admin_form_is_a_400_not_an_internal_error(iris, backend, path):
    """A multipart type without its boundary (found by tests/test_fuzz.py): aiohttp's form reader
    raises on it; the routes answer the error shape, as for any malformed form."""
    client = await iris(BACKEND_API_URLS=backend.url)
    if path != "/admin/login":  # a dashboard form: read once the session is known
        assert (await login(client, ADMIN_TOKEN)).status == 303
    resp = await client.post(path, data=b"token=x", allow_redirects=False,
                             headers={"Content-Type": "multipart/form-data"})
    body = await resp.json()
    assert resp.status == 400 and body["error"]["code"] == "invalid_form", body


async def test_an_empty_basic_or_admin_key_does_not_open_the_image_route(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, BLACKLIST_AUTO_FAILURES="0", RATE_LIMIT_AUTH="100/minute")
    cases = [({}, "/prompt/apple?key=", "missing_key"),
             ({"Authorization": "Bearer "}, "/prompt/apple", "missing_key"),
             ({"Authorization": f"Basic {ACCESS_KEY}"}, "/prompt/apple", "missing_key"),
             ({"Authorization": f"Bearer {ADMIN_TOKEN}"}, "/prompt/apple", "invalid_key"),
             ({}, f"/prompt/apple?key={ACCESS_KEY}x", "invalid_key"),
             ({}, f"/prompt/apple?key={ACCESS_KEY[:-1]}", "invalid_key")]
    for headers, path, code in cases:
        resp = await client.get(path, headers=headers)
        assert resp.status == 401 and (await resp.json())["error"]["code"] == code, (headers, path)
    assert not backend.calls
    assert (await client.get("/prompt/apple", headers={"Authorization": f"bearer {ACCESS_KEY}"})).status == 200


async def test_a_suspect_is_limited_only_for_the_auth_period(iris, backend):
    """A wrong key makes the address a suspect (its next key checks ask the limiter) for one
    RATE_LIMIT_AUTH period; then the right key costs no I/O again."""
    client = await iris(BACKEND_API_URLS=backend.url, RATE_LIMIT_AUTH="2/1second", BLACKLIST_AUTO_FAILURES="0")
    guard = client.app[GUARD]
    assert not guard.suspect("127.0.0.1") and not guard.suspects
    assert (await client.get("/prompt/apple?key=wrong-guess")).status == 401
    assert guard.suspect("127.0.0.1") and not guard.suspect("127.0.0.2")
    assert (await client.get("/prompt/apple?key=wrong-guess")).status == 401
    assert (await client.get(f"/prompt/apple?key={ACCESS_KEY}")).status == 429, "the bucket is empty"
    guard.suspects["127.0.0.1"] = time.monotonic() - 1.01
    assert not guard.suspect("127.0.0.1")


def test_secrets_are_read_from_settings_or_generated_once(tmp_path):
    folder = tmp_path / "secrets"
    signing = "signing-key-0123456789abcdef"
    settings = load_settings({"DATA_DIR": str(tmp_path), "PROXY_ACCESS_KEY": "given-key-0123",
                              "IMAGE_SIGNING_KEYS": signing})
    first = resolve_secrets(settings.server)
    assert first.access_key == "given-key-0123" and len(first.admin_token) == 43  # 32 random bytes
    assert first.generated == first.files == (folder / "admin-token",) and first.signing_keys == (signing,)
    again = resolve_secrets(settings.server)
    assert again.admin_token == first.admin_token and again.generated == ()
    assert (folder / "admin-token").stat().st_mode & 0o777 == 0o600
    value, created = load_or_create(folder / "admin-token")
    assert (value, created) == (first.admin_token, False)
    both = resolve_secrets(load_settings({"DATA_DIR": str(tmp_path)}).server)
    assert both.generated == (folder / "access-key", folder / "signing-key")
    assert both.admin_token == first.admin_token
    assert (folder / "access-key").read_text().strip() == both.access_key != both.admin_token
    assert sorted(p.name for p in folder.iterdir()) == ["access-key", "admin-token", "signing-key"], \
        "no temporary file left"
    assert both.files == (folder / "access-key", folder / "admin-token", folder / "signing-key")
    assert both.describe()[:2] == [
        f"access key in {folder / 'access-key'} (generated now); read it with: cat {folder / 'access-key'}",
        f"admin token in {folder / 'admin-token'} (kept from an earlier start); read it with: "
        f"cat {folder / 'admin-token'}"]
    configured = {"DATA_DIR": str(tmp_path), "PROXY_ACCESS_KEY": "k", "ADMIN_TOKEN": "t", "IMAGE_SIGNING_KEYS": signing}
    assert resolve_secrets(load_settings(configured).server).describe() == []
    assert len(load_or_create(tmp_path / "longer", nbytes=48)[0]) == 64, "nbytes random bytes, base64url"


def test_the_command_line_finds_the_servers_signing_key_or_generates_it_once(tmp_path):
    server = load_settings({"DATA_DIR": str(tmp_path)}).server
    generated: list[Path] = []
    keys = signing_keys(server, generated)
    path = tmp_path / "secrets" / "signing-key"
    assert keys == (path.read_text().strip(),) and generated == [path]
    assert signing_keys(server, generated) == keys and generated == [path], "kept, not generated again"
    assert signing_keys(server) == keys
    fresh = tmp_path / "fresh"
    assert signing_keys(load_settings({"DATA_DIR": str(fresh)}).server) == (
        (fresh / "secrets" / "signing-key").read_text().strip(),), "generated without a list to report it in"
    configured = load_settings({"DATA_DIR": str(tmp_path), "IMAGE_SIGNING_KEYS": "key-one-0123456789,key-two-0123456789"})
    assert signing_keys(configured.server, generated) == ("key-one-0123456789", "key-two-0123456789")


def test_an_empty_secret_file_stops_start_up_with_the_fix(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "admin-token").write_text("\n")
    with pytest.raises(ConfigError) as stopped:
        resolve_secrets(load_settings({"DATA_DIR": str(tmp_path)}).server)
    path = tmp_path / "secrets" / "admin-token"
    assert stopped.value.variable == "DATA_DIR"
    assert str(stopped.value) == (f"DATA_DIR: {path} is empty. Fix: delete {path} (a new secret is generated) "
                                  "or write the secret it held back into it")


def test_two_processes_creating_a_secret_at_once_agree_on_the_first(tmp_path, monkeypatch):
    """The other process links its file in between this one's check and its link."""
    path = tmp_path / "secrets" / "master-key"
    real_link = os.link

    def another_process_first(source: str, target: Path) -> None:
        Path(target).write_text("the-other-process-secret\n")
        real_link(source, target)

    monkeypatch.setattr(os, "link", another_process_first)
    assert load_or_create(path) == ("the-other-process-secret", False)
    assert [p.name for p in path.parent.iterdir()] == ["master-key"], "the temporary file is removed"


def test_no_secret_shows_in_a_repr():
    settings = load_settings(SECRET_ENV)
    holders = [settings, settings.server, settings.image, settings.image.llm, settings.vision, settings.hosting,
               settings.accounts, settings.redis, *settings.image.backends, *settings.vision.providers,
               settings.image.llm.backend,
               Secrets("secret-access-key-AAAA", "secret-admin-token-BBBB",
                       signing_keys=("secret-signing-key-PPPP",)),
               BackendSpec("https://a.example/v1", token="secret-backend-token-CCCC"),
               Keyring.from_master("secret-master-KKKK"),
               UserState(Profile("alice", 0.0, 0.0, "stamp-secret-NNNN"), None, {"gemini_api_key": "secret-OOOO"})]
    secrets = [v for v in SECRET_ENV.values() if "secret" in v] + ["secret-redis-LLLL", "stamp-secret-NNNN",
                                                                    "secret-OOOO"]
    for holder in holders:
        text = repr(holder) + str(holder)
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{type(holder).__name__} shows {leaked}"
    assert settings.image.backends[1].token == "secret-token-map-MMMM", "the secrets were really loaded"
    assert settings.vision.providers[0].token == "secret-gemini-EEEE" and settings.server.admin_token

