"""Image hosting: sm.ms, PicGo and Cloudflare ImgBed through the real app, against fake hosts
on 127.0.0.1; redirect and proxy modes, failures that keep the image, retries, single flight,
delete, restart and /status."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from proxy.app import create_app
from proxy.config import load_settings
from proxy.config.hosting import REQUIRED, SMMS_UPLOAD
from proxy.errors import ConfigError
from proxy.hosting.base import filename_for
from proxy.hosting.registry import UPLOADERS
from proxy.keys import FLIGHT
from tests.conftest import ACCESS_KEY, ADMIN_TOKEN, base_env
from tests.support.fakes import jpeg
from tests.support.hosting_fakes import FakeHost, FakeImgbed, FakePicgo, FakeSmms

ADMIN = {"X-Admin-Token": ADMIN_TOKEN}
FAST = {"IMAGE_HOSTING_BACKOFF": "0.01", "IMAGE_HOSTING_TIMEOUT": "5"}


def hosting_env(fake: FakeHost, **extra: str) -> dict[str, str]:
    env = {"IMAGE_HOSTING_ENABLED": "true", **FAST}
    if isinstance(fake, FakeSmms):
        env |= {"IMAGE_HOSTING_PROVIDER": "smms", "IMAGE_HOSTING_KEY": fake.token,
                "IMAGE_HOSTING_URL": fake.upload_url}
    elif isinstance(fake, FakePicgo):
        env |= {"IMAGE_HOSTING_PROVIDER": "picgo", "IMAGE_HOSTING_KEY": fake.key,
                "IMAGE_HOSTING_URL": fake.upload_url}
    else:
        assert isinstance(fake, FakeImgbed)
        env |= {"IMAGE_HOSTING_PROVIDER": "cloudflare_imgbed", "IMAGE_HOSTING_URL": fake.upload_url,
                "IMAGE_HOSTING_AUTH_CODE": fake.auth_code}
    return env | extra


@pytest.fixture(params=["smms", "picgo", "cloudflare_imgbed"])
async def host(request: Any, serve: Any) -> FakeHost:
    fake = {"smms": FakeSmms, "picgo": FakePicgo, "cloudflare_imgbed": FakeImgbed}[request.param]()
    await serve(fake)
    return fake


@pytest.fixture
async def smms(serve: Any) -> FakeSmms:
    fake = FakeSmms()
    await serve(fake)
    return fake


@pytest.fixture
async def start(iris: Any, backend: Any) -> Any:
    async def run(fake: FakeHost, **extra: str) -> Any:
        return await iris(BACKEND_API_URLS=backend.url, **hosting_env(fake, **extra))

    return run


async def get(client: Any, prompt: str = "a%20red%20apple", query: str = "") -> Any:
    """The answer, once its flight has also published to the cache (single flight answers first)."""
    resp = await client.get(f"/prompt/{prompt}?key={ACCESS_KEY}&{query}", allow_redirects=False)
    await resp.read()
    flight = client.server.app[FLIGHT]
    while flight.tasks:
        await asyncio.wait(list(flight.tasks))
    return resp


async def fetch(url: str) -> bytes:
    async with ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        return await resp.read()


# --- settings ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "variable"), [
    ({"IMAGE_HOSTING_PROVIDER": "smms"}, "IMAGE_HOSTING_KEY"),
    ({"IMAGE_HOSTING_PROVIDER": "picgo", "IMAGE_HOSTING_URL": "https://h/upload"}, "IMAGE_HOSTING_KEY"),
    ({"IMAGE_HOSTING_PROVIDER": "picgo", "IMAGE_HOSTING_KEY": "k"}, "IMAGE_HOSTING_URL"),
    ({"IMAGE_HOSTING_PROVIDER": "cloudflare_imgbed"}, "IMAGE_HOSTING_URL"),
    ({"IMAGE_HOSTING_PROVIDER": "imgur", "IMAGE_HOSTING_KEY": "k"}, "IMAGE_HOSTING_PROVIDER"),
    ({"IMAGE_HOSTING_KEY": "k", "IMAGE_HOSTING_RESPONSE": "inline"}, "IMAGE_HOSTING_RESPONSE"),
    ({"IMAGE_HOSTING_KEY": "k", "IMAGE_HOSTING_URL": "ftp://h/x"}, "IMAGE_HOSTING_URL"),
    ({"IMAGE_HOSTING_KEY": "k", "IMAGE_HOSTING_URL": "http://[::1"}, "IMAGE_HOSTING_URL"),
    ({"IMAGE_HOSTING_KEY": "k", "IMAGE_HOSTING_ATTEMPTS": "0"}, "IMAGE_HOSTING_ATTEMPTS"),
    ({"IMAGE_HOSTING_KEY": "k", "IMAGE_HOSTING_TIMEOUT": "soon"}, "IMAGE_HOSTING_TIMEOUT"),
])
def test_start_up_names_the_missing_or_bad_variable(tmp_path: Any, env: dict[str, str], variable: str):
    with pytest.raises(ConfigError) as caught:
        load_settings(base_env(tmp_path, IMAGE_HOSTING_ENABLED="true", **env))
    assert caught.value.variable == variable
    assert variable in str(caught.value)


def test_settings_defaults_and_disabled(tmp_path: Any):
    off = load_settings(base_env(tmp_path, IMAGE_HOSTING_PROVIDER="nonsense")).hosting
    assert off.enabled is False
    smms = load_settings(base_env(tmp_path, IMAGE_HOSTING_ENABLED="true",
                                  IMAGE_HOSTING_KEY="qq7secret")).hosting
    assert (smms.provider, smms.url, smms.response) == ("smms", SMMS_UPLOAD, "redirect")
    assert smms.key == "qq7secret" and "qq7secret" not in repr(smms)
    code = load_settings(base_env(tmp_path, IMAGE_HOSTING_ENABLED="true", IMAGE_HOSTING_AUTH_CODE="zz9",
                                  IMAGE_HOSTING_PROVIDER="CLOUDFLARE_IMGBED",
                                  IMAGE_HOSTING_URL="https://img.example/upload")).hosting
    assert code.provider == "cloudflare_imgbed" and "zz9" not in repr(code)


def test_registry_covers_every_provider_the_settings_accept():
    assert set(UPLOADERS) == set(REQUIRED)


@pytest.mark.parametrize(("content_type", "suffix"), [
    ("image/png", ".png"), ("image/jpeg", ".jpg"), ("image/webp", ".webp"), ("image/gif", ".gif"),
    ("image/bmp", ".bmp"), ("image/tiff", ".tiff"),
])
def test_the_uploaded_name_has_the_extension_of_the_format(content_type, suffix):
    name = filename_for("ab" * 32, content_type)
    assert name.endswith(suffix)
    assert "abab" in name and "/" not in name


# --- wire formats and redirect mode --------------------------------------------------------------

async def test_first_request_and_every_hit_redirect_to_the_host(start, backend, host):
    client = await start(host)
    first = await get(client)
    assert first.status == 302
    assert first.headers["X-Cache"] == "MISS"
    assert "immutable" not in first.headers["Cache-Control"]  # a delete may make it again elsewhere
    location = first.headers["Location"]
    assert location.startswith(f"{host.url}/file/")
    assert await fetch(location) == backend.image
    for _ in range(2):
        again = await get(client)
        assert again.status == 302
        assert again.headers["X-Cache"] == "HIT"
        assert again.headers["Location"] == location
        assert again.headers["ETag"] == first.headers["ETag"]
    assert len(backend.calls) == 1
    assert len(host.uploads) == 1
    filename, content_type, data = host.uploads[0].fields[host.file_field]
    assert data == backend.image
    assert content_type == "image/png"
    assert filename is not None and filename.endswith(".png")


async def test_each_host_gets_its_credentials_where_it_expects_them(start, serve):
    smms, picgo, imgbed = FakeSmms(), FakePicgo(), FakeImgbed()
    for n, fake in enumerate((smms, picgo, imgbed)):
        await serve(fake)
        assert (await get(await start(fake), f"host{n}")).status == 302
    assert smms.uploads[0].headers["Authorization"] == smms.token
    assert picgo.uploads[0].headers["X-API-Key"] == picgo.key
    assert imgbed.uploads[0].query == {"authCode": imgbed.auth_code}
    assert list(smms.uploads[0].fields) == ["smfile"]
    assert list(picgo.uploads[0].fields) == ["source"]
    assert list(imgbed.uploads[0].fields) == ["file"]


async def test_imgbed_without_auth_code_sends_none(start, serve):
    imgbed = FakeImgbed(auth_code="")
    await serve(imgbed)
    client = await start(imgbed, IMAGE_HOSTING_AUTH_CODE="")
    resp = await get(client)
    assert resp.status == 302
    assert "authCode" not in imgbed.uploads[0].query


async def test_smms_image_repeated_answer_carries_the_existing_url(start, smms, backend):
    smms.mode = "repeated"
    client = await start(smms)
    resp = await get(client)
    assert resp.status == 302
    assert resp.headers["Location"].startswith(f"{smms.url}/file/")
    assert await fetch(resp.headers["Location"]) == backend.image


async def test_uploaded_name_carries_the_real_format(start, smms, backend):
    backend.image = jpeg()
    client = await start(smms)
    assert (await get(client, "jpeg%20please")).status == 302
    filename, content_type, _ = smms.uploads[0].fields["smfile"]
    assert filename is not None and filename.endswith(".jpg")
    assert content_type == "image/jpeg"


# --- failures never lose the image ---------------------------------------------------------------

@pytest.mark.parametrize(("mode", "uploads"), [
    ("error500", 3), ("garbage", 3), ("nourl", 3), ("badurl", 3), ("refuse", 1),
])
async def test_a_failed_upload_answers_with_the_bytes_and_keeps_them(start, backend, host, mode, uploads):
    host.mode = mode
    client = await start(host, IMAGE_HOSTING_ATTEMPTS="3", IMAGE_HOSTING_RETRY_AFTER="3600")
    first = await get(client)
    assert first.status == 200, await first.text()
    assert first.headers["X-Cache"] == "MISS"
    assert first.headers["Content-Type"] == "image/png"
    assert await first.read() == backend.image
    assert len(host.uploads) == uploads  # bounded retry; a refusal is not repeated at once
    again = await get(client)
    assert again.status == 200
    assert again.headers["X-Cache"] == "HIT"
    assert await again.read() == backend.image
    assert len(backend.calls) == 1
    assert len(host.uploads) == uploads  # not retried before IMAGE_HOSTING_RETRY_AFTER


async def test_a_slow_host_times_out_and_the_image_is_still_served(start, backend, smms):
    smms.mode = "slow"
    client = await start(smms, IMAGE_HOSTING_TIMEOUT="0.3", IMAGE_HOSTING_ATTEMPTS="2")
    resp = await get(client)
    assert resp.status == 200
    assert await resp.read() == backend.image
    assert len(smms.uploads) == 2


async def test_the_request_deadline_bounds_the_upload(start, backend, smms):
    smms.mode = "slow"
    client = await start(smms, REQUEST_DEADLINE="1", IMAGE_HOSTING_TIMEOUT="60")
    resp = await get(client)
    assert resp.status == 200
    assert await resp.read() == backend.image


async def test_the_upload_is_retried_on_a_later_request(start, backend, host):
    host.fail_first = 1
    client = await start(host, IMAGE_HOSTING_ATTEMPTS="1", IMAGE_HOSTING_RETRY_AFTER="0")
    first = await get(client)
    assert first.status == 200
    second = await get(client)
    assert second.status == 302
    assert second.headers["X-Cache"] == "HIT"
    assert await fetch(second.headers["Location"]) == backend.image
    third = await get(client)
    assert third.status == 302
    assert third.headers["Location"] == second.headers["Location"]
    assert len(host.uploads) == 2
    assert len(backend.calls) == 1
    status = await (await client.get("/status", headers=ADMIN)).json()
    assert status["hosting"]["uploads"] == {"done": 1, "failed": 1}


async def test_retry_of_a_pending_upload_is_single_flight(start, backend, smms):
    smms.fail_first = 1
    client = await start(smms, IMAGE_HOSTING_ATTEMPTS="1", IMAGE_HOSTING_RETRY_AFTER="0")
    assert (await get(client)).status == 200
    smms.delay = 0.2
    answers = await asyncio.gather(*(get(client) for _ in range(8)))
    assert {a.status for a in answers} == {302}
    assert len({a.headers["Location"] for a in answers}) == 1
    assert len(smms.uploads) == 2


async def test_identical_concurrent_misses_cost_one_generation_and_one_upload(start, backend, host):
    backend.delay = 0.2
    client = await start(host)
    answers = await asyncio.gather(*(get(client, "crowd") for _ in range(10)))
    assert {a.status for a in answers} == {302}
    assert len({a.headers["Location"] for a in answers}) == 1
    assert len(backend.calls) == 1
    assert len(host.uploads) == 1


async def test_a_generation_failure_is_not_uploaded(start, backend, smms):
    backend.mode = "error500"
    client = await start(smms, POLLINATIONS_FALLBACK="false")
    resp = await get(client)
    assert resp.status == 502
    assert (await resp.json())["error"]["code"] == "upstream_failed"
    assert smms.uploads == []


async def test_secrets_never_reach_answers_status_or_logs(start, smms, caplog):
    caplog.set_level(logging.DEBUG)
    smms.mode = "refuse"  # the fake echoes the token in its error message
    client = await start(smms)
    resp = await get(client)
    assert resp.status == 200
    status = await client.get("/status", headers=ADMIN)
    text = await status.text()
    assert smms.token not in text
    assert smms.token not in caplog.text
    assert smms.token not in str(dict(resp.headers))


# --- proxy mode ----------------------------------------------------------------------------------

async def test_proxy_mode_serves_the_bytes_through_iris(pair, backend, host):
    a, b = await pair(host, IMAGE_HOSTING_RESPONSE="proxy")
    first = await get(a)
    assert first.status == 200
    assert await first.read() == backend.image
    assert (await get(a)).headers["X-Cache"] == "HIT"
    assert host.fetches == 0  # the fresh bytes were in hand, then in memory
    for _ in range(2):
        other = await get(b)  # another worker: fetched from the host once, then from memory
        assert other.status == 200
        assert other.headers["X-Cache"] == "HIT"
        assert other.headers["Content-Type"] == "image/png"
        assert await other.read() == backend.image
    assert host.fetches == 1
    assert len(host.uploads) == 1 and len(backend.calls) == 1


async def test_proxy_mode_forgets_fetched_bytes_on_delete(pair, backend, smms):
    a, b = await pair(smms, IMAGE_HOSTING_RESPONSE="proxy")
    assert (await get(a)).status == 200
    assert (await get(b)).status == 200
    deleted = await a.post("/cache/delete", json={"description": "a red apple"}, headers=ADMIN)
    assert deleted.status == 200
    backend.image = jpeg()
    fresh = await get(a)
    assert fresh.headers["X-Cache"] == "MISS"
    other = await get(b)  # b had the old bytes in memory: the delete cleared them
    assert other.headers["X-Cache"] == "HIT"
    assert other.headers["Content-Type"] == "image/jpeg"
    assert await other.read() == backend.image
    assert len(backend.calls) == 2 and len(smms.uploads) == 2 and smms.fetches == 2


@pytest.mark.parametrize("gone", [404, 410])
async def test_proxy_mode_makes_again_an_image_the_host_lost(pair, backend, smms, gone):
    """The host answers that it no longer has the image: the entry pointed at nothing, so the image
    is generated and uploaded again, and the next request is a hit on the new one."""
    a, b = await pair(smms, IMAGE_HOSTING_RESPONSE="proxy")
    assert (await get(a)).status == 200
    smms.files.clear()
    if gone != 404:
        smms.files_status = gone
    resp = await get(b)  # b has no bytes in memory: it asks the host
    assert resp.status == 200 and resp.headers["X-Cache"] == "MISS"
    assert await resp.read() == backend.image
    assert len(backend.calls) == 2 and len(smms.uploads) == 2
    smms.files_status = 200
    again = await get(a)
    assert again.status == 200 and again.headers["X-Cache"] == "HIT" and len(backend.calls) == 2


async def test_proxy_mode_reports_a_host_in_trouble_and_keeps_the_entry(pair, backend, smms):
    """A 5xx may pass: the answer is a 502, nothing is made again, and the entry serves once the
    host is back."""
    a, b = await pair(smms, IMAGE_HOSTING_RESPONSE="proxy")
    assert (await get(a)).status == 200
    smms.files_status = 503
    resp = await get(b)
    assert resp.status == 502
    body = await resp.json()
    assert body["error"]["code"] == "upstream_failed" and smms.token not in str(body)
    smms.files_status = 200
    back = await get(b)
    assert back.status == 200 and back.headers["X-Cache"] == "HIT" and await back.read() == backend.image
    assert len(backend.calls) == 1 and len(smms.uploads) == 1


@pytest.fixture
async def secret_service() -> AsyncIterator[Callable[[str], Awaitable[tuple[str, list[str]]]]]:
    """``await secret_service(host)``: a service elsewhere on the network behind Iris, answering
    text as image/png; its base URL, and the paths asked of it. (Made here: aiohttp's
    ``aiohttp_server`` fixture ignores ``host`` before 3.14.)"""
    servers: list[TestServer] = []

    async def start(host: str) -> tuple[str, list[str]]:
        seen: list[str] = []

        async def secret(request: web.Request) -> web.Response:
            seen.append(request.path)
            return web.Response(text="internal: db password is hunter2", content_type="image/png")

        app = web.Application()
        app.router.add_get("/{tail:.*}", secret)
        server = TestServer(app, host=host)
        await server.start_server()
        servers.append(server)
        base = str(server.make_url("")).rstrip("/")
        assert base.startswith(f"http://{f'[{host}]' if ':' in host else host}:")
        return base, seen

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def internal(secret_service: Any) -> tuple[str, list[str]]:
    return await secret_service("127.0.0.2")


async def test_proxy_mode_does_not_fetch_a_url_into_another_private_host(pair, backend, smms, internal):
    """The host answered with a link into the network behind Iris: refused, never fetched."""
    base, seen = internal
    smms.link_base = base
    a, b = await pair(smms, IMAGE_HOSTING_RESPONSE="proxy")
    assert (await get(a)).status == 200  # the fresh bytes: the upload's answer is not fetched
    for _ in range(2):
        resp = await get(b)
        assert resp.status == 502
        assert "private network" in (await resp.json())["error"]["message"]
    assert seen == []


@pytest.mark.parametrize("where", ["::1", "127.0.0.2", "127.0.0.1"])
async def test_proxy_mode_checks_the_hosts_redirects(pair, backend, smms, secret_service, where):
    """The host's own link redirects elsewhere behind Iris: IPv6 loopback, another address, another
    port of the host's own address."""
    base, seen = await secret_service(where)
    smms.redirect_to = f"{base}/file/x"
    a, b = await pair(smms, IMAGE_HOSTING_RESPONSE="proxy")
    assert (await get(a)).status == 200
    resp = await get(b)
    assert resp.status == 502 and seen == []


async def test_proxy_mode_serves_only_bytes_that_are_an_image(pair, backend, smms):
    """Text from the host's own origin, labelled image/png: a 502, and not kept for later hits."""
    a, b = await pair(smms, IMAGE_HOSTING_RESPONSE="proxy")
    assert (await get(a)).status == 200
    smms.serve_instead = b"<html>a login page</html>"
    for _ in range(2):
        resp = await get(b)
        assert resp.status == 502
        assert "not a decodable image" in (await resp.json())["error"]["message"]
    assert smms.fetches == 2  # asked again: the text was not kept in memory
    smms.serve_instead = None
    back = await get(b)
    assert back.status == 200 and await back.read() == backend.image
    assert back.headers["Content-Type"] == "image/png"


async def test_proxy_mode_serves_the_type_read_from_the_bytes(pair, backend, smms):
    """The host serves the image as application/octet-stream: Iris says what it really is."""
    backend.image = jpeg()
    a, b = await pair(smms, IMAGE_HOSTING_RESPONSE="proxy")
    assert (await get(a)).status == 200
    resp = await get(b)
    assert resp.status == 200 and resp.headers["Content-Type"] == "image/jpeg"


async def test_image_fetch_allow_lets_a_hosts_network_in(pair, backend, smms, internal):
    base, seen = internal
    smms.link_base = base
    a, b = await pair(smms, IMAGE_HOSTING_RESPONSE="proxy", IMAGE_FETCH_ALLOW="127.0.0.2/32")
    assert (await get(a)).status == 200
    resp = await get(b)  # reached, and still refused: what it serves is no image
    assert resp.status == 502 and seen == ["/file/" + next(iter(smms.files))]


# --- delete, restart, status ---------------------------------------------------------------------

async def test_cache_delete_removes_a_hosted_entry(start, backend, smms):
    client = await start(smms)
    assert (await get(client, "pear", "width=512&seed=3")).status == 302
    body = {"description": "pear", "width": 512, "seed": 3}
    deleted = await client.post("/cache/delete", json=body, headers=ADMIN)
    assert deleted.status == 200
    assert (await deleted.json())["deleted"] is True
    missing = await client.post("/cache/delete", json=body, headers=ADMIN)
    assert missing.status == 404
    again = await get(client, "pear", "width=512&seed=3")
    assert again.status == 302
    assert again.headers["X-Cache"] == "MISS"
    assert len(backend.calls) == 2 and len(smms.uploads) == 2


async def test_restart_keeps_the_url_entries(aiohttp_client, data_dir, backend, smms):
    env = base_env(data_dir, BACKEND_API_URLS=backend.url, **hosting_env(smms))
    first = await aiohttp_client(create_app(load_settings(env)))
    made = await get(first)
    assert made.status == 302
    await first.close()
    second = await aiohttp_client(create_app(load_settings(env)))
    hit = await get(second)
    assert hit.status == 302
    assert hit.headers["X-Cache"] == "HIT"
    assert hit.headers["Location"] == made.headers["Location"]
    assert len(backend.calls) == 1 and len(smms.uploads) == 1


async def test_pending_images_are_uploaded_after_a_restart(aiohttp_client, data_dir, backend, smms):
    smms.mode = "error500"
    env = base_env(data_dir, BACKEND_API_URLS=backend.url, IMAGE_HOSTING_RETRY_AFTER="3600",
                   **hosting_env(smms, IMAGE_HOSTING_ATTEMPTS="1"))
    first = await aiohttp_client(create_app(load_settings(env)))
    assert (await get(first)).status == 200
    await first.close()
    smms.mode = "ok"
    env["IMAGE_HOSTING_RETRY_AFTER"] = "0"
    second = await aiohttp_client(create_app(load_settings(env)))
    resp = await get(second)
    assert resp.status == 302
    assert len(backend.calls) == 1 and len(smms.uploads) == 2


async def test_status_shows_the_host_and_counts_without_secrets(start, serve):
    imgbed = FakeImgbed()
    await serve(imgbed)
    client = await start(imgbed, IMAGE_HOSTING_URL=f"{imgbed.upload_url}?authCode={imgbed.auth_code}")
    assert (await get(client)).status == 302
    public = await (await client.get("/status")).json()
    assert "hosting" not in public
    text = await (await client.get("/status", headers=ADMIN)).text()
    assert imgbed.auth_code not in text
    hosting = (await (await client.get("/status", headers=ADMIN)).json())["hosting"]
    assert hosting == {"enabled": True, "provider": "cloudflare_imgbed", "url": imgbed.upload_url,
                       "response": "redirect", "key": False, "auth_code": True,
                       "uploads": {"done": 1, "failed": 0}}


async def test_disabled_hosting_serves_bytes_and_uploads_nothing(iris, backend, smms):
    client = await iris(BACKEND_API_URLS=backend.url, IMAGE_HOSTING_URL=smms.upload_url)
    resp = await get(client)
    assert resp.status == 200
    assert await resp.read() == backend.image
    status = await (await client.get("/status", headers=ADMIN)).json()
    assert status["hosting"] == {"enabled": False}
    assert smms.uploads == []


# --- two instances over one DATA_DIR (as two workers share it) ----------------------------------

@pytest.fixture
async def pair(aiohttp_client: Any, data_dir: Any, backend: Any) -> Any:
    async def start(fake: FakeHost, **extra: str) -> tuple[Any, Any]:
        env = base_env(data_dir, BACKEND_API_URLS=backend.url, **hosting_env(fake, **extra))
        return (await aiohttp_client(create_app(load_settings(env))),
                await aiohttp_client(create_app(load_settings(env))))

    return start


async def test_misses_on_two_workers_cost_one_generation_and_one_upload(pair, backend, smms):
    backend.delay = 0.3
    a, b = await pair(smms)
    answers = await asyncio.gather(*(get(client, "shared") for client in (a, b, a, b)))
    assert {r.status for r in answers} == {302}
    assert len({r.headers["Location"] for r in answers}) == 1
    assert len(backend.calls) == 1
    assert len(smms.uploads) == 1


async def test_a_worker_with_a_stale_pending_entry_finds_the_upload_done(pair, backend, smms):
    smms.fail_first = 1
    a, b = await pair(smms, IMAGE_HOSTING_ATTEMPTS="1", IMAGE_HOSTING_RETRY_AFTER="0")
    assert (await get(a)).status == 200  # upload failed: a remembers the pending image
    done = await get(b)  # b retries and succeeds
    assert done.status == 302
    again = await get(a)  # a's memory still says pending; the store says hosted
    assert again.status == 302
    assert again.headers["Location"] == done.headers["Location"]
    assert len(smms.uploads) == 2 and len(backend.calls) == 1


async def test_retries_on_two_workers_are_one_upload(pair, backend, smms):
    smms.fail_first = 1
    a, b = await pair(smms, IMAGE_HOSTING_ATTEMPTS="1", IMAGE_HOSTING_RETRY_AFTER="0")
    assert (await get(a)).status == 200
    smms.delay = 0.3
    answers = await asyncio.gather(*(get(client) for client in (a, b, a, b, b)))
    assert {r.status for r in answers} == {302}
    assert len({r.headers["Location"] for r in answers}) == 1
    assert len(smms.uploads) == 2
