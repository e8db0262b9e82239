"""The kinds of provider by name (the ``kind`` of a ``VISION_PROVIDERS`` entry), each opened once
per worker when the app starts, only when a provider of that kind is configured (``chat`` always:
it is also the judge's kind), over the app's HTTP session and its local models."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp

from proxy.config import Settings
from proxy.local.models import LocalModels
from proxy.vision.kinds.base import ProviderKind
from proxy.vision.kinds.chat import ChatKind
from proxy.vision.kinds.onnx import OnnxKind

Opener = Callable[[Settings, aiohttp.ClientSession, LocalModels], Awaitable[ProviderKind]]
KINDS: dict[str, Opener] = {
    "chat": ChatKind.open,
    "onnx": OnnxKind.open,
}


async def open_kinds(settings: Settings, session: aiohttp.ClientSession,
                     local: LocalModels) -> dict[str, ProviderKind]:
    wanted = ["chat", *sorted({p.kind for p in settings.vision.providers} - {"chat"})]
    return {kind: await KINDS[kind](settings, session, local) for kind in wanted}
