"""Fake image hosts: real aiohttp servers on 127.0.0.1 speaking sm.ms's, PicGo/Chevereto's and
Cloudflare ImgBed's upload formats, and serving what was uploaded under ``/file/<name>``.

``mode``: ok | repeated (sm.ms) | refuse | error500 | garbage | nourl | badurl | slow.
``fail_first``: answer the first N uploads with HTTP 500, then behave per ``mode``.
``link_base``: answer links under this base instead of the host's own (a host pointing elsewhere);
``serve_instead``: what ``/file/...`` answers instead of the upload (with the type it claims);
``redirect_to``: ``/file/...`` redirects there instead."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Upload:
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    fields: dict[str, tuple[str | None, str | None, bytes]]  # name -> (filename, content type, data)


@dataclass
class FakeHost:
    upload_path: str = "/upload"
    file_field: str = "file"
    mode: str = "ok"
    fail_first: int = 0
    delay: float = 0.0
    uploads: list[Upload] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    fetches: int = 0
    url: str = ""
    files_status: int = 200  # anything else: GET /file/... answers this (a host in trouble)
    link_base: str = ""
    serve_instead: bytes | None = None
    redirect_to: str = ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post(self.upload_path, self.upload)
        app.router.add_get("/file/{name}", self.file)
        return app

    @property
    def upload_url(self) -> str:
        return f"{self.url}{self.upload_path}"

    def link(self, name: str) -> str:
        return f"{self.link_base or self.url}/file/{name}"

    async def upload(self, request: web.Request) -> web.StreamResponse:
        fields = {}
        async for part in await request.multipart():
            fields[part.name] = (part.filename, part.headers.get("Content-Type"), await part.read())
        seen = Upload(request.path, dict(request.headers), dict(request.query), fields)
        self.uploads.append(seen)
        if self.delay or self.mode == "slow":
            await asyncio.sleep(self.delay or 30)
        if len(self.uploads) <= self.fail_first or self.mode == "error500":
            return web.json_response({"message": "internal error"}, status=500)
        if self.mode == "garbage":
            return web.Response(text="<html>gateway</html>", content_type="text/html")
        filename, _, data = fields.get(self.file_field, ("x", None, b""))
        name = f"{secrets.token_hex(4)}-{filename}"
        self.files[name] = data
        return self.answer(seen, name)

    def answer(self, seen: Upload, name: str) -> web.StreamResponse:
        raise NotImplementedError

    async def file(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if self.files_status != 200:
            return web.Response(status=self.files_status, text="trouble")
        if self.redirect_to:
            raise web.HTTPFound(self.redirect_to)
        if self.serve_instead is not None:
            return web.Response(body=self.serve_instead, content_type="image/png")
        data = self.files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="gone")
        return web.Response(body=data, content_type="application/octet-stream")


@dataclass
class FakeSmms(FakeHost):
    upload_path: str = "/api/v2/upload"
    file_field: str = "smfile"
    token: str = "smms-token-secret-123"

    def answer(self, seen: Upload, name: str) -> web.StreamResponse:
        url = self.link(name)
        if seen.headers.get("Authorization") != self.token or self.mode == "refuse":
            return web.json_response({"success": False, "code": "unauthorized",
                                      "message": "Token mismatch " + self.token, "RequestId": "x"})
        if self.mode == "repeated":
            return web.json_response({"success": False, "code": "image_repeated",
                                      "message": f"Image upload repeated limit, this image exists at: {url}",
                                      "images": url, "RequestId": "y"})
        data: dict[str, Any] = {"url": url, "filename": name, "hash": "abc", "delete": "d"}
        if self.mode == "nourl":
            data = {"filename": name}
        if self.mode == "badurl":
            data = {"url": "javascript:alert(1)"}
        return web.json_response({"success": True, "code": "success", "message": "Upload success.",
                                  "data": data, "RequestId": "z"})


@dataclass
class FakePicgo(FakeHost):
    upload_path: str = "/api/1/upload"
    file_field: str = "source"
    key: str = "picgo-key-secret-456"

    def answer(self, seen: Upload, name: str) -> web.StreamResponse:
        if seen.headers.get("X-API-Key") != self.key or self.mode == "refuse":
            return web.json_response({"status_code": 400, "error": {"message": "Invalid API v1 key.",
                                                                    "code": 100},
                                      "status_txt": "Bad Request"}, status=400)
        image: dict[str, Any] = {"name": name, "url": self.link(name)}
        if self.mode == "nourl":
            image = {"name": name}
        if self.mode == "badurl":
            image = {"url": "/relative/not/allowed.png"}
        return web.json_response({"status_code": 200, "success": {"message": "image uploaded", "code": 200},
                                  "image": image, "status_txt": "OK"})


@dataclass
class FakeImgbed(FakeHost):
    file_field: str = "file"
    auth_code: str = "imgbed-code-secret-789"

    def answer(self, seen: Upload, name: str) -> web.StreamResponse:
        if (self.auth_code and seen.query.get("authCode") != self.auth_code) or self.mode == "refuse":
            return web.json_response({"error": "Unauthorized"}, status=401)
        if self.mode == "nourl":
            return web.json_response({"src": f"/file/{name}"})  # an object, not the list
        if self.mode == "badurl":
            return web.json_response([{"src": "/file/a\r\nSet-Cookie: x=1"}])
        return web.json_response([{"src": f"/file/{name}"}])
