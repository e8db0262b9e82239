"""Settings: defaults, errors that name the variable and the fix, .env, the shipped example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from proxy.config import gather_environment, load_settings
from proxy.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_need_nothing():
    settings = load_settings({})
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8080
    assert settings.server.data_dir == Path("data")
    assert settings.cache.directory == Path("data/cache")
    assert settings.cache.size_limit == 10 * 1000**3
    assert settings.image.pollinations_is_pool
    assert settings.image.pollinations_url == "https://image.pollinations.ai"
    assert settings.image.blocked_retry_attempts == 2
    assert settings.image.llm.de_nsfw_max_attempts == 2
    assert settings.image.llm.model == "gpt-4.1-mini"


def test_contract_variables_are_honoured():
    settings = load_settings({
        "PORT": "9001", "CACHE_DIR": "/tmp/x", "BLOCKED_RETRY_ATTEMPTS": "5", "DE_NSFW_MAX_ATTEMPTS": "4",
        "DE_NSFW_ENABLED": "true", "LLM_OPTIMIZATION_API_URL": "http://l",
        "DE_NSFW_TEMPLATE": "x {ORIGINAL_PROMPT}", "BACKEND_API_URLS": "http://a/v1/, http://b",
        "TOKEN_MAP": '{"http://a/v1": "sk-aaa"}', "AUTH_TOKEN": "sk-fff",
        "BACKEND_WEIGHTS": '{"http://b/": 3}', "MODEL_MAP": '{"http://b": {"x": "y"}}',
    })
    assert settings.server.port == 9001
    assert settings.cache.directory == Path("/tmp/x")
    assert settings.image.blocked_retry_attempts == 5
    assert settings.image.llm.de_nsfw_max_attempts == 4
    a, b = settings.image.backends
    assert (a.url, a.token, a.weight) == ("http://a/v1", "sk-aaa", 1)
    assert (b.url, b.token, b.weight, b.model_map) == ("http://b", "sk-fff", 3, {"x": "y"})
    assert "sk-" not in repr(settings)


@pytest.mark.parametrize(("env", "variable"), [
    ({"PORT": "eighty"}, "PORT"),
    ({"PORT": "70000"}, "PORT"),
    ({"WORKERS": "0"}, "WORKERS"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ({"BACKEND_WEIGHTS": "{nope"}, "BACKEND_WEIGHTS"),
    ({"BACKEND_API_URLS": "http://a", "BACKEND_WEIGHTS": '{"http://other": 1}'}, "BACKEND_WEIGHTS"),
    ({"BACKEND_API_URLS": "http://a", "TOKEN_MAP": '{"http://a": 5}'}, "TOKEN_MAP"),
    ({"BACKEND_API_URLS": "http://a", "MODEL_MAP": "[]"}, "MODEL_MAP"),
    ({"LLM_OPTIMIZATION_ENABLED": "yes please"}, "LLM_OPTIMIZATION_ENABLED"),
    ({"LLM_OPTIMIZATION_ENABLED": "true"}, "LLM_OPTIMIZATION_ENABLED"),
    ({"DE_NSFW_ENABLED": "true", "LLM_OPTIMIZATION_API_URL": "http://l",
      "DE_NSFW_TEMPLATE_FILE": "/no/such/file"}, "DE_NSFW_TEMPLATE_FILE"),
    ({"LLM_OPTIMIZATION_ENABLED": "true", "LLM_OPTIMIZATION_API_URL": "http://l",
      "LLM_OPTIMIZATION_TEMPLATE": "no placeholder"}, "LLM_OPTIMIZATION_TEMPLATE_FILE"),
    ({"CACHE_SIZE_LIMIT": "-1"}, "CACHE_SIZE_LIMIT"),
    ({"BACKEND_API_URLS": "notaurl"}, "BACKEND_API_URLS"),
    ({"BACKEND_API_URLS": "ftp://x"}, "BACKEND_API_URLS"),
    ({"BACKEND_API_URLS": "https://a.example/v1,http://[::1"}, "BACKEND_API_URLS"),
    ({"BACKEND_API_URLS": "http://a.example:99999/v1"}, "BACKEND_API_URLS"),
    ({"BACKEND_API_URLS": "http://a.example/v1,http://a.example/v1/"}, "BACKEND_API_URLS"),
    ({"LLM_OPTIMIZATION_API_URL": "api.openai.com"}, "LLM_OPTIMIZATION_API_URL"),
    ({"POLLINATIONS_URL": "image.pollinations.ai"}, "POLLINATIONS_URL"),
    ({"VISION_PROVIDERS": '[{"name": "x", "base_url": "file:///v1", "model": "m"}]'}, "VISION_PROVIDERS"),
    ({"UPSTREAM_CONNECTIONS_PER_HOST": "0"}, "UPSTREAM_CONNECTIONS_PER_HOST"),
    ({"BACKEND_API_URLS": "http://a", "EDIT_BACKENDS": "http://other"}, "EDIT_BACKENDS"),
    ({"NEGOTIATE_FORMATS": "avif,gif"}, "NEGOTIATE_FORMATS"),
    ({"NEGOTIATE_FORMATS": "webp,webp"}, "NEGOTIATE_FORMATS"),
    ({"AVIF_QUALITY": "0"}, "AVIF_QUALITY"),
    ({"AVIF_SPEED": "11"}, "AVIF_SPEED"),
    ({"REFUSAL_CACHE_TTL": "-1"}, "REFUSAL_CACHE_TTL"),
    ({"HEADER_TIMEOUT": "nan"}, "HEADER_TIMEOUT"),
    ({"BODY_TIMEOUT": "inf"}, "BODY_TIMEOUT"),
    ({"SEND_TIMEOUT": "0"}, "SEND_TIMEOUT"),
    ({"SEND_TIMEOUT": "a minute"}, "SEND_TIMEOUT"),
    ({"SEND_TIMEOUT": "nan"}, "SEND_TIMEOUT"),
])
def test_bad_values_name_the_variable_and_the_fix(env, variable):
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(variable) and "Fix:" in str(caught.value)


def test_edit_backends_and_formats():
    urls = "http://a.example/v1,http://b.example"
    every = load_settings({"BACKEND_API_URLS": urls}).image.backends
    assert [spec.edits for spec in every] == [True, True]
    some = load_settings({"BACKEND_API_URLS": urls, "EDIT_BACKENDS": "http://b.example/"}).image.backends
    assert [spec.edits for spec in some] == [False, True]
    assert not any(s.edits for s in load_settings({"BACKEND_API_URLS": urls, "EDIT_BACKENDS": "none"}).image.backends)
    formats = load_settings({"NEGOTIATE_FORMATS": "WebP", "WEBP_QUALITY": "70"}).formats
    assert formats.negotiate == ("webp",) and formats.quality["webp"] == 70 and formats.quality["avif"] == 60
    assert load_settings({"NEGOTIATE_FORMATS": ""}).formats.negotiate == ()
    assert load_settings({}).formats.negotiate == ("avif", "webp")


def test_a_bad_backend_url_is_named_without_its_credentials():
    with pytest.raises(ConfigError) as caught:
        load_settings({"BACKEND_API_URLS": "ftp://user:s3cret@files.example/v1"})
    assert "ftp://files.example/v1" in str(caught.value) and "s3cret" not in str(caught.value)


def test_backends_are_named_by_their_place_and_get_the_image_model():
    settings = load_settings({"BACKEND_API_URLS": "http://a.example/v1,http://b.example", "IMAGE_MODEL": "dall-e-3",
                              "MODEL_MAP": '{"http://b.example": {"dall-e-3": "azure-dalle"}}'})
    a, b = settings.image.backends
    assert (a.label, b.label) == ("backend-1", "backend-2")
    assert (a.map_model(None), b.map_model(None), b.map_model("other")) == ("dall-e-3", "azure-dalle", "other")
    assert settings.image.image_model == "dall-e-3"
    assert load_settings({"BACKEND_API_URLS": "http://a.example"}).image.backends[0].map_model(None) is None


def test_the_fingerprint_follows_what_makes_images():
    def fingerprint(**env: str) -> str:
        return load_settings({"BACKEND_API_URLS": "http://a.example", **env}).image.fingerprint

    same = fingerprint()
    assert same == fingerprint() == fingerprint(PORT="9000", CACHE_SIZE_LIMIT="20000000")
    changed = [fingerprint(BACKEND_API_URLS="http://b.example"), fingerprint(AUTH_TOKEN="sk-new-token"),
               fingerprint(IMAGE_MODEL="dall-e-3"), fingerprint(MODEL_MAP='{"http://a.example": {"x": "y"}}'),
               fingerprint(POLLINATIONS_FALLBACK="false"), fingerprint(LLM_OPTIMIZATION_API_URL="http://l.example")]
    assert len({same, *changed}) == len(changed) + 1
    assert "sk-new-token" not in fingerprint(AUTH_TOKEN="sk-new-token")


def test_templates_from_file_env_or_the_shipped_file(tmp_path):
    base = {"LLM_OPTIMIZATION_ENABLED": "true", "LLM_OPTIMIZATION_API_URL": "http://l"}
    shipped = load_settings(base).image.llm.optimize_template
    assert shipped == (ROOT / "prompt-template.txt").read_text()
    env = load_settings({**base, "LLM_OPTIMIZATION_TEMPLATE": r"line1\n{ORIGINAL_PROMPT}"})
    assert env.image.llm.optimize_template == "line1\n{ORIGINAL_PROMPT}"
    path = tmp_path / "t.txt"
    path.write_text("from file {ORIGINAL_PROMPT}")
    filed = load_settings({**base, "LLM_OPTIMIZATION_TEMPLATE": "x {ORIGINAL_PROMPT}",
                           "LLM_OPTIMIZATION_TEMPLATE_FILE": str(path)})
    assert filed.image.llm.optimize_template == "from file {ORIGINAL_PROMPT}"


def test_shipped_templates_follow_the_contract():
    for name in ("prompt-template.txt", "safe-prompt-template.txt"):
        text = (ROOT / name).read_text()
        assert "{ORIGINAL_PROMPT}" in text and "<prompt>" in text


def test_env_example_loads_and_documents_every_setting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    env = gather_environment()
    load_settings({k: v for k, v in env.items() if k.isupper()})
    documented = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        name = line.lstrip("# ").split("=", 1)[0]
        if "=" in line and name.isupper() and name.replace("_", "").isalnum():
            documented.add(name)
    used = set()
    for path in (ROOT / "proxy").rglob("*.py"):
        text = path.read_text()
        for quote in ('"', "'"):
            for piece in text.split("env.")[1:]:
                call = piece.split("(", 1)
                if len(call) == 2 and call[1].startswith(quote):
                    used.add(call[1][1:].split(quote, 1)[0])
    used = {u for u in used if u.isupper()}
    missing = used - documented
    assert not missing, f".env.example does not document {sorted(missing)}"


def test_dotenv_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PORT=9100\nHOST=0.0.0.0\n")
    monkeypatch.setenv("PORT", "9200")
    settings = load_settings(gather_environment())
    assert settings.server.port == 9200 and settings.server.host == "0.0.0.0"


def test_bad_config_stops_startup_with_a_message(tmp_path):
    result = subprocess.run([sys.executable, "-m", "proxy"], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PORT": "eighty"}, timeout=60, check=False)
    assert result.returncode == 2
    assert "PORT" in result.stderr and "Fix:" in result.stderr
    assert "Traceback" not in result.stderr
