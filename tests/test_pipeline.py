"""The generation pipeline through the real app: tokens, models, enhancement, refusal handling,
failover, fallback, failures, deadlines."""

from __future__ import annotations

import asyncio

import orjson

from tests.conftest import ACCESS_KEY, ADMIN_TOKEN
from tests.support.fakes import FakeImageBackend, png

Q = f"key={ACCESS_KEY}"


async def two_backends(serve):
    a, b = FakeImageBackend(image=png(color=(1, 2, 3))), FakeImageBackend(image=png(color=(4, 5, 6)))
    await serve(a)
    await serve(b)
    return a, b


async def test_per_backend_tokens_and_models(iris, serve):
    a, b = await two_backends(serve)
    client = await iris(
        BACKEND_API_URLS=f"{a.url}/v1,{b.url}",
        AUTH_TOKEN="sk-fallback",
        TOKEN_MAP=orjson.dumps({f"{a.url}/v1": "sk-a"}).decode(),
        MODEL_MAP=orjson.dumps({f"{a.url}/v1": {"dall-e-3": "a-model"}}).decode(),
    )
    for seed in range(12):
        assert (await client.get(f"/prompt/cat?{Q}&seed={seed}&model=dall-e-3")).status == 200
    assert a.calls and b.calls
    assert {c.headers["Authorization"] for c in a.calls} == {"Bearer sk-a"}
    assert {c.headers["Authorization"] for c in b.calls} == {"Bearer sk-fallback"}
    assert {c.json["model"] for c in a.calls} == {"a-model"}
    assert {c.json["model"] for c in b.calls} == {"dall-e-3"}


async def test_weights_steer_real_traffic(iris, serve):
    a, b = await two_backends(serve)
    client = await iris(BACKEND_API_URLS=f"{a.url},{b.url}",
                        BACKEND_WEIGHTS=orjson.dumps({a.url: 9, b.url: 1}).decode())
    for seed in range(60):
        await client.get(f"/prompt/dog?{Q}&seed={seed}")
    assert len(a.calls) > len(b.calls) * 2


async def test_failover_on_error_garbage_and_non_images(iris, serve):
    good = FakeImageBackend()
    await serve(good)
    for mode in ("error500", "garbage", "notimage", "notimage_url", "bad400"):
        bad = FakeImageBackend(mode=mode)
        await serve(bad)
        client = await iris(BACKEND_API_URLS=f"{bad.url},{good.url}",
                            BACKEND_WEIGHTS=orjson.dumps({bad.url: 1000, good.url: 1}).decode())
        resp = await client.get(f"/prompt/{mode}?{Q}")
        assert resp.status == 200, mode
        assert await resp.read() == good.image
        assert resp.headers["Content-Type"] == "image/png"
        await client.close()


async def test_refusal_then_safety_rewrite_then_success(iris, serve, llm):
    strict = FakeImageBackend(mode="refuse")
    await serve(strict)
    client = await iris(BACKEND_API_URLS=strict.url, DE_NSFW_ENABLED="true",
                        LLM_OPTIMIZATION_API_URL=llm.url, DE_NSFW_TEMPLATE="Make safe: <<{ORIGINAL_PROMPT}>>",
                        BLOCKED_RETRY_ATTEMPTS="1")
    strict.accept_prefix = "SAFE"  # the fake refuses until it sees a rewritten prompt
    llm.prefix = "SAFE"
    resp = await client.get(f"/prompt/something%20edgy?{Q}")
    assert resp.status == 200
    prompts = [c.json["prompt"] for c in strict.calls]
    assert prompts == ["something edgy", "SAFE something edgy"]
    assert llm.calls[0].json["messages"][0]["content"] == "Make safe: <<something edgy>>"


async def test_plain_400_is_not_a_refusal(iris, serve, llm, pollinations):
    picky = FakeImageBackend(mode="bad400")
    await serve(picky)
    client = await iris(BACKEND_API_URLS=picky.url, DE_NSFW_ENABLED="true", LLM_OPTIMIZATION_API_URL=llm.url,
                        POLLINATIONS_URL=pollinations.url)
    resp = await client.get(f"/prompt/teapot?{Q}")
    assert resp.status == 200
    assert llm.calls == []  # no safety rewrite for an ordinary error
    assert len(pollinations.calls) == 1


async def test_rewrite_attempts_are_bounded_then_fallback(iris, serve, llm, pollinations):
    strict = FakeImageBackend(mode="refuse")
    await serve(strict)
    client = await iris(BACKEND_API_URLS=strict.url, DE_NSFW_ENABLED="true", LLM_OPTIMIZATION_API_URL=llm.url,
                        DE_NSFW_MAX_ATTEMPTS="3", BLOCKED_RETRY_ATTEMPTS="1", POLLINATIONS_URL=pollinations.url,
                        DE_NSFW_TEMPLATE="Safer: <<{ORIGINAL_PROMPT}>>")
    resp = await client.get(f"/prompt/edgy?{Q}&width=320&height=240&seed=9&model=flux&nologo=true&safe=true")
    assert resp.status == 200
    assert await resp.read() == pollinations.image
    assert resp.headers["Content-Type"] == "image/jpeg" or resp.headers["Content-Type"] == "image/png"
    assert len(llm.calls) == 3 and len(strict.calls) == 4
    call = pollinations.calls[0]
    assert call.query["width"] == "320" and call.query["height"] == "240"
    assert call.query["seed"] == "9" and call.query["model"] == "flux" and call.query["safe"] == "true"
    assert call.path == "enhanced: enhanced: enhanced: edgy"  # the latest rewrite


async def test_all_backends_down_falls_back_to_pollinations(iris, serve, pollinations):
    a = FakeImageBackend(mode="error500")
    await serve(a)
    client = await iris(BACKEND_API_URLS=a.url, POLLINATIONS_URL=pollinations.url)
    resp = await client.get(f"/prompt/a%20red%20apple?{Q}&seed=3")
    assert resp.status == 200
    assert await resp.read() == pollinations.image
    assert pollinations.calls[0].path == "a red apple"
    again = await client.get(f"/prompt/a%20red%20apple?{Q}&seed=3")
    assert again.headers["X-Cache"] == "HIT"


async def test_everything_down_is_a_502_naming_stages_without_secrets(iris, serve, pollinations):
    a = FakeImageBackend(mode="error500")
    await serve(a)
    pollinations.mode = "error500"
    client = await iris(BACKEND_API_URLS=a.url, POLLINATIONS_URL=pollinations.url, AUTH_TOKEN="sk-SECRET-TOKEN")
    resp = await client.get(f"/prompt/x?{Q}")
    assert resp.status == 502
    body = await resp.json()
    assert body["error"]["code"] == "upstream_failed"
    assert "backends" in body["error"]["message"] and "fallback" in body["error"]["message"]
    text = orjson.dumps(body).decode()
    assert "sk-SECRET-TOKEN" not in text and ACCESS_KEY not in text


async def test_failures_are_remembered_briefly_not_forever(iris, serve):
    a = FakeImageBackend(mode="error500")
    await serve(a)
    client = await iris(BACKEND_API_URLS=a.url, POLLINATIONS_FALLBACK="false", FAILURE_CACHE_TTL="0.5",
                        BREAKER_THRESHOLD="100")
    assert (await client.get(f"/prompt/x?{Q}")).status == 502
    assert (await client.get(f"/prompt/x?{Q}")).status == 502
    assert len(a.calls) == 1  # the second was answered from the short failure memory
    a.mode = "b64"
    await asyncio.sleep(0.7)
    resp = await client.get(f"/prompt/x?{Q}")
    assert resp.status == 200  # the outage did not poison the prompt
    assert len(a.calls) == 2


async def test_slow_backends_time_out_and_fail_over(iris, serve):
    slow, fast = FakeImageBackend(mode="slow"), FakeImageBackend()
    await serve(slow)
    await serve(fast)
    client = await iris(BACKEND_API_URLS=f"{slow.url},{fast.url}", BACKEND_TIMEOUT="0.3",
                        BACKEND_WEIGHTS=orjson.dumps({slow.url: 1000, fast.url: 1}).decode())
    resp = await client.get(f"/prompt/snail?{Q}")
    assert resp.status == 200 and await resp.read() == fast.image


async def test_overall_deadline_is_a_504(iris, serve):
    slow = FakeImageBackend(mode="slow")
    await serve(slow)
    client = await iris(BACKEND_API_URLS=slow.url, REQUEST_DEADLINE="1", POLLINATIONS_FALLBACK="false")
    resp = await client.get(f"/prompt/sloth?{Q}")
    assert resp.status == 504
    assert (await resp.json())["error"]["code"] == "deadline_exceeded"


async def test_prompt_enhancement_is_used_and_memoised(iris, backend, llm):
    client = await iris(BACKEND_API_URLS=backend.url, LLM_OPTIMIZATION_ENABLED="true",
                        LLM_OPTIMIZATION_API_URL=f"{llm.url}/v1", LLM_OPTIMIZATION_TOKEN="sk-llm",
                        LLM_OPTIMIZATION_TEMPLATE="Improve <<{ORIGINAL_PROMPT}>> twice: {ORIGINAL_PROMPT}")
    resp = await client.get(f"/prompt/owl?{Q}&seed=1")
    assert resp.status == 200
    assert backend.calls[0].json["prompt"] == "enhanced: owl"
    assert llm.calls[0].json["messages"][0]["content"] == "Improve <<owl>> twice: owl"
    assert llm.calls[0].headers["Authorization"] == "Bearer sk-llm"
    assert llm.calls[0].json["model"] == "gpt-4.1-mini"
    await client.get(f"/prompt/owl?{Q}&seed=2")
    assert len(llm.calls) == 1  # memoised
    assert backend.calls[1].json["prompt"] == "enhanced: owl"


async def test_enhance_false_skips_the_llm(iris, backend, llm):
    client = await iris(BACKEND_API_URLS=backend.url, LLM_OPTIMIZATION_ENABLED="true",
                        LLM_OPTIMIZATION_API_URL=llm.url)
    await client.get(f"/prompt/owl?{Q}&enhance=false")
    assert llm.calls == [] and backend.calls[0].json["prompt"] == "owl"


async def test_llm_failure_or_untagged_answer_keeps_the_prompt(iris, backend, llm):
    client = await iris(BACKEND_API_URLS=backend.url, LLM_OPTIMIZATION_ENABLED="true",
                        LLM_OPTIMIZATION_API_URL=llm.url, LLM_TIMEOUT="0.3")
    for mode, prompt in (("error500", "one"), ("notags", "two"), ("slow", "three")):
        llm.mode = mode
        resp = await client.get(f"/prompt/{prompt}?{Q}")
        assert resp.status == 200, mode
        assert backend.calls[-1].json["prompt"] == prompt, mode


async def test_status_shows_backends_and_cache_but_no_secret(iris, serve):
    a = FakeImageBackend(mode="error500")
    await serve(a)
    client = await iris(BACKEND_API_URLS=a.url, AUTH_TOKEN="sk-TOPSECRET", POLLINATIONS_FALLBACK="false",
                        BREAKER_THRESHOLD="1", LLM_OPTIMIZATION_ENABLED="true",
                        LLM_OPTIMIZATION_API_URL="http://127.0.0.1:9", LLM_OPTIMIZATION_TOKEN="sk-LLMSECRET")
    await client.get(f"/prompt/x?{Q}&enhance=false")
    public = await (await client.get("/status")).json()
    assert set(public) == {"status", "version"}
    resp = await client.get("/status", headers={"X-Admin-Token": ADMIN_TOKEN})
    text = await resp.text()
    for secret in ("sk-TOPSECRET", "sk-LLMSECRET", ACCESS_KEY, ADMIN_TOKEN):
        assert secret not in text
    full = orjson.loads(text)
    assert full["backends"][0]["url"] == a.url
    assert full["backends"][0]["state"] == "cooling_down"
    assert full["backends"][0]["token"] is True
    assert full["cache"]["misses"] >= 1
    assert full["llm"]["optimization"] is True


# --- what counts against a backend, and which failures are kept (issue 14, item 5) ---------------

async def status_of(client) -> dict:
    return await (await client.get("/status", headers={"X-Admin-Token": ADMIN_TOKEN})).json()


async def test_a_wait_in_irises_own_connection_pool_is_not_the_backends_time(iris, serve):
    """One connection to the backend, three different misses at once: the second waits for the
    first (its wait is not on the backend's clock, so it is served), the third waits longer than
    the backend's whole time (it fails, as a local wait, counted against nobody and not kept)."""
    slow = FakeImageBackend(delay=0.6)
    await serve(slow)
    client = await iris(BACKEND_API_URLS=slow.url, UPSTREAM_CONNECTIONS_PER_HOST="1", BACKEND_TIMEOUT="1",
                        BREAKER_THRESHOLD="1", POLLINATIONS_FALLBACK="false")
    first, second, third = await asyncio.gather(*(client.get(f"/prompt/{name}?{Q}")
                                                  for name in ("one", "two", "three")))
    assert (first.status, second.status) == (200, 200)
    assert third.status == 502
    assert "Iris's own pool" in (await third.json())["error"]["message"]
    row = (await status_of(client))["backends"][0]
    assert (row["state"], row["failures"], row["calls"]) == ("healthy", 0, 2)
    again = await client.get(f"/prompt/three?{Q}")  # the local wait was not kept as its failure
    assert again.status == 200 and again.headers["X-Cache"] == "MISS"


async def test_cooling_down_is_never_kept_as_a_prompts_failure(iris, serve):
    flaky = FakeImageBackend(mode="error500")
    await serve(flaky)
    client = await iris(BACKEND_API_URLS=flaky.url, BREAKER_THRESHOLD="1", BREAKER_COOLDOWN="0.3",
                        POLLINATIONS_FALLBACK="false", FAILURE_CACHE_TTL="60")
    assert (await client.get(f"/prompt/one?{Q}")).status == 502  # the backend's own 500: kept briefly
    skipped = await client.get(f"/prompt/two?{Q}")
    assert skipped.status == 502 and "cooling down" in (await skipped.json())["error"]["message"]
    assert len(flaky.calls) == 1
    flaky.mode = "b64"
    await asyncio.sleep(1.1)  # the cool-down and its probe window are over
    back = await client.get(f"/prompt/two?{Q}")
    assert back.status == 200 and back.headers["X-Cache"] == "MISS"
    kept = await client.get(f"/prompt/one?{Q}")
    assert kept.status == 502 and kept.headers["X-Cache"] == "HIT"  # FAILURE_CACHE_TTL, as before


async def test_a_failure_kept_before_a_restart_with_other_backends_is_not_served(iris, serve):
    broken, fixed = FakeImageBackend(mode="error500"), FakeImageBackend()
    await serve(broken)
    await serve(fixed)
    before = await iris(BACKEND_API_URLS=broken.url, POLLINATIONS_FALLBACK="false", FAILURE_CACHE_TTL="600")
    assert (await before.get(f"/prompt/apple?{Q}")).status == 502
    again = await iris(BACKEND_API_URLS=broken.url, POLLINATIONS_FALLBACK="false", FAILURE_CACHE_TTL="600")
    assert (await again.get(f"/prompt/apple?{Q}")).headers["X-Cache"] == "HIT"  # same settings: kept
    after = await iris(BACKEND_API_URLS=fixed.url, POLLINATIONS_FALLBACK="false", FAILURE_CACHE_TTL="600")
    resp = await after.get(f"/prompt/apple?{Q}")
    assert resp.status == 200 and resp.headers["X-Cache"] == "MISS" and await resp.read() == fixed.image


async def test_status_reports_latency_cool_down_and_degraded(iris, serve):
    backend = FakeImageBackend(delay=0.05)
    await serve(backend)
    client = await iris(BACKEND_API_URLS=backend.url, BREAKER_THRESHOLD="2", BREAKER_COOLDOWN="30",
                        POLLINATIONS_FALLBACK="false")
    assert (await client.get(f"/prompt/one?{Q}")).status == 200
    row = (await status_of(client))["backends"][0]
    assert row["state"] == "healthy" and row["latency_ms"] >= 50 and row["cooldown_remaining"] == 0
    backend.mode = "error500"
    assert (await client.get(f"/prompt/two?{Q}")).status == 502
    row = (await status_of(client))["backends"][0]
    assert (row["state"], row["consecutive_failures"], row["last_error"]) == ("degraded", 1, "HTTP 500")
    assert (await client.get(f"/prompt/three?{Q}")).status == 502
    row = (await status_of(client))["backends"][0]
    assert row["state"] == "cooling_down" and 29 <= row["cooldown_remaining"] <= 30
    assert (row["calls"], row["failures"]) == (3, 2)
