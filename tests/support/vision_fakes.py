"""Fake vision providers: real aiohttp servers on 127.0.0.1 speaking ``/v1/chat/completions``.

Each one answers with a scripted answer and confidence (as JSON, in a code fence, inside prose, or
as plain text), or fails (HTTP errors whose body may carry the key, timeouts). When the system
message is the judge's, it answers with the judge's script instead."""

from __future__ import annotations

import asyncio
import io
import random
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from PIL import Image, ImageDraw

from proxy.vision.cascade import INTRO


@dataclass
class Call:
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def system(self) -> str:
        return self.body["messages"][0]["content"]

    @property
    def text(self) -> str:
        return self.body["messages"][1]["content"][0]["text"]

    @property
    def image_url(self) -> str:
        return self.body["messages"][1]["content"][1]["image_url"]["url"]

    @property
    def is_judge(self) -> bool:
        return self.system.startswith(INTRO)


@dataclass
class FakeProvider:
    """``mode``: json | fenced | prose | text | percent | error401 | error500 | slow."""

    name: str = "fake"
    answer: str = "A red apple"
    confidence: float = 0.9
    mode: str = "json"
    delay: float = 0.0
    echo_key_in_errors: bool = True
    predictions: list[dict[str, Any]] = field(default_factory=list)
    judge_answer: str = "A red apple on a table"
    judge_confidence: float = 0.8
    judge_mode: str = "json"
    calls: list[Call] = field(default_factory=list)
    url: str = ""
    cookie: str | None = None  # set on every answer, as providers behind some CDNs do

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        return app

    @property
    def answers(self) -> list[Call]:
        return [c for c in self.calls if not c.is_judge]

    @property
    def judgements(self) -> list[Call]:
        return [c for c in self.calls if c.is_judge]

    async def chat(self, request: web.Request) -> web.Response:
        call = Call(dict(request.headers), await request.json())
        self.calls.append(call)
        judging = call.is_judge
        mode = self.judge_mode if judging else self.mode
        if self.delay or mode == "slow":
            await asyncio.sleep(self.delay if mode != "slow" else 30)
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if mode in ("error401", "error500"):
            status = 401 if mode == "error401" else 500
            detail = f"API key {key} is not valid" if self.echo_key_in_errors else "failed"
            return web.json_response({"error": {"message": detail, "code": status}}, status=status)
        reply = {"answer": self.judge_answer if judging else self.answer,
                 "confidence": self.judge_confidence if judging else self.confidence}
        if self.predictions and not judging:
            reply["predictions"] = self.predictions
        response = web.json_response({"choices": [{"message": {"role": "assistant",
                                                                "content": render(reply, mode)}}]})
        if self.cookie:
            response.set_cookie("provider-session", self.cookie)
        return response


def render(reply: dict[str, Any], mode: str) -> str:
    text = orjson.dumps(reply).decode()
    if mode == "fenced":
        return f"```json\n{text}\n```"
    if mode == "prose":
        return f"Sure! Here is my answer: {text} Hope this helps."
    if mode == "percent":
        return orjson.dumps({**reply, "confidence": f"{round(reply['confidence'] * 100)}%"}).decode()
    if mode == "text":
        return f"I think it is {reply['answer']}."
    return text


def scene(seed: int = 1, size: tuple[int, int] = (640, 480), fmt: str = "JPEG", shift: int = 0) -> bytes:
    """A busy picture (distinct per seed); ``shift`` moves it a few pixels, as a hand would."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size[0] + 40, size[1] + 40), (rng.randrange(256), 90, 90))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        w, h = rng.randrange(20, size[0] // 2), rng.randrange(20, size[1] // 2)
        draw.rectangle((x, y, x + w, y + h), fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    image = image.crop((20 + shift, 20 + shift, 20 + shift + size[0], 20 + shift + size[1]))
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return out.getvalue()
