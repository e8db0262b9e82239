"""POST /process bodies as raw bytes against the real app: the form reader (``proxy.vision.form``)
accepts what browsers and the glasses send and refuses malformed bodies with a 400, never a 500."""

from __future__ import annotations

import pytest

from tests.support.vision_fakes import scene
from tests.support.vision_rig import ALICE_KEY, rig_starter

B = "xYzBoundary42"
FORM = {"Content-Type": f"multipart/form-data; boundary={B}"}


@pytest.fixture
def glasses(iris, serve):
    return rig_starter(iris, serve)


def part(name: str, value: bytes, *, filename: str | None = None, content_type: str | None = None,
         disposition: str | None = None) -> bytes:
    head = disposition or f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    lines = [f"--{B}", f"Content-Disposition: {head}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + value + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{B}--\r\n".encode()


async def post(rig, data: bytes, **headers: str):
    resp = await rig.client.post("/process", data=data, headers={**FORM, **headers})
    return resp.status, await resp.json()


async def test_the_key_field_the_prompt_field_and_a_quoted_filename(glasses):
    rig = await glasses()
    status, answer = await post(rig, body(
        part("key", ALICE_KEY.encode()), part("username", b"alice"),
        part("prompt", b"Is it ripe?", content_type="text/plain"),
        part("image", scene(seed=3), filename="C:\\frames\\frame;1.jpg",
             content_type="application/octet-stream")))
    assert status == 200, answer
    assert answer["prompt_used"] == "Is it ripe?"


async def test_a_bearer_key_and_a_latin1_text_part(glasses):
    rig = await glasses()
    prompt = "Qu'est-ce que c'est, caf\u00e9 ?"
    status, answer = await post(rig, body(
        part("prompt", prompt.encode("latin-1"), content_type="text/plain; charset=latin-1"),
        part("username", b"alice"), part("image", scene(seed=4), filename="frame_image.jpg")), Authorization=f"Bearer {ALICE_KEY}")
    assert status == 200, answer
    assert answer["prompt_used"] == prompt


@pytest.mark.parametrize(("data", "headers", "code"), [
    (body(part("image", b"\xff\xd8 not finished", filename="f.jpg"))[:-10], {}, "invalid_form"),
    (body(part("", b"x", disposition="form-data"), part("image", b"x", filename="f.jpg")), {}, "invalid_form"),
    (body(part("image", b"x", filename="f.jpg")), {"Content-Type": "multipart/form-data"}, "invalid_form"),
    (b"this is not multipart at all", {}, "invalid_form"),
    (body(part("image", b"just text")), {}, "missing_image"),
    (body(part("username", b"alice")), {}, "missing_image"),
])
async def test_malformed_bodies_are_400(glasses, data, headers, code):
    rig = await glasses()
    await rig.auth()
    status, answer = await post(rig, data, **headers)
    assert status == 400 and answer["error"]["code"] == code


async def test_without_a_session_a_well_formed_frame_is_401(glasses):
    rig = await glasses()
    status, answer = await post(rig, body(part("image", scene(seed=5), filename="frame_image.jpg")))
    assert status == 401 and answer["error"]["code"] == "auth_required"


async def test_a_body_over_the_size_cap_is_413(glasses):
    rig = await glasses(MAX_UPLOAD_BYTES="20000")
    await rig.auth()
    status, answer = await post(rig, body(part("image", b"\xff\xd8" + b"x" * 200_000, filename="f.jpg")))
    assert status == 413 and answer["error"]["code"] == "payload_too_large"
