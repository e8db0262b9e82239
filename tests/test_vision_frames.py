"""Frames: sent as they are when already small plain JPEGs (checked by libjpeg-turbo), else
decoded by Pillow, downscaled and re-encoded; bad uploads are 400 or 413; near-identical scenes
have near-identical hashes, whichever way they were read."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from proxy.config.vision import VisionSettings
from proxy.errors import BadRequest, PayloadTooLarge
from proxy.vision.frames import distance, prepare, quick
from proxy.vision.uploads import Intake, frame_from_bytes, frame_from_data_url
from tests.support.vision_fakes import scene

CFG = VisionSettings(max_side=512, max_pixels=3_000_000)


def test_small_jpeg_is_sent_unchanged():
    data = scene(size=(480, 360))
    frame = prepare(data, CFG)
    assert frame.jpeg == data
    assert (frame.width, frame.height) == (480, 360)
    assert frame.data_url().startswith("data:image/jpeg;base64,")


def test_large_or_other_formats_are_downscaled_to_jpeg():
    for data in (scene(size=(1200, 600)), scene(size=(400, 300), fmt="PNG")):
        frame = prepare(data, CFG)
        with Image.open(io.BytesIO(frame.jpeg)) as image:
            assert image.format == "JPEG"
            assert max(image.size) <= 512
            assert image.size == (frame.width, frame.height)
    assert (prepare(scene(size=(1200, 600)), CFG).width) == 512


def test_exif_rotation_is_applied():
    image = Image.new("RGB", (300, 100), (200, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    frame = prepare(out.getvalue(), CFG)
    assert (frame.width, frame.height) == (100, 300)


@pytest.mark.parametrize("data", [b"not an image at all", scene()[:300], b"GIF89a" + b"\0" * 20])
def test_not_an_image_is_400(data):
    with pytest.raises(BadRequest) as caught:
        prepare(data, CFG)
    assert caught.value.code == "not_an_image"


def test_pixel_cap_is_413():
    out = io.BytesIO()
    Image.new("L", (2000, 2000)).save(out, "PNG")
    with pytest.raises(PayloadTooLarge):
        prepare(out.getvalue(), CFG)


@pytest.mark.parametrize("inline", [False, True])
async def test_byte_cap_is_413_before_decoding(inline):
    with pytest.raises(PayloadTooLarge):
        await frame_from_bytes(scene(), CFG, max_bytes=1000, inline=inline)
    frame = await frame_from_bytes(scene(), CFG, max_bytes=10**6, inline=inline)
    assert frame.width == 512
    with pytest.raises(BadRequest):
        await frame_from_bytes(b"", CFG, max_bytes=1000, inline=inline)


@pytest.mark.parametrize("data", [b"not an image at all", scene()[:300], scene(size=(400, 300))[:-2000]])
async def test_inline_check_refuses_as_the_thread_pool_does(data):
    for inline in (False, True):
        with pytest.raises(BadRequest) as caught:
            await frame_from_bytes(data, CFG, max_bytes=10**6, inline=inline)
        assert caught.value.code == "not_an_image"


async def test_inline_and_thread_pool_give_the_same_frame():
    for data in (scene(size=(400, 300)), scene(size=(1200, 600)), scene(size=(300, 200), fmt="PNG")):
        assert await frame_from_bytes(data, CFG, 10**6, inline=True) == await frame_from_bytes(data, CFG, 10**6)


def test_quick_takes_only_plain_jpegs_that_are_sent_as_they_are():
    plain = scene(size=(400, 300))
    frame = quick(plain, CFG)
    assert frame is not None and frame.jpeg == plain and (frame.width, frame.height) == (400, 300)
    grey = io.BytesIO()
    Image.open(io.BytesIO(plain)).convert("L").save(grey, "JPEG")
    assert quick(grey.getvalue(), CFG) is not None
    cmyk, oriented = io.BytesIO(), io.BytesIO()
    Image.open(io.BytesIO(plain)).convert("CMYK").save(cmyk, "JPEG")
    exif = Image.Exif()
    exif[0x0112] = 1
    Image.open(io.BytesIO(plain)).save(oriented, "JPEG", exif=exif)
    for other in (scene(size=(1200, 600)), scene(size=(400, 300), fmt="PNG"), cmyk.getvalue(),
                  oriented.getvalue(), plain[:-2000]):
        assert quick(other, CFG) is None
    assert prepare(cmyk.getvalue(), CFG).jpeg != cmyk.getvalue()  # Pillow re-encodes CMYK as RGB


def test_quick_and_pillow_hash_a_frame_alike():
    """The very same JPEG data read by libjpeg-turbo (plain) and by Pillow (with an EXIF block)."""
    exif = Image.Exif()
    exif[0x0112] = 1
    block = exif.tobytes()
    for seed in range(5):
        plain = scene(seed=seed, size=(480, 360))
        tagged = plain[:2] + b"\xff\xe1" + (len(block) + 2).to_bytes(2, "big") + block + plain[2:]
        assert quick(tagged, CFG) is None
        assert prepare(tagged, CFG).jpeg == tagged  # sent as it is by Pillow's way too
        assert prepare(plain, CFG).dhash == prepare(tagged, CFG).dhash


def test_the_intake_counts_frames_in_flight():
    intake = Intake()
    assert intake.alone
    with intake.entered():
        assert intake.alone
        with intake.entered():
            assert not intake.alone
        assert intake.alone
    assert intake.active == 0


async def test_data_urls():
    data = scene(size=(300, 200))
    url = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    assert (await frame_from_data_url(url, CFG, 10**6)).jpeg == data
    assert (await frame_from_data_url(base64.b64encode(data).decode(), CFG, 10**6)).jpeg == data
    with pytest.raises(PayloadTooLarge):
        await frame_from_data_url(url, CFG, 1000)
    for bad in ("data:image/png;base64,@@@@", "data:image/png;base64,aGVsbG8=", ""):
        with pytest.raises(BadRequest):
            await frame_from_data_url(bad, CFG, 10**6)


def test_hash_tells_same_scene_from_another():
    base = prepare(scene(seed=3), CFG).dhash
    moved = prepare(scene(seed=3, shift=2), CFG).dhash
    requality = prepare(scene(seed=3, fmt="PNG"), CFG).dhash
    other = prepare(scene(seed=4), CFG).dhash
    assert distance(base, moved) <= VisionSettings().dedup_distance
    assert distance(base, requality) <= VisionSettings().dedup_distance
    assert distance(base, other) > 12
