"""What the store hands out, and the names it accepts."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from proxy.accounts.keyring import Keyring
from proxy.config.accounts import AccountSettings
from proxy.errors import BadRequest

PROVIDER_KEY_NAMES = ("gemini_api_key", "deepseek_api_key", "qwen_api_key", "chatgpt_api_key")
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # fullmatch: "$" allows a final newline
_KEY = re.compile(r"[A-Za-z0-9_.~-]{8,256}")


@dataclass(frozen=True)
class Profile:
    username: str
    created_at: float
    key_changed_at: float
    stamp: str = field(repr=False, default="")
    """Changes whenever the auth key changes; sessions granted under an older key stop working."""


@dataclass
class AccountsContext:
    """Everything the synchronous store functions need; one per connection (thread or CLI)."""

    conn: sqlite3.Connection
    keyring: Keyring
    settings: AccountSettings
    user_changes: int = 0
    """User-state writes through this connection (``changes.bump``): this process's cache drops
    what it holds as soon as it moves, without waiting for its poll of the shared counter."""

    @property
    def frames_dir(self) -> Path:
        return self.settings.frames_dir


def check_username(username: str) -> str:
    if not _USERNAME.fullmatch(username or ""):
        raise BadRequest("a username is 1-64 letters, digits, '_', '.' or '-', starting with a letter or "
                         "digit", code="invalid_username")
    return username


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key or ""):
        raise BadRequest("an auth key is 8-256 URL-safe characters (letters, digits, '_', '.', '~', '-')",
                         code="invalid_key_format")
    return key


def profile_from(row: sqlite3.Row) -> Profile:
    return Profile(row["username"], row["created_at"], row["key_changed_at"], row["key_hash"][:8].hex())
