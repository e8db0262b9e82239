"""Stopping background tasks without ever hanging shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)


async def stop_tasks(tasks: Iterable[asyncio.Task[object]], *, grace: float = 5.0,
                     finish: float = 0.0) -> None:
    """Cancel ``tasks`` and wait at most ``grace`` seconds for them. A task that swallows its
    cancellation (a library may turn it into an ordinary error) is reported, not waited on.
    ``finish``: seconds the tasks may first take to end on their own (a writer told to stop)."""
    pending = [task for task in tasks if not task.done()]
    if pending and finish > 0:
        await asyncio.wait(pending, timeout=finish)
        pending = [task for task in pending if not task.done()]
    for task in pending:
        task.cancel()
    if not pending:
        return
    _, stuck = await asyncio.wait(pending, timeout=grace)
    for task in stuck:
        log.warning("background task %s did not stop within %g s", task.get_name(), grace)
