"""Fake upstreams: real aiohttp servers on 127.0.0.1 speaking the providers' wire formats.

Each fake keeps a log of the requests it got, and a script of behaviours that tests change."""

from __future__ import annotations

import asyncio
import base64
import io
import os
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web
from PIL import Image


def png(width: int = 8, height: int = 8, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def noise_png(width: int, height: int) -> bytes:
    """An image that does not compress: for tests that need real sizes."""
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(out, "PNG")
    return out.getvalue()


def jpeg(width: int = 64, height: int = 48, color: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "JPEG", quality=80)
    return out.getvalue()


REFUSAL = {"error": {"code": "content_policy_violation", "type": "invalid_request_error",
                     "message": "Your request was rejected as a result of our safety system."}}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    json: Any
    query: dict[str, str]


@dataclass
class Upload:
    """A file part of a multipart request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class FakeImageBackend:
    """An OpenAI-compatible ``/v1/images/generations`` endpoint (and ``/files/`` for url answers),
    and ``/v1/images/edits`` (multipart, as OpenAI takes it; 404 with ``edits=False``).

    ``mode``: b64 | url | refuse | error500 | bad400 | garbage | notimage | notimage_url | slow."""

    mode: str = "b64"
    image: bytes = field(default_factory=png)
    delay: float = 0.0
    calls: list[Seen] = field(default_factory=list)
    base: str = ""
    accept_prefix: str | None = None  # in refuse mode, prompts starting with this are accepted
    images: dict[str, bytes] = field(default_factory=dict)  # prompts starting with a key get its image
    answer_url: str | None = None  # in url mode, answer with this URL instead of one of its own files
    redirect_to: str = ""  # where GET /redirect sends the client
    redirect_status: int = 302  # and with which status
    fetched: list[str] = field(default_factory=list)  # the paths of GET /files, /redirect, /hops, /status
    fetch_hosts: list[str] = field(default_factory=list)  # and their Host headers
    in_flight: int = 0  # generations being answered now
    most_in_flight: int = 0  # the most ever answered at once
    edits: bool = True  # answers /v1/images/edits (else 404, as a backend without edits does)
    uploads: list[list[Upload]] = field(default_factory=list)  # the files of each edit

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/images/generations", self.generate)
        app.router.add_post("/v1/images/edits", self.edit)
        app.router.add_get("/files/{name}", self.file)
        app.router.add_get("/redirect", self.redirect)
        app.router.add_get("/hops/{n:[0-9]+}", self.hops)
        app.router.add_get("/status/{code:[0-9]+}", self.status)
        return app

    async def generate(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self._generate(request)
        finally:
            self.in_flight -= 1

    async def edit(self, request: web.Request) -> web.StreamResponse:
        """Multipart: text fields become ``Seen.json`` (as a generation's body), files ``uploads``."""
        if not self.edits:
            return web.json_response({"error": {"message": "Not found", "code": "not_found"}}, status=404)
        fields: dict[str, str] = {}
        files: list[Upload] = []
        async for part in await request.multipart():
            assert isinstance(part, BodyPartReader)
            data = await part.read()
            if part.filename is None:
                fields[part.name or ""] = data.decode()
            else:
                files.append(Upload(part.name or "", part.filename, part.headers.get("Content-Type"), bytes(data)))
        self.uploads.append(files)
        return await self._answer(request, fields)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, await request.json())

    async def _answer(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        self.calls.append(Seen(request.method, request.path, dict(request.headers), body, dict(request.query)))
        if self.delay or self.mode == "slow":
            await asyncio.sleep(self.delay or 30)
        mode = self.mode
        if mode == "refuse" and self.accept_prefix and body.get("prompt", "").startswith(self.accept_prefix):
            mode = "b64"
        if mode == "refuse":
            return web.json_response(REFUSAL, status=400)
        if mode == "bad400":
            return web.json_response({"error": {"message": "size must be one of 1024x1024", "code": None}},
                                     status=400)
        if mode == "error500":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        if mode == "garbage":
            return web.Response(text="<html>not json</html>", content_type="text/html")
        if mode == "notimage":
            return web.json_response({"data": [{"b64_json": base64.b64encode(b"hello").decode()}]})
        if mode in ("url", "notimage_url"):
            name = "img.png" if mode == "url" else "text.txt"
            return web.json_response({"data": [{"url": self.answer_url or f"{self.base}/files/{name}"}]})
        prompt = body.get("prompt", "")
        image = next((v for k, v in self.images.items() if prompt.startswith(k)), self.image)
        return web.json_response({"data": [{"b64_json": base64.b64encode(image).decode()}]})

    async def file(self, request: web.Request) -> web.Response:
        self.fetched.append(request.path)
        self.fetch_hosts.append(request.host)
        if request.match_info["name"] == "img.png":
            return web.Response(body=self.image, content_type="image/png")
        return web.Response(text="this is not an image", content_type="image/png")

    async def redirect(self, request: web.Request) -> web.Response:
        self.fetched.append(request.path)
        return web.Response(status=self.redirect_status, headers={"Location": self.redirect_to})

    async def hops(self, request: web.Request) -> web.Response:
        """``/hops/N``: N redirects (each to ``/hops/N-1``), then the image."""
        self.fetched.append(request.path)
        n = int(request.match_info["n"])
        if n == 0:
            return web.Response(body=self.image, content_type="image/png")
        return web.Response(status=302, headers={"Location": f"/hops/{n - 1}"})

    async def status(self, request: web.Request) -> web.Response:
        """``/status/CODE``: the image, but with that status."""
        self.fetched.append(request.path)
        return web.Response(status=int(request.match_info["code"]), body=self.image, content_type="image/png")


@dataclass
class FakeLLM:
    """``/v1/chat/completions`` answering ``<prompt>{prefix} {original}</prompt>``.

    ``mode``: ok | notags | error500 | slow."""

    mode: str = "ok"
    prefix: str = "enhanced:"
    delay: float = 0.0
    calls: list[Seen] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        return app

    async def chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(Seen(request.method, request.path, dict(request.headers), body, dict(request.query)))
        if self.delay or self.mode == "slow":
            await asyncio.sleep(self.delay or 30)
        if self.mode == "error500":
            return web.json_response({"error": {"message": "down"}}, status=500)
        content = body["messages"][-1]["content"]
        original = content.split("<<", 1)[-1].split(">>", 1)[0] if "<<" in content else content
        text = f"{self.prefix} {original}" if self.mode != "notags" else f"Sure! {original}"
        answer = f"Here you go: <prompt>{text}</prompt>" if self.mode != "notags" else text
        return web.json_response({"choices": [{"message": {"role": "assistant", "content": answer}}]})


@dataclass
class FakePollinations:
    """``GET /prompt/{prompt}`` answering an image (or ``mode`` error500 | notimage)."""

    mode: str = "ok"
    image: bytes = field(default_factory=lambda: png(color=(0, 200, 0)))
    calls: list[Seen] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(r"/prompt/{prompt:[\s\S]+}", self.prompt)
        return app

    async def prompt(self, request: web.Request) -> web.Response:
        self.calls.append(Seen(request.method, request.match_info["prompt"], dict(request.headers), None,
                               dict(request.query)))
        if self.mode == "error500":
            return web.Response(status=500, text="down")
        if self.mode == "notimage":
            return web.Response(text="rate limited", content_type="image/jpeg")
        return web.Response(body=self.image, content_type="image/jpeg")
