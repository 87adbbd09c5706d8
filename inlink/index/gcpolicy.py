"""Python's cycle collector during bulk work: crawls and ingests in this process.

A crawl or an ingest allocates millions of short-lived objects (links, rows, records,
futures) that reference counting frees, and almost no reference cycles: a whole 3,000-page
ingest with the collector off and `gc.DEBUG_SAVEALL` left 317 unreachable objects. With the
default generation-0 threshold (700) the collector ran thousands of times a batch,
rescanning the batch's live objects each time. Measured (docs/ingest.md, docs/crawl.md):
a crawl spent 1.0 s of CPU in the collector per 3,000 pages at 700 and 0.23 s at 50,000; an
ingest's batches took 3.95 s at 700 and 3.45 s at 50,000 (means of three alternating pairs).

`young_gc_threshold` raises the generation-0 threshold while any such job runs in the
process (a server runs crawls and ingests as jobs, possibly at once) and the last one to end
restores it. Older generations keep their thresholds, so cyclic garbage is still collected;
a collector the user turned off (threshold 0) stays off.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterator

#: Allocations between generation-0 collections while bulk work runs (Python's default: 700).
GEN0_THRESHOLD = 50_000


class HeldSetting:
    """A process-wide setting that bulk jobs hold while they run: the first holder applies
    it, the last one to end undoes it, in whatever order the holders end (a server's jobs
    overlap without nesting). Used for the collector's threshold here, glibc's malloc
    thresholds (inlink.index.ingest.malloc_tuned) and DuckDB's row-group merging
    (Store.vacuum_paused)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._undo: Callable[[], None] | None = None

    @contextlib.contextmanager
    def held(self, apply: Callable[[], Callable[[], None]]) -> Iterator[None]:
        """Hold the setting for the block; `apply()` sets it and returns how to undo it."""
        with self._lock:
            if self._holders == 0:
                self._undo = apply()
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._undo is not None:
                    undo, self._undo = self._undo, None
                    undo()


_young = HeldSetting()


def young_gc_threshold(gen0: int = GEN0_THRESHOLD) -> contextlib.AbstractContextManager[None]:
    """Raise the collector's generation-0 threshold to `gen0` while any holder runs."""

    def apply() -> Callable[[], None]:
        saved = gc.get_threshold()
        raise_young_threshold(gen0)
        return lambda: gc.set_threshold(*saved)

    return _young.held(apply)


def raise_young_threshold(gen0: int = GEN0_THRESHOLD) -> None:
    """Raise the generation-0 threshold to `gen0` for good (a worker process that does
    nothing but bulk work); a collector turned off (threshold 0) stays off."""
    threshold = gc.get_threshold()
    if threshold[0] and threshold[0] < gen0:
        gc.set_threshold(gen0, *threshold[1:])
