"""The image cache as the routes see it: entries by key, a memory front, shared invalidation,
and hit/miss counts summed over every worker.

A failure is kept only ``FAILURE_CACHE_TTL`` seconds, and only under the settings that made it
(``failure_scope``, a digest of the image settings): after a restart with other backends, tokens
or models, a failure remembered before is not served. A transient failure is never kept.

An image may have variants (the same image in another format, ``proxy.imagegen.formats``), each
an entry of its own under ``{key}~{suffix}`` that names the original it was made from (its
``created`` stamp): a variant is served only beside that very original, so one written after a
delete, or left from an image made again since, is never served. The variants made of an entry
are listed beside it (the list is changed under a short lock in the store, so workers and
instances adding variants at once all get listed), and a delete removes them all with the entry.

An image too large for the memory front (CACHE_MEMORY_ITEM_BYTES) is not kept in memory. Where
the store keeps it as a file of its own (the disk store), the image route's hits
(``get(..., lean=True)``) read only the entry's header from that file and leave the body there, to
be sent from it with sendfile (``StoredBody``); the file stays open until the answer is sent, so a
delete, eviction or overwrite meanwhile takes nothing from it. The worker keeps the file open
between hits for a while (``proxy.cache.held``), so the next hits skip the store altogether.
``whole`` reads such a body where the bytes themselves are needed (a conversion, the safety check,
an upload)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from typing import Any

from proxy.cache.bodyfile import BodyFile, StoredBody
from proxy.cache.entry import FAILURE, IMAGE, CacheEntry
from proxy.cache.front import MemoryFront
from proxy.cache.generation import SharedGeneration
from proxy.cache.held import HeldFiles
from proxy.cache.stores.base import ByteStore, ValueFile
from proxy.config.cache import CacheSettings
from proxy.errors import StorageFull

log = logging.getLogger(__name__)
STATS_EVERY = 2.0
LIST_LOCK_TTL = 5.0  # seconds the lock on an entry's list of variants outlives a worker that died holding it
LIST_WAIT = 0.01  # seconds between tries for that lock
VARIANT = "~"  # between an entry's key and a variant's suffix
OF = "of"  # a variant's meta: the ``created`` stamp of the original it was made from
HEAD_BYTES = 16 * 1024  # read with a stored file's opening: an entry's header is well within them


def variant_key(key: str, suffix: str) -> str:
    return f"{key}{VARIANT}{suffix}"


def variant_of(found: CacheEntry | None, original: CacheEntry) -> CacheEntry | None:
    """``found`` when it is a variant made from this very original."""
    if found is None or found.kind != IMAGE or found.meta.get(OF) != original.meta.get("created"):
        return None
    return found


class ImageCache:
    def __init__(self, store: ByteStore, generation: SharedGeneration, settings: CacheSettings,
                 failure_scope: str = ""):
        self.store = store
        self.failure_scope = failure_scope
        self.generation = generation
        self.settings = settings
        self.front: MemoryFront[CacheEntry] = MemoryFront(settings.memory_bytes, settings.memory_item_bytes,
                                                          on_drop=self._forget_file)
        self.files: dict[str, tuple[CacheEntry, BodyFile]] = {}  # large bodies in the front, for sendfile
        self.held = HeldFiles()  # the store's files of images too large for the front, kept open
        self.hits = 0
        self.misses = 0
        self._flushed = (0, 0)
        self.files_opened = 0  # entries read from their header alone, the body left in the store's file
        self.files_open = 0  # ... whose file is still open (an answer being sent)
        self.files_dropped = 0  # ... whose file was closed only when it was dropped (a bug)

    def peek(self, key: str) -> CacheEntry | None:
        """The memory front only: no I/O, for the hot path."""
        self.front.sync(self.generation.read())
        return self.front.get(key)

    async def get(self, key: str, *, lean: bool = False) -> CacheEntry | None:
        """``lean``: an image too large for the memory front that the store keeps as a file comes
        with its body left there (``body_file``); the caller sends it, or ``release``s the entry."""
        found = self.peek(key)
        if found is not None:
            return found
        generation = self.generation.read()
        self.held.sync(generation)  # here, not in ``peek``: the hot path never holds a file
        if lean:
            kept = self.held.get(key)
            if kept is not None:
                return self._sent_from(*kept)
            raw = await self.store.open_value(f"img:{key}", whole_to=self.front.largest, head=HEAD_BYTES)
        else:
            raw = await self.store.get(f"img:{key}")
        entry = await self._lean(key, raw, generation) if isinstance(raw, ValueFile) else \
            CacheEntry.decode(raw) if raw is not None else None
        if entry is not None and entry.kind == FAILURE:
            if entry.meta.get("scope") == self.failure_scope:
                return entry
            entry.release()
            return None
        if entry is not None:
            self._remember(key, entry)
        return entry

    async def _lean(self, key: str, value: ValueFile, generation: int) -> CacheEntry | None:
        """The entry in ``value`` from its header alone, its body left in the file (None, the file
        closed, when it is not an entry). A header longer than ``HEAD_BYTES`` (never seen: prompts are
        far shorter) has the value read whole instead."""
        head = value.head
        end = CacheEntry.header_end(head)
        found = CacheEntry.decode_head(head) if end is not None and end <= value.size else None
        if found is None:
            value.close()
            if end is None or end <= len(head) or end > value.size:
                return None  # not an entry
            raw = await self.store.get(f"img:{key}")
            return CacheEntry.decode(raw) if raw is not None else None
        entry, offset = found
        self.held.keep(key, entry, value, offset, generation)  # unless a delete came meanwhile
        return self._sent_from(entry, value, offset)

    def _sent_from(self, entry: CacheEntry, value: ValueFile, offset: int) -> CacheEntry:
        """``entry`` (a header) with its body left in ``value`` from ``offset``, to be sent from there."""
        self.files_opened += 1
        self.files_open += 1
        return replace(entry, body_file=StoredBody(value, offset, self._file_closed))

    def _file_closed(self, dropped: bool) -> None:
        self.files_open -= 1
        if dropped:
            self.files_dropped += 1
            log.warning("a stored image's file was closed only when it was dropped, not when its "
                        "answer ended (a bug: please report it)")

    async def whole(self, entry: CacheEntry) -> CacheEntry:
        """``entry`` with its body read, when it was left in the store's file (which is then let go)."""
        file = entry.body_file
        if file is None:
            return entry
        try:
            body = await file.read()
        finally:
            file.close()
        return replace(entry, body=body, body_file=None)

    def _remember(self, key: str, entry: CacheEntry) -> None:
        if entry.body_file is not None:
            return  # too large for the front: that is why it was left in its file
        self.front.sync(self.generation.read())
        size = len(entry.body) + 256
        file = BodyFile.of(entry.body) if 2 * size <= self.front.max_item_bytes else None
        self.front.put(key, entry, size + (file.size if file else 0))
        if file is None:
            return
        held = self.front.items.get(key)
        if held is not None and held[0] is entry:
            self.files[key] = (entry, file)
        else:
            file.close()

    def file_for(self, key: str, entry: CacheEntry) -> BodyFile | None:
        """The memory file holding this very entry's body, if the front keeps one."""
        held = self.files.get(key)
        return held[1] if held is not None and held[0] is entry else None

    def _forget_file(self, key: str, entry: CacheEntry) -> None:
        held = self.files.get(key)
        if held is not None and held[0] is entry:
            del self.files[key]
            held[1].close()

    async def room(self) -> None:
        """``StorageFull`` while the store cannot take new entries (a miss is refused, not made)."""
        await self.store.room()

    async def put(self, key: str, entry: CacheEntry) -> None:
        if entry.kind == FAILURE:
            if self.settings.failure_ttl > 0 and not entry.meta.get("transient"):
                kept = replace(entry, meta={**entry.meta, "scope": self.failure_scope})
                await self.store.set(f"img:{key}", kept.encode(), ttl=self.settings.failure_ttl)
            return
        self._remember(key, entry)  # at once: the next request here is a hit, not a second miss
        self.held.discard(key)
        await self.store.set(f"img:{key}", entry.encode())

    def peek_variant(self, stored: str, original: CacheEntry) -> CacheEntry | None:
        """The variant kept under ``stored`` (``variant_key``) of the ``original`` just peeked at,
        from the memory front only (which that peek brought up to date): no I/O, for the hot path.
        (``variant_of`` written out: this runs on every variant hit.)"""
        items = self.front.items
        held = items.get(stored)
        if held is None or held[0].meta.get(OF) != original.meta.get("created"):
            return None
        items.move_to_end(stored)
        return held[0]

    async def get_variant(self, key: str, suffix: str, original: CacheEntry) -> CacheEntry | None:
        vkey = variant_key(key, suffix)
        found = variant_of(self.peek(vkey), original)
        if found is not None:
            return found
        raw = await self.store.get(f"img:{vkey}")
        found = variant_of(CacheEntry.decode(raw) if raw is not None else None, original)
        if found is not None:
            self._remember(vkey, found)
        return found

    async def put_variant(self, key: str, suffix: str, entry: CacheEntry) -> None:
        """Kept like any image, and listed beside its entry for the delete."""
        await self.put(variant_key(key, suffix), entry)
        lock = f"imgv-lock:{key}"
        held = False
        for _ in range(int(LIST_LOCK_TTL / LIST_WAIT)):  # a lock older than that has run out
            held = await self.store.add(lock, b"1", ttl=LIST_LOCK_TTL)
            if held:
                break
            await asyncio.sleep(LIST_WAIT)
        try:
            listed = await self.variants(key)
            if suffix not in listed:
                await self.store.set(f"imgv:{key}", ",".join([*listed, suffix]).encode())
        finally:
            if held:
                await self.store.delete(lock)

    async def variants(self, key: str) -> list[str]:
        raw = await self.store.get(f"imgv:{key}")
        return [suffix for suffix in raw.decode().split(",") if suffix] if raw else []

    async def delete(self, key: str) -> bool:
        """The entry and every variant made of it."""
        deleted = await self.store.delete(f"img:{key}")
        for suffix in await self.variants(key):
            await self.store.delete(f"img:{variant_key(key, suffix)}")
        await self.store.delete(f"imgv:{key}")
        self.front.discard(key)
        self.held.discard(key)
        await self.generation.bump()
        return deleted

    def count(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1

    async def flush_counts(self) -> None:
        hits, misses = self.hits, self.misses
        done_hits, done_misses = self._flushed
        if hits != done_hits:
            await self.store.incr("stats:hits", hits - done_hits)
        if misses != done_misses:
            await self.store.incr("stats:misses", misses - done_misses)
        self._flushed = (hits, misses)

    async def run_flusher(self) -> None:
        while True:
            await asyncio.sleep(STATS_EVERY)
            with contextlib.suppress(Exception):
                await self.flush_counts()

    async def stats(self) -> dict[str, Any]:
        with contextlib.suppress(StorageFull):  # a full disk: the counts wait, the status answers
            await self.flush_counts()
        store = await self.store.stats()
        hits = int(await self.store.get("stats:hits") or 0)
        misses = int(await self.store.get("stats:misses") or 0)
        return {**store, "hits": hits, "misses": misses,
                "hit_ratio": round(hits / (hits + misses), 4) if hits + misses else None,
                "memory_front": {"entries": len(self.front.items), "bytes": self.front.size},
                "store_files": {"opened": self.files_opened, "open": self.files_open,
                                "dropped": self.files_dropped, "held": len(self.held.items)}}

    def close(self) -> None:
        """Lets go of the store's files held open (the answers still sending have their own)."""
        self.held.clear()
