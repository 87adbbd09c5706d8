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
from collections.abc import Iterator

#: Allocations between generation-0 collections while bulk work runs (Python's default: 700).
GEN0_THRESHOLD = 50_000

_lock = threading.Lock()
_users = 0
_saved: tuple[int, int, int] | None = None


@contextlib.contextmanager
def young_gc_threshold(gen0: int = GEN0_THRESHOLD) -> Iterator[None]:
    """Raise the collector's generation-0 threshold to `gen0` while any holder runs."""
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = gc.get_threshold()
            raise_young_threshold(gen0)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None


def raise_young_threshold(gen0: int = GEN0_THRESHOLD) -> None:
    """Raise the generation-0 threshold to `gen0` for good (a worker process that does
    nothing but bulk work); a collector turned off (threshold 0) stays off."""
    threshold = gc.get_threshold()
    if threshold[0] and threshold[0] < gen0:
        gc.set_threshold(gen0, *threshold[1:])
