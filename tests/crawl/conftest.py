"""Helpers for crawler tests: crawl a LoopWeb into a fresh store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from loopweb import LoopWeb

from inlink.index.crawljob import CrawlOptions, CrawlSummary, crawl
from inlink.index.store import Store
from inlink.settings import Settings

DAY1 = dt.date(2026, 1, 1)

Crawl = Callable[..., tuple[Store, CrawlSummary]]


@pytest.fixture
def run_crawl(tmp_path: Path) -> Any:
    stores: list[Store] = []

    def go(web: LoopWeb, seeds: list[str], *, as_of: dt.date = DAY1, db: Path | None = None,
           **options: Any) -> tuple[Store, CrawlSummary]:
        path = db or tmp_path / "index.duckdb"
        store = next((s for s in stores if s.path == path), None)
        if store is None:
            store = Store(path)
            stores.append(store)
        base: dict[str, Any] = dict(resolve=web.resolve, dns=False, delay=0.0, timeout=5.0,
                                    read_timeout=3.0, connect_timeout=2.0, extract_mode="thread",
                                    country=False)
        base.update(options)
        summary = crawl(store, seeds, CrawlOptions(**base), Settings(db=path, as_of=as_of))
        return store, summary

    yield go
    for s in stores:
        s.close()
