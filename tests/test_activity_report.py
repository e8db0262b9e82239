"""``iris-proxy activity NAME`` says what it counts: the answers each provider gave (repeated ones
apart, which cost no call) and the provider calls really made, which are not the same number."""

from __future__ import annotations

from proxy.accounts import activity
from proxy.keys import ACCOUNTS
from tests.support.account_helpers import add_profile, cli


async def test_answers_and_provider_calls_are_counted_apart(iris, data_dir):
    client = await iris()
    await add_profile(client, "alice")
    accounts = client.app[ACCOUNTS]
    rows = [
        ("frame", {"success": True, "provider": "gemini", "calls": 1, "cached": False}),
        ("frame", {"success": True, "provider": "gemini", "calls": 0, "cached": True}),  # a repeated scene
        ("frame", {"success": True, "provider": "deepseek", "calls": 3, "cached": False}),  # escalated, judged
        ("analyze", {"provider": "qwen", "calls": 2, "confidence": 0.8}),
        ("frame", {"success": False, "error": "upstream_failed"}),
        ("auth", {"address": "127.0.0.1"}),
    ]
    for kind, fields in rows:
        await accounts.record_activity("alice", kind, **fields)

    report = await accounts.run(activity.report, "alice")
    assert report["answers"] == {"gemini": {"answers": 2, "repeated": 1}, "deepseek": {"answers": 1, "repeated": 0},
                                 "qwen": {"answers": 1, "repeated": 0}}
    assert report["provider_calls"] == 6

    code, out, _ = await cli(data_dir, "activity", "alice")
    assert code == 0
    lines = [line.split() for line in out.splitlines()]
    assert "provider calls: 6 (every provider asked, the judge included)" in out
    assert "answers returned, by the provider that gave them:" in out
    assert ["gemini", "2", "(1", "repeated", "from", "memory,", "no", "call)"] in lines
    assert ["deepseek", "1"] in lines and ["qwen", "1"] in lines
    assert "provider gemini" not in out
