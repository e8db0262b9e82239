"""The client's address behind a reverse proxy: every line of a forwarding header counts (a client
cannot hide behind a line of its own), and the dashboard's own-address guard uses that address."""

from __future__ import annotations

from multidict import CIMultiDict

from proxy.config.env import Env
from proxy.keys import DATABASE
from proxy.security import blacklist
from proxy.security.address import client_address, client_used_https
from tests.conftest import ADMIN_TOKEN
from tests.support.account_helpers import add_profile, guard_of
from tests.support.pages_fakes import dashboard

TRUSTED = Env({"TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"}).networks("TRUSTED_PROXIES")
VICTIM, ATTACKER = "203.0.113.7", "198.51.100.1"


def lines(name: str, *values: str) -> CIMultiDict[str]:
    """One header line per value, as a proxy that adds its own line (HAProxy's forwardfor) sends."""
    return CIMultiDict((name, value) for value in values)


async def test_a_second_forwarded_for_line_cannot_take_over_a_session(iris):
    """The client writes the victim's address in a line of its own; its proxy adds the client's
    real address in another. Only the proxy's line is believed."""
    client = await iris(TRUSTED_PROXIES="127.0.0.1", BLACKLIST_AUTO_FAILURES="0")
    key = await add_profile(client, "alice")
    assert (await client.post(f"/auth-{key}", headers={"X-Forwarded-For": VICTIM})).status == 200
    assert (await client.get("/prompt-alice", headers={"X-Forwarded-For": VICTIM})).status == 200
    forged = lines("X-Forwarded-For", VICTIM, ATTACKER)
    resp = await client.get("/prompt-alice", headers=forged)
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "auth_required"


async def test_a_second_forwarded_for_line_cannot_escape_the_blacklist_or_the_limits(iris):
    client = await iris(TRUSTED_PROXIES="127.0.0.1", BLACKLIST_AUTO_FAILURES="0", RATE_LIMIT_AUTH="2/minute")
    await client.app[DATABASE].run(blacklist.add, ATTACKER, "test")
    await guard_of(client).blacklist.reload()
    disguised = lines("X-Forwarded-For", "192.0.2.50", ATTACKER)
    resp = await client.get("/status", headers=disguised)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "blocked"
    statuses = [(await client.post(f"/auth-guess-{n:04d}",
                                   headers=lines("X-Forwarded-For", f"192.0.2.{n}", "198.51.100.2"))).status
                for n in range(3)]
    assert statuses == [401, 401, 429], "each made-up first line is not a fresh bucket"


def test_every_line_is_read_in_order_and_walked_from_the_right():
    assert client_address("127.0.0.1", f"{VICTIM}, {ATTACKER}", TRUSTED) == ATTACKER
    assert client_address("127.0.0.1", f"{VICTIM}, {ATTACKER}, 10.0.0.9", TRUSTED) == ATTACKER
    assert client_address("127.0.0.1", "10.0.0.1, 10.0.0.2", TRUSTED) == "10.0.0.1"
    assert client_address("127.0.0.1", f"{VICTIM}, unknown", TRUSTED) == "127.0.0.1"
    assert client_address("127.0.0.1", None, TRUSTED) == "127.0.0.1"
    assert client_address(ATTACKER, VICTIM, TRUSTED) == ATTACKER


def test_forwarded_proto_is_read_at_the_clients_hop():
    # one proxy that appends: the client's own "https" line comes first and is not believed
    assert not client_used_https(False, "127.0.0.1", "https, http", ATTACKER, TRUSTED)
    assert client_used_https(False, "127.0.0.1", "http, https", ATTACKER, TRUSTED)
    # two trusted proxies that append: the outer one (the client's) wrote the second value from the right
    assert client_used_https(False, "127.0.0.1", "https, http", f"{ATTACKER}, 10.0.0.5", TRUSTED)
    # a proxy that replaces the header leaves one value: its own
    assert client_used_https(False, "127.0.0.1", "https", f"{ATTACKER}, 10.0.0.5", TRUSTED)
    assert not client_used_https(False, ATTACKER, "https", None, TRUSTED)
    assert not client_used_https(False, "127.0.0.1", "https", None, ())
    assert client_used_https(True, ATTACKER, None, None, ())


async def test_a_clients_own_forwarded_proto_line_does_not_decide_the_cookie(iris, backend):
    from proxy.admin.cookie import COOKIE

    client = await iris(BACKEND_API_URLS=backend.url, TRUSTED_PROXIES="127.0.0.1/32")
    for values, secure in ((("https", "http"), False), (("http", "https"), True)):
        headers = lines("X-Forwarded-Proto", *values)
        resp = await client.post("/admin/login", data={"token": ADMIN_TOKEN}, allow_redirects=False,
                                 headers=headers)
        assert resp.status == 303 and bool(resp.cookies[COOKIE]["secure"]) is secure, values


async def test_the_dashboard_refuses_to_block_the_admins_forwarded_address(iris, backend):
    """Behind a trusted proxy the admin's address is the forwarded one, not the proxy's."""
    client = await iris(BACKEND_API_URLS=backend.url, TRUSTED_PROXIES="127.0.0.1")
    admin = {"X-Forwarded-For": VICTIM}
    _, csrf = await dashboard(client)
    resp = await client.post("/admin/blacklist", data={"address": "203.0.113.0/24", "csrf": csrf},
                             headers=admin, allow_redirects=False)
    assert resp.status == 400 and "your own address (203.0.113.7)" in await resp.text()
    assert (await client.get("/status", headers=admin)).status == 200, "not locked out"
    page = await (await client.get("/admin", headers=admin)).text()
    assert "Your address is 203.0.113.7" in page
    other = await client.post("/admin/blacklist", data={"address": "127.0.0.0/8", "csrf": csrf},
                              headers=admin, allow_redirects=False)
    assert other.status == 303, "the proxy's own range is not the admin's address"
