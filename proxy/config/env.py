"""Typed reading of environment variables; each error names the variable and the fix."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from typing import Any

import orjson

from proxy.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class Env:
    """A read-only view of the variables, with parsers that raise ``ConfigError``."""

    def __init__(self, values: Mapping[str, str]):
        self._values = values

    def raw(self, name: str) -> str | None:
        value = self._values.get(name)
        return value.strip() if value is not None else None

    def text(self, name: str, default: str = "") -> str:
        value = self.raw(name)
        return default if value is None or value == "" else value

    def optional(self, name: str) -> str | None:
        value = self.raw(name)
        return value or None

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(name, f"{value!r} is not a boolean", "use true or false")

    def integer(self, name: str, default: int, *, lo: int | None = None, hi: int | None = None) -> int:
        value = self.raw(name)
        if value is None or value == "":
            return default
        try:
            number = int(value.replace("_", ""))
        except ValueError:
            raise ConfigError(name, f"{value!r} is not a whole number", "write digits only") from None
        return _bounded(name, number, lo, hi)

    def number(self, name: str, default: float, *, lo: float | None = None, hi: float | None = None) -> float:
        value = self.raw(name)
        if value is None or value == "":
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(name, f"{value!r} is not a number", "write a number such as 2.5") from None
        if not math.isfinite(number):  # nan passes every bound
            raise ConfigError(name, f"{value!r} is not a finite number", "write a number such as 2.5")
        return _bounded(name, number, lo, hi)

    def items(self, name: str) -> list[str]:
        value = self.raw(name) or ""
        return [item.strip() for item in value.split(",") if item.strip()]

    def networks(self, name: str) -> tuple[Network, ...]:
        """Addresses and CIDR ranges, comma-separated (``10.0.0.7/8`` is read as ``10.0.0.0/8``)."""
        try:
            return tuple(ipaddress.ip_network(item, strict=False) for item in self.items(name))
        except ValueError as exc:
            raise ConfigError(name, str(exc), "list addresses or CIDR ranges, comma-separated") from None

    def json(self, name: str, default: Any, expect: type) -> Any:
        value = self.raw(name)
        if not value:
            return default
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(name, f"is not valid JSON ({exc})", "quote the JSON in single quotes") from None
        if not isinstance(parsed, expect):
            raise ConfigError(name, f"must be a JSON {expect.__name__}", f"write a JSON {expect.__name__}")
        return parsed


def _bounded(name: str, number: Any, lo: Any, hi: Any) -> Any:
    if lo is not None and number < lo:
        raise ConfigError(name, f"{number} is below the minimum {lo}", f"use a value of at least {lo}")
    if hi is not None and number > hi:
        raise ConfigError(name, f"{number} is above the maximum {hi}", f"use a value of at most {hi}")
    return number
