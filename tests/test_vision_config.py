"""VISION_* settings: the default providers and their keys, a custom list, the judge, thresholds,
and errors that name the variable; which providers a user may use, with whose key."""

from __future__ import annotations

import orjson
import pytest

from proxy.config import load_settings
from proxy.errors import ConfigError
from proxy.vision.providers import judge_of, providers_for


def cascade(**env: str):
    return load_settings({"DATA_DIR": "/tmp/iris-unused", **env}).vision


def test_defaults_are_the_four_providers_enabled_by_their_keys():
    cfg = cascade(GEMINI_API_KEY="AIza-server", QWEN_API_KEY="sk-qwen")
    assert [p.name for p in cfg.providers] == ["gemini", "deepseek", "qwen", "openai"]
    assert cfg.providers[2].model == "qwen-vl-max" and cfg.providers[3].model == "gpt-4o"
    assert (cfg.threshold, cfg.deadline, cfg.max_side, cfg.dedup_seconds) == (0.7, 25.0, 1024, 10.0)
    usable = providers_for(cfg, "alice", {})
    assert [(p.name, p.spec.token, p.owner) for p in usable] == [("gemini", "AIza-server", ""),
                                                                ("qwen", "sk-qwen", "")]
    assert judge_of(cfg, usable).name == "gemini"
    assert "AIza-server" not in repr(cfg)


def test_a_profile_key_enables_and_overrides():
    cfg = cascade(GEMINI_API_KEY="AIza-server")
    usable = providers_for(cfg, "alice", {"gemini_api_key": "AIza-alice", "chatgpt_api_key": "sk-alice"})
    assert [(p.name, p.spec.token, p.owner) for p in usable] == [("gemini", "AIza-alice", "alice"),
                                                                ("openai", "sk-alice", "alice")]


def test_custom_providers_judge_and_thresholds():
    providers = [{"name": "local", "base_url": "http://127.0.0.1:11434/v1/", "model": "llava", "keyless": True},
                 {"name": "gemini", "base_url": "https://g.example/v1beta/openai", "model": "gemini-x",
                  "threshold": 0.9}]
    cfg = cascade(VISION_PROVIDERS=orjson.dumps(providers).decode(), GEMINI_API_KEY="AIza-env",
                  VISION_JUDGE="gemini", VISION_CONFIDENCE_THRESHOLD="0.5")
    usable = providers_for(cfg, "bob", {})
    assert [(p.name, p.spec.url, p.spec.token, p.threshold) for p in usable] == [
        ("local", "http://127.0.0.1:11434/v1", None, 0.5), ("gemini", "https://g.example/v1beta/openai",
                                                            "AIza-env", 0.9)]
    assert judge_of(cfg, usable).name == "gemini"
    assert judge_of(cfg, usable[:1]).name == "local"  # the judge has no key for this user


@pytest.mark.parametrize(("env", "variable"), [
    ({"VISION_PROVIDERS": "{not json"}, "VISION_PROVIDERS"),
    ({"VISION_PROVIDERS": '{"name": "x"}'}, "VISION_PROVIDERS"),
    ({"VISION_PROVIDERS": '[{"name": "x", "model": "m"}]'}, "VISION_PROVIDERS"),
    ({"VISION_PROVIDERS": '[{"name": "x", "base_url": "http://a", "model": "m", "threshold": 2}]'},
     "VISION_PROVIDERS"),
    ({"VISION_PROVIDERS": '[{"name": "x", "base_url": "http://a", "model": "m"},'
                          ' {"name": "x", "base_url": "http://b", "model": "m"}]'}, "VISION_PROVIDERS"),
    ({"VISION_JUDGE": "nobody"}, "VISION_JUDGE"),
    ({"VISION_CONFIDENCE_THRESHOLD": "1.5"}, "VISION_CONFIDENCE_THRESHOLD"),
    ({"VISION_DEADLINE": "soon"}, "VISION_DEADLINE"),
])
def test_bad_settings_name_the_variable(env, variable):
    with pytest.raises(ConfigError) as caught:
        cascade(**env)
    assert caught.value.variable == variable
