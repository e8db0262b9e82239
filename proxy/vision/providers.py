"""Which providers a user's request may use, in cascade order, and with whose key.

A profile's own provider key overrides the server's; a provider with neither key is skipped
(unless it is marked keyless, such as a local model server, or is a local model itself)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from proxy.config.backends import BackendSpec
from proxy.config.vision import ProviderSettings, VisionSettings


@dataclass(frozen=True)
class Provider:
    spec: BackendSpec
    threshold: float
    owner: str  # "" for the server's key, else the username whose key is used

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def judges(self) -> bool:
        """Only a chat provider can weigh other answers; a local classifier is never the judge."""
        return self.spec.kind == "chat"


def providers_for(cfg: VisionSettings, username: str, own_keys: Mapping[str, str | None]) -> list[Provider]:
    out = []
    for p in cfg.providers:
        own = own_keys.get(p.profile_field) if p.profile_field else None
        token = own or p.token
        if not token and not p.keyless:
            continue
        out.append(Provider(spec_of(p, token), cfg.threshold if p.threshold is None else p.threshold,
                            username if own else ""))
    return out


def judge_of(cfg: VisionSettings, available: list[Provider]) -> Provider | None:
    """``VISION_JUDGE`` when it is available to this user, else the first available chat provider."""
    judges = [p for p in available if p.judges]
    for provider in judges:
        if provider.name == cfg.judge:
            return provider
    return judges[0] if judges else None


def secrets_of(available: list[Provider]) -> list[str]:
    return [p.spec.token for p in available if p.spec.token]


def spec_of(p: ProviderSettings, token: str | None = None) -> BackendSpec:
    return BackendSpec(url=p.base_url, token=token, name=p.name, model=p.model, kind=p.kind, role="vision")
