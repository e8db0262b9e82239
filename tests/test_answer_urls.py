"""A backend's url answer is fetched only from public addresses, the backend's own, or the networks
of IMAGE_FETCH_ALLOW: never from elsewhere on the network behind Iris, by a redirect neither.
"Elsewhere" is a service on 127.0.0.2, which loopback reaches like any private address."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from proxy.config import load_settings
from proxy.config.image import UpstreamTimeouts
from proxy.errors import ConfigError
from proxy.upstream.answer_urls import AnswerFetcher
from proxy.upstream.errors import UpstreamError
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
    fake.base = str(server.make_url("")).rstrip("/")
    assert fake.base.startswith("http://127.0.0.2:")
    yield fake
    await server.close()


async def answer(iris, backend: FakeImageBackend, **env: str):
    client = await iris(BACKEND_API_URLS=backend.url, POLLINATIONS_FALLBACK="false", **env)
    return await client.get(f"/prompt/a%20red%20apple?{Q}")


async def test_the_backends_own_files_are_fetched(iris, backend):
    backend.mode = "url"
    resp = await answer(iris, backend)
    assert resp.status == 200 and await resp.read() == backend.image
    assert backend.fetched == ["/files/img.png"]
    assert backend.fetch_hosts == [backend.url.removeprefix("http://")]  # the URL's own Host header


async def test_a_url_into_another_private_host_is_refused(iris, backend, internal):
    backend.mode, backend.answer_url = "url", f"{internal.base}/files/img.png"
    resp = await answer(iris, backend)
    assert resp.status == 502
    assert "private network" in (await resp.json())["error"]["message"]
    assert internal.fetched == []


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


async def fetch_by_name(addresses: list[str], backend: FakeImageBackend, *, scheme: str = "http",
                        trust: ssl.SSLContext | None = None) -> bytes:
    """The backend's file fetched as ``SCHEME://images.test:PORT/...`` where the name has ``addresses``."""
    port = URL(backend.url).port
    timeouts = UpstreamTimeouts(connect=2.0, backend=5.0, fetch_allow=(ipaddress.ip_network("127.0.0.0/8"),))
    connector = aiohttp.TCPConnector(ssl=trust if trust is not None else True)
    async with aiohttp.ClientSession(connector=connector) as session:
        fetcher = AnswerFetcher(session, timeouts, Names(**{"images.test": addresses}))
        return await fetcher.fetch(f"{scheme}://images.test:{port}/files/img.png", "http://backend.test",
                                   label="backend")


async def test_an_address_that_takes_no_connection_is_passed_over_for_the_next(backend):
    body = await fetch_by_name(["127.0.0.3", "127.0.0.1"], backend)  # nothing listens on 127.0.0.3
    assert body == backend.image and backend.fetched == ["/files/img.png"]
    assert backend.fetch_hosts == [f"images.test:{URL(backend.url).port}"]


async def test_when_no_address_takes_the_connection_the_error_says_so(backend):
    with pytest.raises(UpstreamError) as caught:
        await fetch_by_name(["127.0.0.3", "127.0.0.4"], backend)
    assert "connection failed" in caught.value.reason and backend.fetched == []


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
