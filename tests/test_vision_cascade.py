"""The cascade over fake providers on 127.0.0.1: where it stops, escalation on errors, timeouts and
unusable replies, the judge and its failure, the deadline, per-user keys, and no secret leaking."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from proxy.config.image import BreakerSettings, UpstreamTimeouts
from proxy.config.vision import ProviderSettings, VisionSettings
from proxy.errors import DeadlineExceeded, UpstreamFailed
from proxy.upstream.openai import OpenAIClient
from proxy.vision.asking import Asker, Breakers
from proxy.vision.cascade import Cascade
from proxy.vision.frames import prepare
from proxy.vision.kinds.chat import ChatKind
from proxy.vision.providers import providers_for
from proxy.vision.questions import Task
from tests.support.vision_fakes import FakeProvider, scene

KEYS = {"a": "sk-server-key-aaaa1111", "b": "sk-server-key-bbbb2222", "c": "sk-server-key-cccc3333"}


@pytest.fixture
async def fakes(serve: Any) -> dict[str, FakeProvider]:
    out = {}
    for name in KEYS:
        fake = FakeProvider(name=name, answer=f"answer from {name}")
        await serve(fake)
        out[name] = fake
    return out


@pytest.fixture
async def run(fakes: dict[str, FakeProvider]):
    session = aiohttp.ClientSession()
    breakers = Breakers(BreakerSettings(threshold=3, cooldown=60.0))

    async def ask(*, question: str = "What is this?", own_keys: dict | None = None,
                  thresholds: dict | None = None, **changes: Any):
        providers = tuple(ProviderSettings(n, f"{f.url}/v1", f"model-{n}", KEYS[n],
                                           threshold=(thresholds or {}).get(n), profile_field=f"{n}_api_key")
                          for n, f in fakes.items())
        cfg = VisionSettings(**{"providers": providers, "call_timeout": 2.0, **changes})
        cascade = Cascade(Asker({"chat": ChatKind(OpenAIClient(session, UpstreamTimeouts()), 300)}, breakers), cfg)
        frame = prepare(scene(), cfg)
        return await cascade.run(Task(question), frame, providers_for(cfg, "alice", own_keys or {}))

    yield ask
    await session.close()


async def test_first_confident_answer_stops_the_cascade(run, fakes):
    outcome = await run()
    assert (outcome.provider, outcome.reading.answer, outcome.ledger.calls) == ("a", "answer from a", 1)
    assert not fakes["b"].calls and not fakes["c"].calls
    call = fakes["a"].calls[0]
    assert call.body["model"] == "model-a"
    assert call.headers["Authorization"] == f"Bearer {KEYS['a']}"
    assert call.text == "What is this?"
    assert call.image_url.startswith("data:image/jpeg;base64,")
    assert '"confidence"' in call.system


async def test_low_confidence_escalates_to_the_next(run, fakes):
    fakes["a"].confidence = 0.4
    fakes["b"].confidence = 0.75
    outcome = await run()
    assert outcome.provider == "b" and outcome.ledger.calls == 2
    assert not fakes["c"].calls
    assert [name for name, _ in outcome.candidates] == ["a", "b"]


async def test_threshold_is_configurable_and_per_provider(run, fakes):
    fakes["a"].confidence = 0.6
    assert (await run(threshold=0.5)).provider == "a"
    assert (await run(threshold=0.5, thresholds={"a": 0.65})).provider == "b"
    assert (await run(thresholds={"a": 0.55})).provider == "a"


@pytest.mark.parametrize("mode", ["error500", "error401", "text", "slow"])
async def test_failures_escalate_and_are_never_the_answer(run, fakes, mode):
    fakes["a"].mode = mode
    outcome = await run(call_timeout=0.3)
    assert outcome.provider == "b"
    assert outcome.reading.answer == "answer from b"
    assert "a" not in dict(outcome.candidates)
    assert outcome.ledger.calls == 2
    assert any(note.startswith("a: ") for note in outcome.ledger.notes)


@pytest.mark.parametrize("mode", ["fenced", "prose", "percent"])
async def test_wrapped_replies_are_understood(run, fakes, mode):
    fakes["a"].mode = mode
    outcome = await run()
    assert outcome.provider == "a" and outcome.reading.confidence == pytest.approx(0.9)


async def test_judge_sees_image_question_and_candidates(run, fakes):
    for fake in fakes.values():
        fake.confidence = 0.3
    fakes["b"].confidence = 0.5
    outcome = await run(question="How many apples?")
    assert outcome.judged and outcome.provider == "a"
    assert outcome.reading.answer == "A red apple on a table"
    assert outcome.ledger.calls == 4
    [judgement] = fakes["a"].judgements
    assert "How many apples?" in judgement.text
    for name in KEYS:
        assert f"answer from {name}" in judgement.text
    assert judgement.image_url == fakes["a"].answers[0].image_url


async def test_named_judge(run, fakes):
    for fake in fakes.values():
        fake.confidence = 0.3
    outcome = await run(judge="c")
    assert outcome.provider == "c" and len(fakes["c"].judgements) == 1 and not fakes["a"].judgements


@pytest.mark.parametrize("judge_mode", ["error500", "text"])
async def test_failed_judge_means_the_most_confident_wins(run, fakes, judge_mode):
    fakes["a"].confidence, fakes["b"].confidence, fakes["c"].confidence = 0.2, 0.6, 0.4
    fakes["a"].judge_mode = judge_mode
    outcome = await run()
    assert not outcome.judged
    assert (outcome.provider, outcome.reading.answer) == ("b", "answer from b")
    assert outcome.ledger.calls == 4


async def test_one_unsure_answer_needs_no_judge(run, fakes):
    fakes["a"].confidence = 0.2
    fakes["b"].mode = fakes["c"].mode = "error500"
    outcome = await run()
    assert (outcome.provider, outcome.judged, outcome.ledger.calls) == ("a", False, 3)
    assert not fakes["a"].judgements


async def test_all_failing_is_502_without_secrets(run, fakes):
    for fake in fakes.values():
        fake.mode = "error401"
    with pytest.raises(UpstreamFailed) as caught:
        await run()
    message = caught.value.message
    assert "HTTP 401" in message
    for key in KEYS.values():
        assert key not in message


async def test_deadline_bounds_the_whole_cascade(run, fakes):
    for fake in fakes.values():
        fake.delay = 0.4
        fake.confidence = 0.1
    started = time.monotonic()
    outcome = await run(deadline=0.6, call_timeout=5.0)
    assert time.monotonic() - started < 1.5
    assert outcome.provider == "a"  # a answered in time; b was cut off; no time for c or the judge
    assert not fakes["c"].calls


async def test_deadline_with_no_answer_is_504(run, fakes):
    for fake in fakes.values():
        fake.mode = "slow"
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await run(deadline=0.5, call_timeout=5.0)
    assert time.monotonic() - started < 1.5


async def test_profile_keys_override_the_servers(run, fakes):
    outcome = await run(own_keys={"a_api_key": "sk-alice-own-key-0001"})
    assert outcome.provider == "a"
    assert fakes["a"].calls[0].headers["Authorization"] == "Bearer sk-alice-own-key-0001"


async def test_a_users_bad_key_does_not_cool_the_provider_down_for_others(run, fakes):
    fakes["a"].mode = "error401"
    for _ in range(4):
        await run(own_keys={"a_api_key": "sk-alice-bad-key-0001"})
    fakes["a"].mode = "json"
    fakes["a"].calls.clear()
    outcome = await run()
    assert outcome.provider == "a" and len(fakes["a"].calls) == 1


async def test_a_failing_server_key_cools_the_provider_down(run, fakes):
    fakes["a"].mode = "error500"
    for _ in range(3):
        await run()
    fakes["a"].mode = "json"
    fakes["a"].calls.clear()
    outcome = await run()
    assert outcome.provider == "b" and not fakes["a"].calls
    assert outcome.ledger.calls == 1
    assert "a: cooling down" in outcome.ledger.notes
