"""While crawls run the collector's gen-0 threshold is raised; the last one to end restores it."""

from __future__ import annotations

import gc

from inlink.index.crawljob import _young_gc_threshold


def test_threshold_raised_while_crawls_run_and_restored_after() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with _young_gc_threshold(50_000):
            assert gc.get_threshold() == (50_000, 10, 10)
            with _young_gc_threshold(50_000):          # a second crawl in the same process
                assert gc.get_threshold() == (50_000, 10, 10)
            assert gc.get_threshold() == (50_000, 10, 10)
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(0)                              # disabled stays disabled
        with _young_gc_threshold(50_000):
            assert gc.get_threshold()[0] == 0
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)
