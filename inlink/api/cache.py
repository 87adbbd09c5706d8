"""An exact answer cache for the read endpoints.

The server is the index file's only writer, so `Store.generation` (committed write
transactions) changes whenever the data may have: an answer computed at generation G is the
answer to the same request for as long as the generation is still G. Entries are keyed by the
endpoint, the request's parameters (the API key and `output` excluded: answers do not depend
on who asks, and rendering happens per request) and the server's date (defaults such as
`date_from` = yesterday move at midnight), and live at most `ttl` seconds (a `raw` cursor
inside an answer keeps its issue time). Every call is still charged: the cache saves work,
not credits.

Bounded by total size (the answers' JSON length, `INLINK_API_CACHE_MB`, default 256; 0
turns it off), least recently used first out.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import orjson

Key = tuple[Hashable, ...]


@dataclass(slots=True)
class _Entry:
    generation: int
    born: float
    size: int
    value: Any


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    misses: int = 0
    entries: int = 0
    bytes: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "entries": self.entries,
                "bytes": self.bytes}


class AnswerCache:
    def __init__(self, max_bytes: int = 256 << 20, ttl: float = 600.0) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._lock = threading.Lock()
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._bytes = 0
        self.stats = CacheStats()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @staticmethod
    def key(path: str, params: list[tuple[str, Any]], today: dt.date) -> Key:
        """A request's identity: endpoint, parameters in a canonical order, the date."""
        return (path, today.isoformat(), orjson.dumps(sorted(params, key=lambda kv: kv[0]),
                                                      option=orjson.OPT_NON_STR_KEYS,
                                                      default=str))

    def get(self, key: Key, generation: int) -> Any | None:
        if not self.enabled:
            return None
        with self._lock:
            e = self._entries.get(key)
            if e is None or e.generation != generation or time.monotonic() - e.born > self.ttl:
                if e is not None:
                    self._drop(key)
                self.stats.misses += 1
                return None
            self._entries.move_to_end(key)
            self.stats.hits += 1
            return e.value

    def put(self, key: Key, generation: int, value: Any, size: int) -> None:
        if not self.enabled or size > self.max_bytes // 8:
            return  # one answer may not take over the cache
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = _Entry(generation, time.monotonic(), size, value)
            self._bytes += size
            while self._bytes > self.max_bytes and self._entries:
                self._drop(next(iter(self._entries)))
            self.stats.entries, self.stats.bytes = len(self._entries), self._bytes

    def _drop(self, key: Key) -> None:
        e = self._entries.pop(key)
        self._bytes -= e.size
        self.stats.entries, self.stats.bytes = len(self._entries), self._bytes


__all__ = ["AnswerCache", "CacheStats"]
