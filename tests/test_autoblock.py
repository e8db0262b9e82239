"""Automatic blocks spare loopback addresses and trusted proxies (behind an unnamed reverse proxy,
one guesser used to lock every user and the admin out for an hour), which still take the
wrong-key rate limit; and Iris says when most requests come from one loopback or private peer
while TRUSTED_PROXIES is empty."""

from __future__ import annotations

import logging

from proxy.keys import DATABASE, GUARD
from proxy.security import blacklist
from proxy.security.peers import LEAST, WINDOW, PeerWatch
from tests.conftest import ADMIN_TOKEN
from tests.support.account_helpers import add_profile
from tests.support.pages_fakes import dashboard

ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


async def test_loopback_is_never_blocked_automatically(iris):
    client = await iris(RATE_LIMIT_AUTH="100/minute", BLACKLIST_AUTO_FAILURES="3", BLACKLIST_REFRESH="0.1")
    key = await add_profile(client, "alice")
    statuses = [(await client.post(f"/auth-wrong-guess-{n:03d}")).status for n in range(6)]
    assert statuses == [401] * 6
    assert await client.app[DATABASE].run(blacklist.entries) == []
    assert (await client.post(f"/auth-{key}")).status == 200
    resp = await client.get("/status", headers=ADMIN)
    assert resp.status == 200 and "backends" in await resp.json(), "the admin is not locked out"


async def test_loopback_still_takes_the_wrong_key_rate_limit(iris):
    client = await iris(RATE_LIMIT_AUTH="2/minute", BLACKLIST_AUTO_FAILURES="2")
    statuses = [(await client.post(f"/auth-wrong-guess-{n:03d}")).status for n in range(4)]
    assert statuses == [401, 401, 429, 429]
    assert await client.app[DATABASE].run(blacklist.entries) == []


async def test_a_trusted_proxy_is_never_blocked_but_the_clients_behind_it_are(iris):
    client = await iris(RATE_LIMIT_AUTH="100/minute", BLACKLIST_AUTO_FAILURES="3", BLACKLIST_REFRESH="0.1",
                        TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8")
    inner = {"X-Forwarded-For": "10.0.0.5"}  # every hop trusted: the client is the inner proxy
    outsider = {"X-Forwarded-For": "203.0.113.9"}
    inner_statuses = [(await client.post(f"/auth-wrong-guess-{n:03d}", headers=inner)).status for n in range(6)]
    outsider_statuses = [(await client.post(f"/auth-wrong-guess-{n:03d}", headers=outsider)).status
                         for n in range(6)]
    assert inner_statuses == [401] * 6
    assert outsider_statuses == [401] * 4 + [403] * 2
    entries = await client.app[DATABASE].run(blacklist.entries)
    assert [e.network for e in entries] == ["203.0.113.9/32"]
    guard = client.app[GUARD]
    assert guard.never_blocked("127.0.0.1") and guard.never_blocked("::1") and guard.never_blocked("10.9.8.7")
    assert guard.never_blocked("::ffff:127.0.0.1")
    assert not guard.never_blocked("203.0.113.9") and not guard.never_blocked("192.168.1.2")
    assert not guard.never_blocked("garbage")


async def test_one_loopback_peer_without_trusted_proxies_is_reported(iris, backend, caplog):
    client = await iris(BACKEND_API_URLS=backend.url)
    with caplog.at_level(logging.WARNING, logger="proxy.security.peers"):
        for _ in range(LEAST):
            assert (await client.get("/status")).status == 200
    warnings = [r.getMessage() for r in caplog.records if r.name == "proxy.security.peers"]
    assert len(warnings) == 1 and "127.0.0.1" in warnings[0] and "TRUSTED_PROXIES" in warnings[0]
    html, _ = await dashboard(client)
    assert 'id="lone-peer"' in html and "Set TRUSTED_PROXIES" in html


async def test_with_trusted_proxies_nothing_is_counted_or_reported(iris, backend, caplog):
    client = await iris(BACKEND_API_URLS=backend.url, TRUSTED_PROXIES="10.0.0.1")
    with caplog.at_level(logging.WARNING, logger="proxy.security.peers"):
        for _ in range(LEAST):
            await client.get("/status")
    assert not [r for r in caplog.records if r.name == "proxy.security.peers"]
    html, _ = await dashboard(client)
    assert 'id="lone-peer"' not in html


def test_only_a_loopback_or_private_majority_is_a_lone_peer():
    def watched(*peers: tuple[str, int]) -> PeerWatch:
        watch = PeerWatch(enabled=True)
        for peer, count in peers:
            for _ in range(count):
                watch.saw(peer)
        return watch

    assert watched(("127.0.0.1", LEAST - 1)).lone_peer() is None, "too few requests to say"
    found = watched(("127.0.0.1", LEAST)).lone_peer()
    assert found is not None and (found.address, found.share) == ("127.0.0.1", 1.0)
    assert watched(("10.1.2.3", 60), ("93.184.216.34", 40)).lone_peer().address == "10.1.2.3"
    assert watched(("192.168.0.2", 50), ("93.184.216.34", 50)).lone_peer() is None, "half is not most"
    assert watched(("93.184.216.34", 90), ("127.0.0.1", 10)).lone_peer() is None, "a public peer"
    assert PeerWatch(enabled=False).lone_peer() is None
    probed = watched(("93.184.216.34", 60))
    for _ in range(1000):
        probed.saw("127.0.0.1", "healthz")  # a health check or a scrape says nothing about a proxy
        probed.saw("10.0.0.9", "metrics")
    assert probed.lone_peer() is None and probed.total == 60


def test_counts_age_without_inflating_a_peers_share():
    watch = PeerWatch(enabled=True)
    for n in range(WINDOW - 3000):
        watch.saw(f"203.0.{n % 200}.{n % 250}")  # many public clients
    for _ in range(3000):
        watch.saw("127.0.0.1")  # a third of the traffic: not most
    assert watch.total < WINDOW and len(watch.counts) <= 1000
    assert watch.lone_peer() is None
    for _ in range(WINDOW):
        watch.saw("127.0.0.1")
    found = watch.lone_peer()
    assert found is not None and found.share > 0.8, "recent traffic outweighs the old"
