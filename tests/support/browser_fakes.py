"""A headless Chromium driven over the DevTools protocol with aiohttp's websocket client.

Debian's ``chromium`` is used as installed; nothing is downloaded. ``Browser.start()`` launches
it on a free debugging port in a temporary profile; ``Page`` navigates, evaluates JavaScript,
waits for conditions, sets the viewport and takes screenshots."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--hide-scrollbars", "--mute-audio", "--remote-debugging-port=0"]
LAPTOP = (1366, 900, False)
PHONE = (390, 844, True)


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    def __init__(self, proc: asyncio.subprocess.Process, profile: tempfile.TemporaryDirectory[str],
                 http: aiohttp.ClientSession, endpoint: str):
        self.proc = proc
        self.profile = profile
        self.http = http
        self.endpoint = endpoint

    @classmethod
    async def start(cls, executable: str) -> Browser:
        profile = tempfile.TemporaryDirectory(prefix="iris-chromium-", ignore_cleanup_errors=True)
        proc = await asyncio.create_subprocess_exec(
            executable, *FLAGS, f"--user-data-dir={profile.name}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True)  # its own process group: its helpers end with it
        port_file = Path(profile.name) / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and port_file.read_text().strip():
                break
            await asyncio.sleep(0.05)
        else:
            proc.kill()
            await proc.wait()
            raise RuntimeError("chromium did not open its debugging port")
        port = port_file.read_text().split()[0]
        return cls(proc, profile, aiohttp.ClientSession(), f"http://127.0.0.1:{port}")

    async def new_page(self) -> Page:
        async with self.http.put(f"{self.endpoint}/json/new?about:blank") as resp:
            target = await resp.json()
        ws = await self.http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        page = Page(ws)
        await page.call("Page.enable")
        await page.call("Runtime.enable")
        return page

    async def close(self) -> None:
        await self.http.close()
        self._signal_group(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self._signal_group(signal.SIGKILL)
            await self.proc.wait()
        for _ in range(20):  # helpers may still be finishing writes into the profile
            await asyncio.to_thread(shutil.rmtree, self.profile.name, True)
            if not await asyncio.to_thread(os.path.exists, self.profile.name):
                break
            await asyncio.sleep(0.1)
        self.profile.cleanup()

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.ids = itertools.count(1)
        self.console: list[str] = []
        self.size = LAPTOP

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        await self.ws.send_json({"id": call_id, "method": method, "params": params})
        while True:
            msg = await asyncio.wait_for(self.ws.receive_json(), 30)
            if msg.get("method") == "Runtime.exceptionThrown":
                self.console.append(str(msg["params"]["exceptionDetails"]))
            if msg.get("id") == call_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.wait("document.readyState === 'complete' && location.href !== 'about:blank'")

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                                 awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait(self, expression: str, within: float = 20.0) -> Any:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            try:
                value = await self.js(expression)
            except RuntimeError:
                value = None
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for: {expression}")
            await asyncio.sleep(0.1)

    async def viewport(self, size: tuple[int, int, bool], height: int | None = None) -> None:
        width, screen_height, mobile = size
        self.size = size
        await self.call("Emulation.setDeviceMetricsOverride", width=width, height=height or screen_height,
                        deviceScaleFactor=2 if mobile else 1, mobile=mobile)

    async def screenshot(self, path: Path) -> None:
        """The whole page: the viewport is stretched to the page's height for the shot, so sticky
        parts appear once, where a person sees them."""
        metrics = await self.call("Page.getLayoutMetrics")
        height = int(metrics["cssContentSize"]["height"])
        await self.viewport(self.size, height=max(height, self.size[1]))
        shot = await self.call("Page.captureScreenshot", format="png")
        await self.viewport(self.size)
        await asyncio.to_thread(save, path, base64.b64decode(shot["data"]))


def save(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"  # tests/screenshots/ (not tracked)


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def painting(prompt: str, width: int, height: int) -> bytes:
    """A picture that differs by prompt (a gradient and a sun), so screenshots look like a gallery."""
    import hashlib
    import io

    from PIL import Image, ImageDraw

    digest = hashlib.sha256(prompt.encode()).digest()
    top, bottom, sun = digest[0:3], digest[3:6], digest[6:9]
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / max(1, height - 1)
        draw.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    r = min(width, height) // 5
    cx, cy = width * (0.3 + digest[9] / 640), height * (0.3 + digest[10] / 640)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=tuple(128 + c // 2 for c in sun))
    draw.polygon([(0, height), (width * 0.45, height * 0.55), (width, height)], fill=tuple(c // 3 for c in bottom))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


class PaintingBackend:
    """An OpenAI-compatible image endpoint answering a painting of the requested size."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.url = ""

    def app(self) -> Any:
        from aiohttp import web

        async def generate(request: web.Request) -> web.Response:
            body = await request.json()
            self.calls.append(body)
            width, height = (int(n) for n in body.get("size", "512x512").split("x"))
            data = painting(body["prompt"], width, height)
            return web.json_response({"data": [{"b64_json": base64.b64encode(data).decode()}]})

        app = web.Application()
        app.router.add_post("/v1/images/generations", generate)
        return app
