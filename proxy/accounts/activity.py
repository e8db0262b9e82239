"""Activity rows (one per auth, frame, prompt change...) and the usage report built from them."""

from __future__ import annotations

import time
from typing import Any

import orjson

from proxy.accounts.models import AccountsContext


def record(ctx: AccountsContext, username: str, kind: str, fields: dict[str, Any],
           at: float | None = None) -> None:
    """Append a row; silently nothing when the profile no longer exists."""
    data = orjson.dumps(fields, default=str).decode()
    ctx.conn.execute(
        "INSERT INTO activity (username, at, kind, data) SELECT ?, ?, ?, ? "
        "WHERE EXISTS (SELECT 1 FROM profiles WHERE username = ?)",
        (username, time.time() if at is None else at, kind, data, username))


def report(ctx: AccountsContext, username: str, recent: int = 10) -> dict[str, Any]:
    """Counts by kind; ``answers``: per provider, the answers it gave that were returned (frames and
    analyses; ``repeated``: of those, the ones given again from memory for a repeated scene, which
    cost no call); ``provider_calls``: the calls made to providers, every one the cascade asked and
    its judge included (an answer may have cost several, a repeated one none); stored frames."""
    conn = ctx.conn
    kinds = {row["kind"]: {"count": row["n"], "first": row["first"], "last": row["last"]}
             for row in conn.execute("SELECT kind, COUNT(*) n, MIN(at) first, MAX(at) last FROM activity "
                                     "WHERE username = ? GROUP BY kind ORDER BY kind", (username,))}
    answers = {row["p"]: {"answers": row["n"], "repeated": row["repeated"]} for row in conn.execute(
        "SELECT json_extract(data, '$.provider') p, COUNT(*) n, "
        "COALESCE(SUM(json_extract(data, '$.cached') = 1), 0) repeated FROM activity WHERE username = ? "
        "AND json_extract(data, '$.provider') IS NOT NULL GROUP BY p ORDER BY n DESC, p", (username,))}
    calls = conn.execute("SELECT COALESCE(SUM(json_extract(data, '$.calls')), 0) n FROM activity "
                         "WHERE username = ?", (username,)).fetchone()["n"]
    frames = conn.execute("SELECT COUNT(*) n, COALESCE(SUM(bytes), 0) b FROM frames WHERE username = ?",
                          (username,)).fetchone()
    rows = conn.execute("SELECT at, kind, data FROM activity WHERE username = ? ORDER BY at DESC, id DESC "
                        "LIMIT ?", (username, recent)).fetchall()
    return {"username": username, "kinds": kinds, "answers": answers, "provider_calls": calls,
            "frames": {"count": frames["n"], "bytes": frames["b"]},
            "recent": [{"at": r["at"], "kind": r["kind"], **orjson.loads(r["data"])} for r in rows]}
