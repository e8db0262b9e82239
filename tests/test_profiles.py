"""Profiles end to end: the Frame app's auth, prompts, provider keys encrypted at rest, frames,
retention and quota with real files, all through the real app and a real SQLite file."""

from __future__ import annotations

import asyncio
import os
import stat
import time

from proxy.accounts import activity, retention
from proxy.accounts.models import PROVIDER_KEY_NAMES
from proxy.keys import ACCOUNTS
from tests.support.account_helpers import add_profile, cli
from tests.support.fakes import jpeg

PROVIDER_KEYS = {"gemini_api_key": "AIzaSyD-gemini-secret-0001", "deepseek_api_key": "sk-deepseek-secret-0002",
                 "qwen_api_key": "sk-qwen-secret-0003", "chatgpt_api_key": "sk-openai-secret-0004"}


async def test_frame_app_auth_opens_a_session_for_its_address(iris):
    client = await iris()
    key = await add_profile(client, "alice")
    assert (await client.get("/prompt-alice")).status == 401
    resp = await client.post(f"/auth-{key}")
    body = await resp.json()
    assert resp.status == 200 and body["success"] is True and body["username"] == "alice"
    assert key not in await resp.text()
    resp = await client.get("/prompt-alice")
    assert resp.status == 200
    assert (await resp.json())["username"] == "alice"


async def test_wrong_auth_key_is_401_with_success_false_and_the_error(iris):
    client = await iris()
    await add_profile(client, "alice", "alice-key-0123456789")
    resp = await client.post("/auth-alice-key-0123456788")
    body = await resp.json()
    assert resp.status == 401
    assert body["success"] is False
    assert body["error"]["code"] == "invalid_key" and body["error"]["message"]


async def test_prompt_get_set_and_revert(iris):
    client = await iris(VISION_DEFAULT_PROMPT="Say what you see.")
    key = await add_profile(client, "alice")
    auth = {"Authorization": f"Bearer {key}"}
    body = await (await client.get("/prompt-alice", headers=auth)).json()
    assert body == {"username": "alice", "prompt": "Say what you see.", "is_custom": False,
                    "default_prompt": "Say what you see."}
    resp = await client.post("/prompt-alice", json={"prompt": "Read the sign aloud."}, headers=auth)
    assert resp.status == 200
    body = await (await client.get("/prompt-alice", headers=auth)).json()
    assert body["prompt"] == "Read the sign aloud." and body["is_custom"] is True
    assert await client.app[ACCOUNTS].prompt("alice") == "Read the sign aloud."
    await client.post("/prompt-alice", json={"prompt": ""}, headers=auth)
    body = await (await client.get("/prompt-alice", headers=auth)).json()
    assert body["prompt"] == "Say what you see." and body["is_custom"] is False
    assert await client.app[ACCOUNTS].prompt("alice") is None


async def test_prompt_input_is_checked(iris):
    client = await iris(VISION_MAX_PROMPT_CHARS="20")
    key = await add_profile(client, "alice")
    auth = {"Authorization": f"Bearer {key}"}
    cases = [({"prompt": "x" * 21}, "prompt_too_long"), ({"prompt": 5}, "invalid_prompt")]
    for payload, code in cases:
        resp = await client.post("/prompt-alice", json=payload, headers=auth)
        assert resp.status == 400 and (await resp.json())["error"]["code"] == code
    resp = await client.post("/prompt-alice", data=b"{not json", headers={**auth, "Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"


async def test_profile_keys_are_stored_encrypted_and_never_echoed(iris, data_dir):
    client = await iris()
    auth_key = await add_profile(client, "alice")
    resp = await client.post("/profile", json={"username": "alice", "api_keys": PROVIDER_KEYS},
                             headers={"Authorization": f"Bearer {auth_key}"})
    text = await resp.text()
    assert resp.status == 200, text
    assert (await resp.json())["api_keys"] == dict.fromkeys(PROVIDER_KEY_NAMES, True)
    assert not any(value in text for value in PROVIDER_KEYS.values())
    assert await client.app[ACCOUNTS].provider_keys("alice") == PROVIDER_KEYS
    on_disk = b"".join(path.read_bytes() for path in data_dir.glob("iris.db*"))
    assert b"alice" in on_disk  # the file really is the database
    for secret in [*PROVIDER_KEYS.values(), auth_key]:
        assert secret.encode() not in on_disk
    master = data_dir / "secrets" / "master-key"
    assert stat.S_IMODE(master.stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "iris.db").stat().st_mode) == 0o600


async def test_profile_key_update_and_removal(iris):
    client = await iris()
    auth_key = await add_profile(client, "alice")
    auth = {"Authorization": f"Bearer {auth_key}"}
    await client.post("/profile", json={"username": "alice", "api_keys": PROVIDER_KEYS}, headers=auth)
    resp = await client.post("/profile", json={"username": "alice", "api_keys": {"qwen_api_key": "",
                                                                                   "gemini_api_key": "new"}},
                             headers=auth)
    assert (await resp.json())["api_keys"]["qwen_api_key"] is False
    keys = await client.app[ACCOUNTS].provider_keys("alice")
    assert keys["gemini_api_key"] == "new" and "qwen_api_key" not in keys
    resp = await client.post("/profile", json={"username": "alice", "api_keys": {"grok_api_key": "x"}},
                             headers=auth)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "unknown_provider_key"


async def test_a_different_master_secret_is_refused_at_start_up(iris, settings_for, data_dir):
    import pytest

    from proxy.accounts.keyring import Keyring
    from proxy.accounts.service import open_context
    from proxy.errors import ConfigError

    client = await iris(PROXY_SECRET_KEY="first-master-secret")
    auth_key = await add_profile(client, "alice")
    await client.app[ACCOUNTS].set_provider_keys("alice", {"gemini_api_key": "AIza-secret"})
    await client.close()
    with pytest.raises(ConfigError) as refused:
        open_context(settings_for(PROXY_SECRET_KEY="second-master-secret"))
    assert "PROXY_SECRET_KEY" in str(refused.value) and "first-master-secret" not in str(refused.value)
    code, _, err = await cli(data_dir, "profiles", "list", PROXY_SECRET_KEY="second-master-secret")
    assert code == 2 and "another master secret" in err
    code, out, _ = await cli(data_dir, "profiles", "list", PROXY_SECRET_KEY="first-master-secret")
    assert code == 0 and out.startswith("alice")
    first, second = Keyring.from_master("first-master-secret"), Keyring.from_master("second-master-secret")
    assert second.decrypt(first.encrypt("AIza-secret")) is None
    assert first.digest(auth_key) != second.digest(auth_key)


async def test_frames_are_files_and_rows_and_can_be_turned_off(iris, data_dir):
    client = await iris()
    db = client.app[ACCOUNTS]
    await add_profile(client, "alice")
    path = await db.store_frame("alice", jpeg(), {"provider": "gemini"})
    assert path is not None and path.read_bytes() == jpeg() and data_dir / "frames" / "alice" in path.parents
    assert await db.store_frame("ghost", jpeg(), {}) is None
    assert not (data_dir / "frames" / "ghost").exists()
    await client.close()
    client = await iris(STORE_FRAMES="false")
    assert await client.app[ACCOUNTS].store_frame("alice", jpeg(), {}) is None


async def test_activity_is_recorded_and_reported(iris):
    client = await iris()
    db = client.app[ACCOUNTS]
    key = await add_profile(client, "alice")
    await client.post(f"/auth-{key}")
    await db.record_activity("alice", "frame", provider="gemini", ms=120)
    await db.record_activity("alice", "frame", provider="qwen", ms=300)
    await db.record_activity("nobody", "frame")
    report = await db.run(activity.report, "alice")
    assert report["kinds"]["frame"]["count"] == 2 and report["kinds"]["auth"]["count"] == 1
    assert report["answers"] == {"gemini": {"answers": 1, "repeated": 0}, "qwen": {"answers": 1, "repeated": 0}}
    assert report["recent"][0]["provider"] == "qwen"


async def test_retention_deletes_old_frames_and_activity_with_their_files(iris, data_dir):
    client = await iris(RETENTION_DAYS="3")
    db = client.app[ACCOUNTS]
    await add_profile(client, "alice")
    paths = [await db.store_frame("alice", jpeg(), {}) for _ in range(3)]
    await db.record_activity("alice", "frame")
    swept = await db.run(retention.sweep, time.time() + 2 * 86400)
    assert swept.frames == 0 and all(p.exists() for p in paths)
    swept = await db.run(retention.sweep, time.time() + 3 * 86400 + 60)
    assert swept.frames == 3 and swept.activity == 1
    assert not any(p.exists() for p in paths)
    assert not any((data_dir / "frames").rglob("*.jpg"))
    assert await db.run(retention.usage, "alice") == 0


async def test_quota_trims_oldest_frames_first(iris):
    frame = os.urandom(10_000)
    client = await iris(PROFILE_QUOTA_BYTES="25000")
    db = client.app[ACCOUNTS]
    await add_profile(client, "alice")
    await add_profile(client, "bob")
    paths = []
    for _ in range(5):
        paths.append(await db.store_frame("alice", frame, {}))
        await asyncio.sleep(0.002)
    bob = await db.store_frame("bob", frame, {})
    swept = await db.sweep()
    assert swept.frames == 3
    assert [p.exists() for p in paths] == [False, False, False, True, True]
    assert bob.exists()
    assert await db.run(retention.usage, "alice") <= 25_000


async def test_quota_also_trims_activity_when_no_frames_remain(iris):
    client = await iris(PROFILE_QUOTA_BYTES="1000", STORE_FRAMES="false")
    db = client.app[ACCOUNTS]
    await add_profile(client, "alice")
    for index in range(40):
        await db.record_activity("alice", "frame", index=index, note="x" * 20)
    await db.sweep()
    assert 0 < await db.run(retention.usage, "alice") <= 1000
    report = await db.run(activity.report, "alice", 1)
    assert report["recent"][0]["index"] == 39


async def test_background_retention_runs_by_itself(iris):
    client = await iris(PROFILE_QUOTA_BYTES="15000", RETENTION_INTERVAL="0.1")
    db = client.app[ACCOUNTS]
    await add_profile(client, "alice")
    paths = [await db.store_frame("alice", os.urandom(10_000), {}) for _ in range(3)]
    for _ in range(60):
        if sum(p.exists() for p in paths) == 1:
            break
        await asyncio.sleep(0.05)
    assert [p.exists() for p in paths] == [False, False, True]


async def test_deleting_a_profile_deletes_its_files_and_rows(iris, data_dir):
    from proxy.accounts import profiles

    client = await iris()
    db = client.app[ACCOUNTS]
    key = await add_profile(client, "alice")
    await add_profile(client, "bob")
    await client.post(f"/auth-{key}")
    await db.set_prompt("alice", "custom")
    await db.set_provider_keys("alice", {"gemini_api_key": "AIza"})
    await db.store_frame("alice", jpeg(), {})
    bob_frame = await db.store_frame("bob", jpeg(), {})
    assert await db.run(profiles.delete, "alice") is True
    assert not (data_dir / "frames" / "alice").exists() and bob_frame.exists()
    assert await db.profile("alice") is None and await db.prompt("alice") is None
    assert await db.provider_keys("alice") == {}
    counts = await db.run(lambda ctx: [ctx.conn.execute(f"SELECT COUNT(*) FROM {t} WHERE username = 'alice'")
                                       .fetchone()[0] for t in ("activity", "frames", "sessions", "prompts")])
    assert counts == [0, 0, 0, 0]
    assert (await client.get("/prompt-alice")).status == 401
