"""A backend's url answer is fetched only from public addresses, the backend's own configured
origin (scheme, host and port), or the networks of IMAGE_FETCH_ALLOW: never from elsewhere on the
network behind Iris, by a redirect neither. "Elsewhere" is a service on 127.0.0.2, or on another
port of the backend's own host, which loopback reaches like any private address."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from proxy.config import load_settings
from proxy.errors import ConfigError
from proxy.upstream.errors import UpstreamError
from proxy.upstream.guarded import GuardedFetcher, _host_header, system_resolver
from tests.conftest import ACCESS_KEY
from tests.support.fakes import FakeImageBackend
from tests.support.tls_fakes import TestCA

Q = f"key={ACCESS_KEY}"


@pytest.fixture
async def internal() -> AsyncIterator[FakeImageBackend]:
    """A service elsewhere on the network: it must not be reached through a url answer. (Made
    here: aiohttp's ``aiohttp_server`` fixture ignores ``host`` before 3.14.)"""
    fake = FakeImageBackend()
    server = TestServer(fake.app(), host="127.0.0.2")
    await server.start_server()
    fake.base = fake.url = str(server.make_url("")).rstrip("/")
    assert fake.base.startswith("http://127.0.0.2:")
    yield fake
    await server.close()


@pytest.fixture
async def neighbour(serve) -> FakeImageBackend:
    """A service on another port of the backend's own host (127.0.0.1)."""
    fake = FakeImageBackend()
    await serve(fake)
    return fake


async def answer(iris, backend: FakeImageBackend, prompt: str = "a%20red%20apple", **env: str):
    client = await iris(BACKEND_API_URLS=backend.url, POLLINATIONS_FALLBACK="false", **env)
    return await client.get(f"/prompt/{prompt}?{Q}")


async def test_the_backends_own_files_are_fetched(iris, backend):
    backend.mode = "url"
    resp = await answer(iris, backend)
    assert resp.status == 200 and await resp.read() == backend.image
    assert backend.fetched == ["/files/img.png"]
    assert backend.fetch_hosts == [backend.url.removeprefix("http://")]  # the URL's own Host header


@pytest.fixture(params=["another address", "another port"])
def elsewhere(request, internal: FakeImageBackend, neighbour: FakeImageBackend) -> FakeImageBackend:
    return internal if request.param == "another address" else neighbour


async def test_a_url_into_another_private_host_or_port_is_refused(iris, backend, elsewhere):
    """Another address behind Iris, or another port of the backend's own host (issue 14, item 4)."""
    service = elsewhere
    backend.mode, backend.answer_url = "url", f"{service.url}/files/img.png"
    resp = await answer(iris, backend)
    assert resp.status == 502
    assert "private network" in (await resp.json())["error"]["message"]
    assert service.fetched == []


async def test_image_fetch_allow_lets_a_network_in(iris, backend, internal):
    backend.mode, backend.answer_url = "url", f"{internal.base}/files/img.png"
    resp = await answer(iris, backend, IMAGE_FETCH_ALLOW="127.0.0.2/32")
    assert resp.status == 200 and await resp.read() == internal.image
    assert internal.fetched == ["/files/img.png"]


async def test_a_redirect_is_checked_like_the_url(iris, backend, internal):
    backend.mode, backend.answer_url = "url", f"{backend.url}/redirect"
    backend.redirect_to = f"{internal.base}/files/img.png"
    resp = await answer(iris, backend)
    assert resp.status == 502 and internal.fetched == []
    assert backend.fetched == ["/redirect"]


async def test_redirects_within_allowed_hosts_are_followed(iris, backend):
    backend.mode, backend.answer_url = "url", f"{backend.url}/redirect"
    backend.redirect_to = "/files/img.png"
    resp = await answer(iris, backend)
    assert resp.status == 200 and await resp.read() == backend.image
    assert backend.fetched == ["/redirect", "/files/img.png"]


@pytest.mark.parametrize("location", ["file:///etc/passwd", "http://[::1]:9/x.png", "http://127.0.0.3:9/x.png"])
async def test_redirects_elsewhere_fail_cleanly_without_a_connection(iris, backend, location):
    """(None of these is connected to: the check refuses them first.)"""
    backend.mode, backend.answer_url, backend.redirect_to = "url", f"{backend.url}/redirect", location
    resp = await answer(iris, backend)
    assert resp.status == 502
    assert (await resp.json())["error"]["code"] == "upstream_failed"


def test_the_setting_names_networks():
    assert load_settings({"IMAGE_FETCH_ALLOW": "10.0.0.7/8, 192.168.1.5"}).image.timeouts.fetch_allow == (
        ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.168.1.5/32"))
    with pytest.raises(ConfigError) as caught:
        load_settings({"IMAGE_FETCH_ALLOW": "10.0.0.0/33"})
    assert "IMAGE_FETCH_ALLOW" in str(caught.value)


class Names:
    """A DNS of the test's own: each name's addresses, in the order a resolver would give them."""

    def __init__(self, **names: list[str]):
        self.names = names

    async def __call__(self, host: str) -> list[str]:
        if host not in self.names:
            raise OSError(f"{host} does not resolve")
        return self.names[host]


LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


async def fetch_by_name(addresses: list[str], backend: FakeImageBackend, *, scheme: str = "http",
                        trust: ssl.SSLContext | None = None, name: str = "images.test",
                        trusted: str = "http://backend.test", allow: tuple = LOOPBACK,
                        resolve: object = None, path: str = "/files/img.png") -> bytes:
    """The backend's file fetched as ``SCHEME://NAME:PORT/...`` where the name (and backend.test)
    has ``addresses`` (or as the system resolver says, with ``resolve=system_resolver``)."""
    port = URL(backend.url).port
    connector = aiohttp.TCPConnector(ssl=trust if trust is not None else True)
    async with aiohttp.ClientSession(connector=connector) as session:
        fetcher = GuardedFetcher(session, total=5.0, connect=2.0, cap=1 << 20, allow=allow,
                                 resolve=resolve or Names(**{name: addresses, "backend.test": addresses}))  # type: ignore[arg-type]
        return await fetcher.fetch(f"{scheme}://{name}:{port}{path}", trusted=trusted, label="backend")


async def test_an_address_that_takes_no_connection_is_passed_over_for_the_next(backend):
    body = await fetch_by_name(["127.0.0.3", "127.0.0.1"], backend)  # nothing listens on 127.0.0.3
    assert body == backend.image and backend.fetched == ["/files/img.png"]
    assert backend.fetch_hosts == [f"images.test:{URL(backend.url).port}"]


async def test_when_no_address_takes_the_connection_the_error_says_so(backend):
    with pytest.raises(UpstreamError) as caught:
        await fetch_by_name(["127.0.0.3", "127.0.0.4"], backend)
    assert "connection failed" in caught.value.reason and backend.fetched == []
    assert caught.value.backend == "backend", "the error names the upstream whose URL it was"


async def test_every_address_of_a_name_is_checked_before_any_is_tried(backend):
    """A name with one public address and one private one is refused whole."""
    with pytest.raises(UpstreamError) as caught:
        await fetch_by_name(["127.0.0.1", "10.1.2.3"], backend)
    assert "private network" in caught.value.reason and backend.fetched == []


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


async def tls_backend(aiohttp_server, ca: TestCA, certified_name: str) -> FakeImageBackend:
    """The fake backend over HTTPS on 127.0.0.1, with a certificate for ``certified_name`` only."""
    fake = FakeImageBackend()
    server = await aiohttp_server(fake.app(), ssl=ca.server_context(certified_name))
    fake.base = fake.url = str(server.make_url("")).rstrip("/")
    return fake


async def test_https_goes_to_the_checked_address_and_verifies_the_name(aiohttp_server, ca):
    """The connection is pinned to the address that was checked, and TLS still verifies the name in
    the URL (SNI and certificate), not that address: a certificate for the name is accepted."""
    backend = await tls_backend(aiohttp_server, ca, "images.test")
    body = await fetch_by_name(["127.0.0.1"], backend, scheme="https", trust=ca.client_context())
    assert body == backend.image
    assert backend.fetch_hosts == [f"images.test:{URL(backend.url).port}"]


async def test_https_with_a_certificate_for_another_name_is_refused(aiohttp_server, ca):
    backend = await tls_backend(aiohttp_server, ca, "other.test")
    with pytest.raises(UpstreamError) as caught:
        await fetch_by_name(["127.0.0.1"], backend, scheme="https", trust=ca.client_context())
    assert "Certificate" in caught.value.reason and backend.fetched == []


# --- the backend's own origin, and nothing more of its host (issue 14, item 4) -------------------

async def test_a_redirect_from_the_backends_origin_to_another_port_is_checked(iris, backend, neighbour):
    backend.mode, backend.answer_url = "url", f"{backend.url}/redirect"
    backend.redirect_to = f"{neighbour.url}/files/img.png"
    resp = await answer(iris, backend)
    assert resp.status == 502 and neighbour.fetched == [] and backend.fetched == ["/redirect"]


@pytest.mark.parametrize("trusted", ["http://images.test:{other}", "https://images.test:{port}",
                                     "http://backend.test:{port}"])
async def test_only_the_configured_origin_is_the_backends_own(backend, trusted):
    """Another port or scheme of the backend's host, or another name that resolves to the backend's
    address, is not the backend's origin: its private address is refused."""
    port = URL(backend.url).port or 0
    trusted = trusted.format(port=port, other=port + 1 if port < 65535 else port - 1)
    with pytest.raises(UpstreamError) as caught:
        await fetch_by_name(["127.0.0.1"], backend, allow=(), trusted=trusted)
    assert "private network" in caught.value.reason and backend.fetched == []


async def test_the_configured_origin_is_reached_like_the_backend_itself(backend):
    """The same scheme, host and port, whatever the case or path: fetched without the address check
    (a backend on loopback serving its own files)."""
    port = URL(backend.url).port
    body = await fetch_by_name([], backend, name="localhost", allow=(), trusted=f"http://LOCALHOST:{port}/v1")
    assert body == backend.image


# --- what the guard must keep doing (mutation survivors, issue 14 item 27) -----------------------

@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_every_redirect_status_is_followed_and_checked(iris, backend, internal, status):
    backend.mode, backend.answer_url = "url", f"{backend.url}/redirect"
    backend.redirect_status, backend.redirect_to = status, "/files/img.png"
    resp = await answer(iris, backend)
    assert resp.status == 200 and await resp.read() == backend.image
    assert backend.fetched == ["/redirect", "/files/img.png"]
    backend.redirect_to = f"{internal.base}/files/img.png"
    refused = await answer(iris, backend, "another%20apple")
    assert refused.status == 502 and internal.fetched == []


@pytest.mark.parametrize(("hops", "status"), [(3, 200), (4, 502)])
async def test_redirects_are_followed_at_most_three_times(iris, backend, hops, status):
    backend.mode, backend.answer_url = "url", f"{backend.url}/hops/{hops}"
    resp = await answer(iris, backend)
    assert resp.status == status
    if status == 502:
        assert "redirects more than 3 times" in (await resp.json())["error"]["message"]
        assert backend.fetched == ["/hops/4", "/hops/3", "/hops/2", "/hops/1"]


@pytest.mark.parametrize("code", [400, 404, 500])
async def test_an_error_status_is_not_an_image_even_with_image_bytes(iris, backend, code):
    backend.mode, backend.answer_url = "url", f"{backend.url}/status/{code}"
    resp = await answer(iris, backend)
    assert resp.status == 502
    assert f"HTTP {code}" in (await resp.json())["error"]["message"]


@pytest.mark.parametrize("addresses", [["127.0.0.1", "127.0.0.3"], ["127.0.0.3", "127.0.0.1", "127.0.0.4"]])
async def test_the_first_address_that_takes_the_connection_is_used(backend, addresses):
    """Addresses are tried in order until one connects (nothing listens on 127.0.0.3 and .4): the
    first working one is used, wherever it is in the list."""
    body = await fetch_by_name(addresses, backend)
    assert body == backend.image and backend.fetched == ["/files/img.png"]


async def test_the_systems_resolver_is_used_for_real(backend):
    """``localhost`` resolved by the system (to ::1 and/or 127.0.0.1; the fake listens on the latter)."""
    assert set(await system_resolver("localhost")) & {"127.0.0.1", "::1"}
    body = await fetch_by_name([], backend, name="localhost", resolve=system_resolver)
    assert body == backend.image
    with pytest.raises(UpstreamError) as caught:  # and what it answers is checked like any address
        await fetch_by_name([], backend, name="localhost", resolve=system_resolver, allow=())
    assert "private network" in caught.value.reason


async def test_a_refused_url_says_whose_it_was_why_and_the_fix(backend):
    with pytest.raises(UpstreamError) as caught:
        await fetch_by_name(["10.1.2.3"], backend)
    assert caught.value.describe() == ("backend: the image URL points into a private network "
                                       "(IMAGE_FETCH_ALLOW lets chosen networks in)")
    with pytest.raises(UpstreamError) as unknown:
        await fetch_by_name([], backend, resolve=Names())
    assert unknown.value.describe() == "backend: the image URL's host does not resolve"
    assert backend.fetched == []


async def test_a_resolver_that_never_answers_is_given_up_on_after_the_connect_timeout(backend):
    async def stalled(host: str) -> list[str]:
        await asyncio.Event().wait()
        return []

    async with aiohttp.ClientSession() as session:
        fetcher = GuardedFetcher(session, total=30.0, connect=0.2, cap=1 << 20, allow=LOOPBACK, resolve=stalled)
        async with asyncio.timeout(10):
            with pytest.raises(UpstreamError) as caught:
                await fetcher.fetch("http://images.test/files/img.png", trusted="http://backend.test", label="b")
    assert caught.value.reason == "the image URL's host does not resolve"


async def test_an_address_in_the_url_is_its_own_answer_and_asks_no_resolver(backend):
    asked: list[str] = []

    async def resolver(host: str) -> list[str]:
        asked.append(host)
        return []

    port = URL(backend.url).port
    async with aiohttp.ClientSession() as session:
        fetcher = GuardedFetcher(session, total=5.0, connect=2.0, cap=1 << 20, allow=LOOPBACK, resolve=resolver)
        body = await fetcher.fetch(f"http://127.0.0.1:{port}/files/img.png", trusted="http://backend.test",
                                   label="b")
    assert body == backend.image and asked == []


@pytest.mark.parametrize(("url", "host"), [
    ("http://images.test/x.png", "images.test"), ("https://images.test/x.png", "images.test"),
    ("http://images.test:8080/x.png", "images.test:8080"), ("https://images.test:80/x.png", "images.test:80"),
    ("http://[::1]/x.png", "[::1]"), ("http://[fd00::7]:8080/x.png", "[fd00::7]:8080")])
def test_the_host_header_of_a_pinned_request_is_the_urls_own(url, host):
    """What the server would have been sent without the pinning: its port only when not the default,
    an IPv6 address in brackets."""
    assert _host_header(URL(url)) == host


async def fetch_from_origin(backend: FakeImageBackend, url: str, *, cap: int = 1 << 20) -> bytes:
    """``url`` fetched as one of the backend's own (its origin is trusted)."""
    async with aiohttp.ClientSession() as session:
        fetcher = GuardedFetcher(session, total=5.0, connect=2.0, cap=cap)
        return await fetcher.fetch(url, trusted=f"{backend.url}/v1", label="backend")


@pytest.mark.parametrize(("path", "redirect", "described"), [
    ("/status/404", "", "backend: HTTP 404"),
    ("/status/300", "", "backend: HTTP 300"),  # no redirect without a Location, and not a success either
    ("/redirect", "http://[::1", "backend: the image URL redirects to something that is no URL"),
    ("/files/img.png", "", "backend: answer larger than 16 bytes"),
    ("/hops/4", "", "backend: the image URL redirects more than 3 times"),
    ("/redirect", "ftp://images.test/x.png", "backend: the image URL is not an http(s) URL"),
])
async def test_what_is_not_an_image_is_an_error_of_the_backend(backend, path, redirect, described):
    """Every one of them counts against the backend (it gave the URL), and names it."""
    backend.redirect_to = redirect
    with pytest.raises(UpstreamError) as caught:
        await fetch_from_origin(backend, f"{backend.url}{path}", cap=16)
    assert caught.value.describe() == described and caught.value.backend_fault


async def test_a_url_that_is_no_url_is_refused_with_a_reason():
    async with aiohttp.ClientSession() as session:
        fetcher = GuardedFetcher(session, total=5.0, connect=2.0, cap=1 << 20)
        with pytest.raises(UpstreamError) as caught:
            await fetcher.fetch("http://images.test:99999999/x.png", trusted="http://backend.test", label="b")
    assert caught.value.describe() == "b: the image URL is not an http(s) URL"


async def test_a_location_header_on_a_success_is_not_a_redirect(backend):
    backend.redirect_status, backend.redirect_to = 200, "/files/img.png"
    assert await fetch_from_origin(backend, f"{backend.url}/redirect") == b""
    assert backend.fetched == ["/redirect"]


async def test_an_error_from_an_address_that_took_the_connection_names_the_backend(backend):
    """Not the last address: the first one connected, and its answer is the error."""
    with pytest.raises(UpstreamError) as caught:
        await fetch_by_name(["127.0.0.1", "127.0.0.3"], backend, path="/status/404")
    assert caught.value.describe() == "backend: HTTP 404"


async def test_an_image_server_that_never_answers_is_given_up_on(aiohttp_server):
    async def silent(request: web.Request) -> web.Response:
        await asyncio.Event().wait()
        return web.Response()

    app = web.Application()
    app.router.add_get("/x.png", silent)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        fetcher = GuardedFetcher(session, total=0.3, connect=2.0, cap=1 << 20)
        async with asyncio.timeout(10):
            with pytest.raises(UpstreamError) as caught:
                await fetcher.fetch(str(server.make_url("/x.png")), trusted=str(server.make_url("/v1")), label="b")
    assert caught.value.describe() == "b: timed out"
