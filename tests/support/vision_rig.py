"""The vision test rig: the real app with fake providers on 127.0.0.1 and two profiles in the real
SQLite store, and a client that sends exactly what the Frame glasses app sends."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from proxy.accounts import profiles
from proxy.keys import ACCOUNTS
from tests.support.vision_fakes import FakeProvider

NAMES = ("gemini", "deepseek", "qwen")
SERVER_KEYS = {n: f"sk-server-{n}-0123456789" for n in NAMES}
ALICE_KEY = "alice-auth-key-0123456789"
BOB_KEY = "bob-auth-key-0123456789"


@dataclass
class Rig:
    client: Any
    fakes: dict[str, FakeProvider]

    @property
    def db(self):
        return self.client.app[ACCOUNTS]

    @property
    def provider_calls(self) -> int:
        return sum(len(f.calls) for f in self.fakes.values())

    async def auth(self, key: str = ALICE_KEY) -> None:
        resp = await self.client.post(f"/auth-{key}")
        assert resp.status == 200 and (await resp.json())["success"] is True

    async def frame(self, image: bytes, username: str = "alice", **fields: str) -> aiohttp.ClientResponse:
        """Exactly what the glasses app sends: username and frame_image.jpg as octet-stream."""
        form = aiohttp.FormData()
        form.add_field("username", username)
        for name, value in fields.items():
            form.add_field(name, value)
        form.add_field("image", image, filename="frame_image.jpg", content_type="application/octet-stream")
        return await self.client.post("/process", data=form)


def rig_starter(iris: Any, serve: Any):
    """``await start(**env)``: a ``Rig`` over the real app, three fake providers and two profiles
    (``provider_host="localhost"``: the app reaches them by that name, which resolves to 127.0.0.1;
    ``first``: provider entries asked before the fakes, such as a local model)."""

    async def start(provider_host: str = "127.0.0.1", first: tuple[dict[str, Any], ...] = (), **env: str) -> Rig:
        fakes = {}
        for name in NAMES:
            fake = FakeProvider(name=name, answer=f"{name} says apple")
            await serve(fake)
            fakes[name] = fake
        providers = [*first, *({"name": n, "base_url": fakes[n].url.replace("127.0.0.1", provider_host),
                                "model": f"{n}-vision", "token": SERVER_KEYS[n]} for n in NAMES)]
        settings = {"VISION_PROVIDERS": orjson.dumps(providers).decode(), "VISION_CALL_TIMEOUT": "2",
                    "VISION_DEADLINE": "5", **env}
        client = await iris(**settings)
        rig = Rig(client, fakes)
        await rig.db.run(profiles.add, "alice", ALICE_KEY)
        await rig.db.run(profiles.add, "bob", BOB_KEY)
        return rig

    return start


async def settled(rig: Rig, sql: str, want: int) -> int:
    for _ in range(100):
        count = await rig.db.run(lambda ctx: ctx.conn.execute(sql).fetchone()[0])
        if count >= want:
            return count
        await asyncio.sleep(0.02)
    return count
