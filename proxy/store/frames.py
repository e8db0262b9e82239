"""Stored frames: JPEG files under the frames directory, one folder per profile, and their rows."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

import orjson

from proxy.store.models import StoreContext, check_username


def store(ctx: StoreContext, username: str, jpeg: bytes, meta: dict[str, Any]) -> Path | None:
    """Write the frame and its row; None when frames are not stored or the profile is gone."""
    if not ctx.settings.store_frames:
        return None
    now = time.time()
    folder = ctx.frames_dir / check_username(username) / time.strftime("%Y%m%d", time.gmtime(now))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{int(now * 1000)}-{secrets.token_hex(4)}.jpg"
    path.write_bytes(jpeg)
    inserted = ctx.conn.execute(
        "INSERT INTO frames (username, at, path, bytes, meta) SELECT ?, ?, ?, ?, ? "
        "WHERE EXISTS (SELECT 1 FROM profiles WHERE username = ?)",
        (username, now, str(path.relative_to(ctx.frames_dir)), len(jpeg),
         orjson.dumps(meta, default=str).decode(), username)).rowcount
    if not inserted:
        remove_files(ctx, [str(path.relative_to(ctx.frames_dir))])
        return None
    return path


def remove_files(ctx: StoreContext, relative_paths: list[str]) -> None:
    for relative in relative_paths:
        path = ctx.frames_dir / relative
        path.unlink(missing_ok=True)
        _prune_empty(path.parent, ctx.frames_dir)


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and root in folder.parents:
        try:
            os.rmdir(folder)
        except OSError:
            return
        folder = folder.parent
