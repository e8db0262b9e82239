"""Profiles, their auth keys (as HMACs), provider keys (encrypted) and custom prompts."""

from __future__ import annotations

import shutil
import time

from proxy.accounts import changes
from proxy.accounts.keyring import new_key
from proxy.accounts.models import (
    PROVIDER_KEY_NAMES,
    AccountsContext,
    Profile,
    check_key,
    check_username,
    profile_from,
)
from proxy.db.connection import transaction
from proxy.errors import BadRequest, NotFound

_SELECT = "SELECT username, key_hash, created_at, key_changed_at FROM profiles"


def by_key(ctx: AccountsContext, key: str) -> Profile | None:
    digest = ctx.keyring.digest(key)
    row = ctx.conn.execute(f"{_SELECT} WHERE key_hash = ?", (digest,)).fetchone()
    if row is None or not ctx.keyring.matches(key, row["key_hash"]):
        return None
    return profile_from(row)


def by_name(ctx: AccountsContext, username: str) -> Profile | None:
    row = ctx.conn.execute(f"{_SELECT} WHERE username = ?", (username,)).fetchone()
    return profile_from(row) if row else None


def listing(ctx: AccountsContext) -> list[Profile]:
    return [profile_from(row) for row in ctx.conn.execute(f"{_SELECT} ORDER BY username")]


def add(ctx: AccountsContext, username: str, key: str | None = None) -> str:
    """Create a profile; returns its auth key (generated when none is given)."""
    check_username(username)
    key = check_key(key) if key else new_key()
    now, digest = time.time(), ctx.keyring.digest(key)
    with transaction(ctx.conn):
        if ctx.conn.execute("SELECT 1 FROM profiles WHERE username = ?", (username,)).fetchone():
            raise BadRequest(f"the profile {username!r} already exists", code="profile_exists")
        if ctx.conn.execute("SELECT 1 FROM profiles WHERE key_hash = ?", (digest,)).fetchone():
            raise BadRequest("another profile already uses this key", code="key_in_use")
        ctx.conn.execute("INSERT INTO profiles VALUES (?, ?, ?, ?)",
                         (username, digest, now, now))
    return key


def rotate_key(ctx: AccountsContext, username: str) -> str:
    key = new_key()
    with transaction(ctx.conn):
        changed = ctx.conn.execute("UPDATE profiles SET key_hash = ?, key_changed_at = ? WHERE username = ?",
                                   (ctx.keyring.digest(key), time.time(), username)).rowcount
        ctx.conn.execute("DELETE FROM sessions WHERE username = ?", (username,))
        changes.bump(ctx)
    if not changed:
        raise NotFound(f"no profile named {username!r}", code="no_profile")
    return key


def delete(ctx: AccountsContext, username: str) -> bool:
    """Delete the profile, its rows (cascade), its sessions and its stored frame files."""
    with transaction(ctx.conn):
        gone = ctx.conn.execute("DELETE FROM profiles WHERE username = ?", (username,)).rowcount
        ctx.conn.execute("DELETE FROM sessions WHERE username = ?", (username,))
        changes.bump(ctx)
    if gone:
        shutil.rmtree(ctx.frames_dir / check_username(username), ignore_errors=True)
    return bool(gone)


def provider_keys(ctx: AccountsContext, username: str) -> dict[str, str]:
    rows = ctx.conn.execute("SELECT name, secret FROM provider_keys WHERE username = ?", (username,))
    keys = {row["name"]: ctx.keyring.decrypt(row["secret"]) for row in rows}
    return {name: value for name, value in keys.items() if value}


def set_provider_keys(ctx: AccountsContext, username: str, keys: dict[str, str | None]) -> None:
    """Set the given keys; an empty or null value removes that key. Unknown names are refused."""
    unknown = sorted(set(keys) - set(PROVIDER_KEY_NAMES))
    if unknown:
        raise BadRequest(f"unknown provider key names: {', '.join(unknown)}; known: "
                         f"{', '.join(PROVIDER_KEY_NAMES)}", code="unknown_provider_key")
    now = time.time()
    with transaction(ctx.conn):
        _require(ctx, username)
        for name, value in keys.items():
            ctx.conn.execute("DELETE FROM provider_keys WHERE username = ? AND name = ?", (username, name))
            if value:
                ctx.conn.execute("INSERT INTO provider_keys VALUES (?, ?, ?, ?)",
                                 (username, name, ctx.keyring.encrypt(value), now))
        changes.bump(ctx)


def prompt(ctx: AccountsContext, username: str) -> str | None:
    row = ctx.conn.execute("SELECT text FROM prompts WHERE username = ?", (username,)).fetchone()
    return row["text"] if row else None


def set_prompt(ctx: AccountsContext, username: str, text: str | None) -> None:
    """A custom prompt; None or blank reverts to the default."""
    with transaction(ctx.conn):
        _require(ctx, username)
        ctx.conn.execute("DELETE FROM prompts WHERE username = ?", (username,))
        if text and text.strip():
            ctx.conn.execute("INSERT INTO prompts VALUES (?, ?, ?)", (username, text.strip(), time.time()))
        changes.bump(ctx)


def _require(ctx: AccountsContext, username: str) -> None:
    if not ctx.conn.execute("SELECT 1 FROM profiles WHERE username = ?", (username,)).fetchone():
        raise NotFound(f"no profile named {username!r}", code="no_profile")
