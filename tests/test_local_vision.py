"""The local vision provider (kind ``onnx``): a classifier in an ONNX file, run by ONNX Runtime in
the app. The models are built by the tests (``tests/support/onnx_models.py``), so their answers are
known: labels, order and confidences of ``/analyze``, how the preprocessing is learnt (the model,
else the settings, else ImageNet's), the model as the free first step of the cascade (and never its
judge), inference off the event loop with bounded concurrency and a deadline, and start-up refusing
a model it cannot use, with a message naming the setting."""

from __future__ import annotations

import asyncio
import base64
import io
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from aiohttp import web
from PIL import Image

from proxy.app import create_app
from proxy.config import load_settings
from proxy.errors import ConfigError
from proxy.keys import LOCAL
from tests.conftest import ACCESS_KEY, base_env
from tests.support.onnx_models import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LABELS,
    colour_model,
    expected,
    fixed_model,
    labels_file,
    slow_model,
)
from tests.support.vision_rig import rig_starter
from tests.test_serve import free_port

ORANGE = (200, 100, 30)  # red, then gray, green and blue: four distinct probabilities
GREY = (128, 128, 128)  # "gray" at 0.47: below the cascade's threshold


def uniform(rgb: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, rgb).save(out, "JPEG", quality=95)
    return out.getvalue()


def seen(jpeg: bytes) -> tuple[float, ...]:
    """The colour the model sees: the JPEG decoded (a uniform picture stays uniform)."""
    pixels = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), np.float64)
    return tuple(pixels.reshape(-1, 3).mean(axis=0))


def payload(jpeg: bytes) -> dict[str, str]:
    return {"image": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()}


def local(model: Path, labels: Path, name: str = "colours", **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "onnx", "model_path": str(model), "labels_path": str(labels), **extra}


def providers(*entries: dict[str, Any]) -> str:
    return orjson.dumps(list(entries)).decode()


@pytest.fixture
def labels(tmp_path: Path) -> Path:
    return labels_file(tmp_path / "labels.txt")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return colour_model(tmp_path / "colours.onnx")


async def analyze(client: Any, jpeg: bytes) -> dict[str, Any]:
    """With the access key (ANALYZE_ACCESS_KEY=true), which counts as one caller."""
    resp = await client.post("/analyze", json=payload(jpeg), headers={"X-API-Key": ACCESS_KEY})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_analyze_is_answered_by_the_local_model_in_the_visionai_shape(iris, model, labels):
    client = await iris(ANALYZE_ACCESS_KEY="true", VISION_PROVIDERS=providers(local(model, labels)))
    assert client.app[LOCAL].classifiers["colours"].labels == LABELS  # loaded when the app started
    jpeg = uniform(ORANGE)
    body = await analyze(client, jpeg)
    want = sorted(expected(seen(jpeg)).items(), key=lambda kv: kv[1], reverse=True)
    assert [label for label, _ in want] == ["red", "gray", "green", "blue"]
    assert body["label"] == "red" and body["confidence"] == pytest.approx(want[0][1] * 100, abs=0.05)
    assert [p["label"] for p in body["predictions"]] == [label for label, _ in want]
    assert [p["confidence"] for p in body["predictions"]] == pytest.approx([p * 100 for _, p in want], abs=0.05)
    assert body["mode"] == "real" and body["provider"] == "colours" and body["calls"] == 1
    assert "colours.onnx" in body["message"] and "local model" in body["message"]


async def test_analyze_gives_the_top_five_of_many_labels_most_likely_first(iris, tmp_path):
    logits = (0.5, 3.0, -1.0, 2.0, 2.5, 0.0, 1.0)  # seven classes, none of them first in the file
    names = ("ant", "bee", "cat", "dog", "eel", "fox", "gnu")
    path = fixed_model(tmp_path / "seven.onnx", logits)
    client = await iris(ANALYZE_ACCESS_KEY="true", VISION_PROVIDERS=providers(
        local(path, labels_file(tmp_path / "seven.txt", names), name="seven")))
    body = await analyze(client, uniform(ORANGE))
    e = np.exp(np.asarray(logits) - max(logits))
    p = dict(zip(names, e / e.sum(), strict=True))
    assert [x["label"] for x in body["predictions"]] == ["bee", "eel", "dog", "gnu", "ant"]
    assert [x["confidence"] for x in body["predictions"]] == pytest.approx(
        [p[n] * 100 for n in ("bee", "eel", "dog", "gnu", "ant")], abs=0.01)
    assert body["label"] == "bee" and body["confidence"] == pytest.approx(p["bee"] * 100, abs=0.01)


@pytest.mark.parametrize(("build", "extra", "mean", "std"), [
    ({"layout": "NHWC", "fixed": False}, {}, (0.5,) * 3, (0.5,) * 3),  # metadata; size: ImageNet's 224
    ({"metadata": False}, {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}, (0.5,) * 3, (0.5,) * 3),
    ({"metadata": False, "layout": "NHWC", "fixed": False},
     {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "input_size": [40, 56]}, (0.5,) * 3, (0.5,) * 3),
    ({"metadata": False}, {}, IMAGENET_MEAN, IMAGENET_STD),  # neither says: ImageNet's
    ({"softmax": False}, {}, (0.5,) * 3, (0.5,) * 3),  # logits: Iris applies the softmax
    ({}, {"mean": [0.1, 0.1, 0.1], "std": [2.0, 2.0, 2.0]}, (0.5,) * 3, (0.5,) * 3),  # the model wins
], ids=["nhwc-metadata", "settings", "settings-size", "imagenet", "logits", "model-over-settings"])
async def test_the_preprocessing_comes_from_the_model_else_the_settings_else_imagenet(
        iris, tmp_path, labels, build, extra, mean, std):
    path = colour_model(tmp_path / "model.onnx", **build)
    client = await iris(ANALYZE_ACCESS_KEY="true", VISION_PROVIDERS=providers(local(path, labels, **extra)))
    jpeg = uniform(ORANGE)
    body = await analyze(client, jpeg)
    want = expected(seen(jpeg), mean, std)
    assert {p["label"]: p["confidence"] for p in body["predictions"]} == pytest.approx(
        {label: p * 100 for label, p in want.items()}, abs=0.05)
    assert body["label"] == max(want, key=want.__getitem__)


async def test_the_local_model_is_the_free_first_step_of_the_cascade(iris, serve, model, labels):
    rig = await rig_starter(iris, serve)(first=(local(model, labels),), VISION_DEDUP_SECONDS="0")
    await rig.auth()
    sure = await (await rig.frame(uniform((250, 10, 10)))).json()
    assert sure["success"] and sure["provider"] == "colours" and sure["answer"] == "This looks like a red."
    assert sure["calls"] == 1 and rig.provider_calls == 0  # confident: no remote provider asked
    unsure = await (await rig.frame(uniform(GREY))).json()
    assert unsure["provider"] == "gemini" and unsure["answer"] == "gemini says apple"
    assert unsure["ai_responses"] == {"colours": "This looks like a gray.", "gemini": "gemini says apple"}
    assert unsure["calls"] == 2 and len(rig.fakes["gemini"].calls) == 1
    assert any("colours: confidence 0.47" in line for line in unsure["debug_messages"])


async def test_the_local_model_is_never_the_judge(iris, serve, model, labels):
    rig = await rig_starter(iris, serve)(first=(local(model, labels),))
    for fake in rig.fakes.values():
        fake.confidence = 0.3
    await rig.auth()
    body = await (await rig.frame(uniform(GREY))).json()
    assert body["judged"] and body["provider"] == "gemini" and body["answer"] == "A red apple on a table"
    [judgement] = rig.fakes["gemini"].judgements
    assert "(colours, confidence 0.47) This looks like a gray." in judgement.text
    with pytest.raises(ConfigError, match=r"VISION_JUDGE.*local model"):
        load_settings(base_env(Path("/tmp/iris-unused"), VISION_JUDGE="colours",
                               VISION_PROVIDERS=providers(local(model, labels))))


async def test_offline_the_local_model_alone_answers_even_when_unsure(iris, model, labels):
    client = await iris(ANALYZE_ACCESS_KEY="true", VISION_PROVIDERS=providers(local(model, labels)))
    body = await analyze(client, uniform(GREY))
    assert body["label"] == "gray" and 46 < body["confidence"] < 48 and body["calls"] == 1
    health = await (await client.get("/health")).json()
    assert health["providers"] == ["colours"] and health["judge"] is None


async def test_inference_runs_off_the_event_loop_within_its_deadline(iris, serve, tmp_path, labels):
    slow = slow_model(tmp_path / "slow.onnx", steps=60)
    rig = await rig_starter(iris, serve)(first=(local(slow, labels, name="slow"),), LOCAL_MODEL_DEADLINE="0.05",
                                         ANALYZE_ACCESS_KEY="true")
    body = await analyze(rig.client, uniform(ORANGE))  # 0.3 s of work against 0.05 s: the cascade goes on
    assert body["provider"] == "gemini" and body["calls"] == 2
    client = await iris(ANALYZE_ACCESS_KEY="true", VISION_PROVIDERS=providers(local(slow, labels, name="slow")))
    body = await analyze(client, uniform(ORANGE))  # with time enough, the model is sure of its answer
    assert body["provider"] == "slow" and body["confidence"] > 99


async def test_concurrency_is_bounded_and_the_loop_keeps_serving(iris, tmp_path, labels):
    slow = slow_model(tmp_path / "slow.onnx", steps=60)
    client = await iris(ANALYZE_ACCESS_KEY="true", VISION_PROVIDERS=providers(local(slow, labels, name="slow")), LOCAL_MODEL_CONCURRENCY="2",
                        LOCAL_MODEL_DEADLINE="30")
    frames = [asyncio.create_task(analyze(client, uniform((i * 40, 80, 80)))) for i in range(4)]
    await asyncio.sleep(0.1)
    started = time.perf_counter()
    assert (await client.get("/healthz")).status == 200
    assert time.perf_counter() - started < 0.15  # the loop is not busy with the inferences
    running = [t for t in threading.enumerate() if t.name.startswith("iris-vision")]
    assert len(running) == 2  # four frames in flight, two threads working for them
    assert all(body["provider"] == "slow" for body in await asyncio.gather(*frames))


async def test_start_up_refuses_a_model_it_cannot_use(tmp_path, model, labels):
    def settings(entry: dict[str, Any]):
        return load_settings(base_env(tmp_path / "data", VISION_PROVIDERS=providers(entry)))

    with pytest.raises(ConfigError, match=r"VISION_PROVIDERS: entry 0 names model_path .*missing\.onnx"):
        settings(local(tmp_path / "missing.onnx", labels))
    blank = tmp_path / "blank.txt"
    blank.write_text("red\n\ngreen\n")
    with pytest.raises(ConfigError, match="empty label on line 2"):
        settings(local(model, blank))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07 this is not a model" * 20)
    three = labels_file(tmp_path / "three.txt", LABELS[:3])
    for entry, problem in [(local(broken, labels), r"broken\.onnx is not a model ONNX Runtime can load"),
                           (local(model, three), "gives 4 scores, but its labels_path has 3 labels")]:
        runner = web.AppRunner(create_app(settings(entry)))
        with pytest.raises(ConfigError, match=problem) as raised:
            await runner.setup()
        await runner.cleanup()
        assert raised.value.variable == "VISION_PROVIDERS"


def test_without_the_extra_a_local_model_names_it(monkeypatch, tmp_path, model, labels):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"pip install 'iris-proxy\[local\]'"):
        load_settings(base_env(tmp_path, VISION_PROVIDERS=providers(local(model, labels))))


def test_labels_files_in_the_usual_formats(tmp_path, model):
    synsets = tmp_path / "synset_words.txt"
    synsets.write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n"
                       "great_white_shark\nhammerhead\n\n")
    cfg = load_settings(base_env(tmp_path, VISION_PROVIDERS=providers(local(model, synsets)))).vision
    assert cfg.providers[0].local.labels == ("tench", "goldfish", "great white shark", "hammerhead")


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
async def test_the_server_stops_at_once_with_a_clear_message(tmp_path, labels, workers):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model at all")
    env = {"PATH": "/usr/bin:/bin", "PORT": "0" if workers == "1" else str(free_port()), "WORKERS": workers,
           "DATA_DIR": str(tmp_path / "data"), "POLLINATIONS_URL": "http://127.0.0.1:9", "SAFETY_CHECK": "off",
           "VISION_PROVIDERS": providers(local(broken, labels))}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "proxy", cwd=tmp_path, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)  # a worker is not restarted forever
    text = err.decode()
    assert proc.returncode == 1, text
    assert "cannot start: VISION_PROVIDERS: the local model 'colours'" in text
    assert "broken.onnx is not a model ONNX Runtime can load" in text and "Traceback" not in text
