"""Signed image URLs: a page may publish /prompt/...?sig=... without any key. Every parameter is
covered (tamper any and it is refused), expiry and key rotation hold, the fast lane checks the
signature on every hit, REQUIRE_SIGNED refuses ?key=, and POST /sign and ``iris-proxy sign`` make
URLs the server accepts."""

from __future__ import annotations

import argparse
import asyncio
import base64
import stat
import string
from html import unescape
from pathlib import Path
from urllib.parse import quote

import pytest

from proxy.cli.sign import cmd_sign
from proxy.config import load_settings
from proxy.imagegen.lane import FastLane
from proxy.keys import ADMISSION, FLIGHT
from proxy.pages.apidoc import SIGNING_PYTHON
from proxy.security.signing import Signer
from tests.conftest import ACCESS_KEY
from tests.support.account_helpers import cli

PATH = "/prompt/a%20red%20apple"
QUERY = "width=64&height=64&seed=7&model=m1&enhance=false&negative_prompt=blur&nologo=true"
KEY_A = "signing-key-a-0123456789abcdef"
KEY_B = "signing-key-b-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {ACCESS_KEY}"}


def lane_of(client) -> FastLane:
    lane = client.server.runner.server.request_handler
    assert isinstance(lane, FastLane)
    return lane


def signed(client, url: str = f"{PATH}?{QUERY}", **kwargs) -> str:
    return client.app[ADMISSION].signer.sign(url, **kwargs)


async def code_of(resp) -> str:
    return (await resp.json())["error"]["code"]


async def test_a_signed_url_needs_no_key_and_its_hits_take_the_fast_lane(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    url = signed(client)
    assert "key=" not in url and "&sig=" in url
    first = await client.get(url)
    assert first.status == 200 and first.headers["X-Cache"] == "MISS" and await first.read() == backend.image
    await asyncio.gather(*client.app[FLIGHT].tasks)
    lane = lane_of(client)
    hit = await client.get(url)
    assert hit.status == 200 and hit.headers["X-Cache"] == "HIT" and lane.served == 1
    full = await client.get(url, headers={"If-None-Match": '"other"'})  # the same answer the full way
    assert full.status == 200 and lane.served == 1
    fast, slow = ({k.lower(): v for k, v in r.headers.items() if k.lower() not in ("date", "x-request-id")}
                  for r in (hit, full))
    assert fast == slow
    assert len(backend.calls) == 1 and backend.calls[0].json["prompt"] == "a red apple"


TAMPERED = [
    ("a%20red%20apple", "a%20red%20apples"),  # the prompt
    ("width=64", "width=128"),
    ("height=64", "height=96"),
    ("seed=7", "seed=8"),
    ("model=m1", "model=m2"),
    ("enhance=false", "enhance=true"),
    ("negative_prompt=blur", "negative_prompt=none"),
    ("nologo=true", "nologo=false"),  # a parameter only Pollinations reads
    ("&nologo=true", ""),  # removed
    ("seed=7", "seed=7&seed=8"),  # repeated
    ("seed=7", "seed=7&private=true"),  # added
    ("seed=7", "seed=7&key=" + ACCESS_KEY),  # even the key does not unlock a changed URL
]


@pytest.mark.parametrize(("part", "changed"), TAMPERED)
async def test_changing_any_part_of_a_signed_url_is_refused(iris, backend, part, changed):
    client = await iris(BACKEND_API_URLS=backend.url)
    url = signed(client)
    assert part in url
    resp = await client.get(url.replace(part, changed, 1))
    assert resp.status == 403 and await code_of(resp) == "bad_signature"
    assert resp.headers["Cache-Control"] == "no-store"
    assert backend.calls == []


async def test_a_wrong_or_missing_signature_is_refused(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    url = signed(client)
    sig = url.rsplit("sig=", 1)[1]
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    # the 43rd letter carries 4 bits and 2 unused ones: this spelling decodes to the very same bytes
    other_spelling = sig[:-1] + alphabet[alphabet.index(sig[-1]) ^ 1]
    assert base64.urlsafe_b64decode(other_spelling + "=") == base64.urlsafe_b64decode(sig + "=")
    for bad in (url.replace(sig, flipped), url.replace(sig, sig[:-1]), url.replace(sig, sig + "A"),
                url.replace(sig, other_spelling), url.replace(sig, sig[:-1] + "!"),
                url.replace(sig, ""), url + "&sig=" + sig,
                Signer([KEY_B]).sign(f"{PATH}?{QUERY}")):  # another server's key
        resp = await client.get(bad)
        assert resp.status == 403 and await code_of(resp) == "bad_signature", bad
    unsigned = await client.get(url.split("&sig=")[0])
    assert unsigned.status == 401 and await code_of(unsigned) == "missing_key"
    timed = signed(client, expires_in=600)
    without = await client.get(timed.split("&sig=")[0])  # exp says it was signed: the signature is missing
    assert without.status == 403 and await code_of(without) == "bad_signature"
    assert backend.calls == []


async def test_a_url_a_browser_encodes_differently_still_verifies(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    url = signed(client, "/prompt/caf%C3%A9 au lait?width=64&height=64&negative_prompt=a b~c")
    sig = url.rsplit("&sig=", 1)[1]
    variants = [
        url,
        f"/prompt/caf%c3%a9%20au%20lait?negative_prompt=a+b%7Ec&height=64&width=64&sig={sig}",  # order, case, +
        f"/prompt/{quote('café au lait')}?width=%36%34&height=64&negative_prompt=a%20b~c&sig={sig}",
    ]
    for variant in variants:
        resp = await client.get(variant)
        assert resp.status == 200, (variant, await resp.text())
    assert len(backend.calls) == 1


async def test_expiry_is_checked_on_every_hit_the_fast_lane_included(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    admission = client.app[ADMISSION]
    now = 1_900_000_000.0
    admission.clock = lambda: now
    url = signed(client, expires_in=60, now=now)
    assert f"&exp={int(now) + 60}&" in url
    first = await client.get(url)
    assert first.status == 200 and first.headers["Cache-Control"] == "public, max-age=60"  # no cache past exp
    await asyncio.gather(*client.app[FLIGHT].tasks)
    lane = lane_of(client)
    now += 20
    hit = await client.get(url)
    assert hit.headers["X-Cache"] == "HIT" and lane.served == 1 and hit.headers["Cache-Control"] == "public, max-age=40"
    full = await client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert full.status == 304 and full.headers["Cache-Control"] == "public, max-age=40"
    now += 40  # exp itself
    late = await client.get(url)
    assert late.status == 403 and await code_of(late) == "expired" and lane.served == 1
    longer = url.replace(f"exp={int(now)}", f"exp={int(now) + 3600}")  # moving exp breaks the signature
    assert longer != url
    assert await code_of(await client.get(longer)) == "bad_signature"
    past = signed(client, expires_in=-1, now=now)
    assert await code_of(await client.get(past)) == "expired"
    assert len(backend.calls) == 1


async def test_rotation_the_first_key_signs_and_every_key_verifies(iris, backend):
    old = await iris(BACKEND_API_URLS=backend.url, IMAGE_SIGNING_KEYS=KEY_A)
    by_old = signed(old)
    rotated = await iris(BACKEND_API_URLS=backend.url, IMAGE_SIGNING_KEYS=f"{KEY_B},{KEY_A}")
    by_new = signed(rotated, f"{PATH}?width=96")
    assert by_new == Signer([KEY_B]).sign(f"{PATH}?width=96")
    assert (await rotated.get(by_old)).status == 200
    assert (await rotated.get(by_new)).status == 200
    retired = await iris(BACKEND_API_URLS=backend.url, IMAGE_SIGNING_KEYS=KEY_B)
    resp = await retired.get(by_old)
    assert resp.status == 403 and await code_of(resp) == "bad_signature"
    assert (await retired.get(by_new)).status == 200


async def test_bad_signatures_are_not_counted_as_guesses(iris, backend):
    """Pages may still carry URLs signed with a retired key: their visitors must not be blocked."""
    client = await iris(BACKEND_API_URLS=backend.url, RATE_LIMIT_AUTH="2/minute", BLACKLIST_AUTO_FAILURES="3")
    url = signed(client)
    for n in range(6):
        assert (await client.get(url.replace("seed=7", f"seed={n + 10}"))).status == 403
    assert (await client.get(f"{PATH}?key={ACCESS_KEY}")).status == 200
    assert (await client.get(url)).status == 200


async def test_a_signature_over_a_random_seed_is_refused(iris, backend):
    """seed=-1 draws a new image every time: a signed URL would be a generator again."""
    client = await iris(BACKEND_API_URLS=backend.url)
    url = Signer([(client.app[ADMISSION].signer.keys[0]).decode()]).sign(f"{PATH}?seed=-1")
    resp = await client.get(url)
    assert resp.status == 400 and await code_of(resp) == "random_seed"
    assert backend.calls == []


async def test_require_signed_refuses_the_key_in_the_url(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, REQUIRE_SIGNED="true")
    in_url = await client.get(f"{PATH}?key={ACCESS_KEY}")
    assert in_url.status == 401 and await code_of(in_url) == "signature_required"
    assert (await in_url.json())["error"]["message"] == (
        "this server takes signed image URLs only: sign the URL (iris-proxy sign, or POST /sign), or send the key "
        "in Authorization: Bearer from a server")
    both = await client.get(f"{PATH}?key={ACCESS_KEY}", headers=BEARER)
    assert both.status == 401 and await code_of(both) == "signature_required"
    nothing = await client.get(PATH)
    assert nothing.status == 401 and await code_of(nothing) == "signature_required"
    assert backend.calls == []
    server_to_server = await client.get(PATH, headers=BEARER)
    assert server_to_server.status == 200 and server_to_server.headers["Vary"] == "Accept, Authorization"
    await asyncio.gather(*client.app[FLIGHT].tasks)
    lane = lane_of(client)
    assert (await client.get(PATH, headers=BEARER)).status == 200 and lane.served == 1
    assert (await client.get(signed(client, PATH))).status == 200
    wrong = await client.get(PATH, headers={"Authorization": "Bearer wrong-key-0123456789"})
    assert wrong.status == 401 and await code_of(wrong) == "invalid_key"


async def test_post_sign_makes_a_url_the_server_accepts(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url)
    resp = await client.post("/sign", json={"path": f"{PATH}?{QUERY}"}, headers=BEARER)
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    assert "Access-Control-Allow-Origin" not in resp.headers  # no page elsewhere may read it
    url = (await resp.json())["url"]
    assert url == signed(client) and ACCESS_KEY not in url
    assert (await client.get(url)).status == 200
    timed = await client.post("/sign", json={"path": f"{PATH}?width=96", "expires": 3600}, headers=BEARER)
    assert "&exp=" in (await timed.json())["url"]
    whole = await client.post("/sign", json={"path": f"https://img.example{PATH}?width=96"}, headers=BEARER)
    assert (await whole.json())["url"].startswith(f"https://img.example{PATH}?width=96&sig=")


@pytest.mark.parametrize(("body", "headers", "status", "code"), [
    ({"path": PATH}, {}, 401, "missing_key"),
    ({"path": PATH}, {"Authorization": "Bearer wrong-key-0123456789"}, 401, "invalid_key"),
    ({"path": "/status"}, BEARER, 400, "not_an_image_url"),
    ({"path": f"{PATH}?width=9"}, BEARER, 400, "bad_parameter"),
    ({"path": f"{PATH}?seed=-1"}, BEARER, 400, "random_seed"),
    ({"path": f"{PATH}?key={ACCESS_KEY}"}, BEARER, 400, "key_in_url"),
    ({"path": PATH, "expires": -5}, BEARER, 400, "bad_parameter"),
    ({"path": PATH, "expires": "soon"}, BEARER, 400, "bad_parameter"),
    ({"url": PATH}, BEARER, 400, "bad_body"),
])
async def test_post_sign_refuses(iris, body, headers, status, code):
    client = await iris()
    resp = await client.post("/sign", json=body, headers=headers)
    assert resp.status == status and await code_of(resp) == code


async def test_post_sign_takes_the_key_from_the_header_only(iris):
    client = await iris()
    resp = await client.post(f"/sign?key={ACCESS_KEY}", json={"path": PATH})
    assert resp.status == 401 and await code_of(resp) == "missing_key"
    assert (await resp.json())["error"]["message"] == "an access key is required: add Authorization: Bearer ..."


async def test_the_signing_key_is_generated_once_under_data_dir_with_mode_0600(iris, data_dir):
    client = await iris()
    path = data_dir / "secrets" / "signing-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert client.app[ADMISSION].signer.keys == (path.read_text().strip().encode(),)
    again = await iris()
    assert again.app[ADMISSION].signer.keys == client.app[ADMISSION].signer.keys
    status = await (await client.get("/status", headers={"X-Admin-Token": "test-admin-token-0123456789"})).json()
    assert status["signing"] == {"keys": 1, "configured": False, "require_signed": False}
    assert path.read_text().strip() not in str(status)


async def test_the_cli_signs_with_the_servers_key(iris, backend, data_dir):
    client = await iris(BACKEND_API_URLS=backend.url)
    code, out, err = await cli(data_dir, "sign", "/prompt/a%20red%20apple?width=512&seed=7", "--expires", "600")
    assert code == 0, err
    assert out.count("\n") == 1 and out.startswith("/prompt/a%20red%20apple?width=512&seed=7&exp=")
    assert (await client.get(out.strip())).status == 200
    code, out, err = await cli(data_dir, "sign", f"/prompt/x?key={ACCESS_KEY}")
    assert code == 1 and out == "" and "key" in err


async def test_the_cli_makes_up_no_key_where_no_server_kept_one(tmp_path):
    code, out, err = await cli(tmp_path / "elsewhere", "sign", "/prompt/apple")
    assert code == 1 and out == "" and "no signing key" in err
    assert not (tmp_path / "elsewhere").exists()


async def test_the_cli_uses_image_signing_keys(iris, backend, data_dir):
    client = await iris(BACKEND_API_URLS=backend.url, IMAGE_SIGNING_KEYS=KEY_A)
    code, out, err = await cli(data_dir, "sign", "/prompt/apple", IMAGE_SIGNING_KEYS=KEY_A)
    assert code == 0, err
    assert out.strip() == Signer([KEY_A]).sign("/prompt/apple")
    assert (await client.get(out.strip())).status == 200
    assert not (data_dir / "secrets" / "signing-key").exists()


def test_the_sign_command_prefers_image_signing_keys_to_the_kept_key(tmp_path, capsys):
    """In this process, so the command's own code is what runs (``cli`` runs the installed one)."""
    kept = tmp_path / "secrets" / "signing-key"
    kept.parent.mkdir()
    kept.write_text(KEY_B + "\n")
    args = argparse.Namespace(url="/prompt/apple", expires=None)
    assert cmd_sign(args, load_settings({"DATA_DIR": str(tmp_path), "IMAGE_SIGNING_KEYS": KEY_A})) == 0
    assert capsys.readouterr().out == Signer([KEY_A]).sign("/prompt/apple") + "\n"
    assert cmd_sign(args, load_settings({"DATA_DIR": str(tmp_path)})) == 0
    assert capsys.readouterr().out == Signer([KEY_B]).sign("/prompt/apple") + "\n"
    assert sorted(p.name for p in kept.parent.iterdir()) == ["signing-key"]


async def test_answers_to_requests_with_authorization_vary_on_it(iris, backend):
    """A CDN must not hand an image fetched with a bearer key to someone without one."""
    client = await iris(BACKEND_API_URLS=backend.url)
    miss = await client.get(PATH, headers=BEARER)
    await asyncio.gather(*client.app[FLIGHT].tasks)
    hit = await client.get(PATH, headers=BEARER)
    assert lane_of(client).served == 1
    revalidated = await client.get(PATH, headers={**BEARER, "If-None-Match": miss.headers["ETag"]})
    assert revalidated.status == 304
    for resp in (miss, hit, revalidated):  # (Accept: the format is negotiated, NEGOTIATE_FORMATS)
        assert resp.headers["Vary"] == "Accept, Authorization"
    in_url = await client.get(f"{PATH}?key={ACCESS_KEY}")  # the key is in the URL: the URL is the cache key
    assert in_url.status == 200 and in_url.headers["Vary"] == "Accept"
    assert (await client.get(signed(client, PATH))).headers["Vary"] == "Accept"
    signing = await client.post("/sign", json={"path": PATH}, headers=BEARER)  # every route, not images only
    assert signing.status == 200 and signing.headers["Vary"] == "Authorization"
    status = await client.get("/status", headers={"Authorization": "Bearer wrong"})
    assert status.headers.getall("Vary") == ["Authorization"]
    cors = await client.post("/analyze", json={}, headers={"Authorization": "Bearer wrong", "Origin": "https://a.example"})
    assert cors.status == 401 and cors.headers.getall("Vary") == ["Origin, Authorization"]


def test_the_readme_shows_the_documented_python_signer():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"```python\n{SIGNING_PYTHON}```" in readme  # the very code the next test runs


async def test_the_documented_python_signer_makes_urls_the_server_accepts(iris, backend):
    client = await iris(BACKEND_API_URLS=backend.url, IMAGE_SIGNING_KEYS=KEY_A)
    assert SIGNING_PYTHON in unescape(await (await client.get("/docs")).text())
    namespace: dict = {}
    exec(SIGNING_PYTHON, namespace)
    for url in ("/prompt/a%20red%20apple?width=512&seed=7", "/prompt/caf%C3%A9 + cr%C3%A8me?negative_prompt=a+b",
                "/prompt/no-query", "/prompt/expiring?width=64&exp=4102444800"):
        made = namespace["sign"](url, KEY_A)
        assert made == Signer([KEY_A]).sign(url)
        resp = await client.get(made)
        assert resp.status == 200, (url, await resp.text())


def test_the_signature_is_hmac_sha256():
    """The signer's HMAC (inner and outer states computed once) against the standard library's."""
    import hmac
    import random

    from proxy.security.signing import HmacKey

    rng = random.Random(15)
    for length in (1, 16, 63, 64, 65, 200):
        key = rng.randbytes(length)
        for size in (0, 1, 55, 64, 500):
            message = rng.randbytes(size)
            assert HmacKey(key).digest(message) == hmac.digest(key, message, "sha256")
