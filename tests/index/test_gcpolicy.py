"""While crawls or ingests run the collector's gen-0 threshold is raised; the last one to end
restores it, in whatever order they end."""

from __future__ import annotations

import contextlib
import gc

from inlink.index.gcpolicy import GEN0_THRESHOLD, raise_young_threshold, young_gc_threshold


def test_threshold_raised_while_jobs_run_and_restored_after() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with young_gc_threshold(50_000):
            assert gc.get_threshold() == (50_000, 10, 10)
            with young_gc_threshold(50_000):          # a second job in the same process
                assert gc.get_threshold() == (50_000, 10, 10)
            assert gc.get_threshold() == (50_000, 10, 10)
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(0)                            # disabled stays disabled
        with young_gc_threshold(50_000):
            assert gc.get_threshold()[0] == 0
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)


def test_overlapping_jobs_that_end_out_of_order_restore_the_original() -> None:
    """A server's crawl and ingest jobs overlap without nesting: the first to start may end
    first; the threshold stays raised until the last one ends, then is Python's again."""
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        crawl, ingest = contextlib.ExitStack(), contextlib.ExitStack()
        crawl.enter_context(young_gc_threshold())
        ingest.enter_context(young_gc_threshold())
        crawl.close()
        assert gc.get_threshold() == (GEN0_THRESHOLD, 10, 10)
        ingest.close()
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_a_worker_raises_it_for_good_unless_collection_is_off() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 5, 7)
        raise_young_threshold()
        assert gc.get_threshold() == (GEN0_THRESHOLD, 5, 7)
        gc.set_threshold(0)
        raise_young_threshold()
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)
