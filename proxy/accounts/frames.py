"""Stored frames: JPEG files under the frames directory, one folder per profile, and their rows.

Writing the file and inserting the row are separate steps, so the (slower) file write can run
off the database thread."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

import orjson

from proxy.accounts.models import AccountsContext, check_username


def write_file(frames_dir: Path, username: str, jpeg: bytes, now: float) -> Path:
    """The frame in a new file readable by Iris's user alone (0600, in 0700 folders)."""
    user = frames_dir / check_username(username)
    folder = user / time.strftime("%Y%m%d", time.gmtime(now))
    frames_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for level in (user, folder):  # mkdir gives the mode to the last level only
        level.mkdir(exist_ok=True, mode=0o700)
    path = folder / f"{int(now * 1000)}-{secrets.token_hex(4)}.jpg"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(jpeg)
    return path


def insert(ctx: AccountsContext, username: str, path: Path, size: int, meta: dict[str, Any],
           now: float) -> bool:
    """The frame's row; False (and the file removed) when the profile no longer exists."""
    relative = str(path.relative_to(ctx.frames_dir))
    inserted = ctx.conn.execute(
        "INSERT INTO frames (username, at, path, bytes, meta) SELECT ?, ?, ?, ?, ? "
        "WHERE EXISTS (SELECT 1 FROM profiles WHERE username = ?)",
        (username, now, relative, size, orjson.dumps(meta, default=str).decode(), username)).rowcount
    if not inserted:
        remove_files(ctx.frames_dir, [relative])
    return bool(inserted)


def store(ctx: AccountsContext, username: str, jpeg: bytes, meta: dict[str, Any]) -> Path | None:
    """Both steps at once (for synchronous callers); None when frames are not stored."""
    if not ctx.settings.store_frames:
        return None
    now = time.time()
    path = write_file(ctx.frames_dir, username, jpeg, now)
    return path if insert(ctx, username, path, len(jpeg), meta, now) else None


def remove_files(frames_dir: Path, relative_paths: list[str]) -> None:
    for relative in relative_paths:
        path = frames_dir / relative
        path.unlink(missing_ok=True)
        _prune_empty(path.parent, frames_dir)


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and root in folder.parents:
        try:
            os.rmdir(folder)
        except OSError:
            return
        folder = folder.parent
