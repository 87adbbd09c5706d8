"""Integration: crawl a small synthetic world on days 1..3; live links and events match truth."""

from __future__ import annotations

from pathlib import Path

import pytest

from inlink.index.crawljob import CrawlOptions, crawl
from inlink.index.store import Store
from inlink.settings import Settings

world_mod = pytest.importorskip("inlink.world")


@pytest.mark.slow
def test_world_days_1_to_3_match_truth(tmp_path: Path) -> None:
    """Each day extracts in another mode (a thread, a spawned process, inline): the modes
    are interchangeable, so the index still equals the truth."""
    w = world_mod.World(seed=7, hosts=120, days=4)
    db = tmp_path / "world.duckdb"
    days = 3
    with world_mod.serve_in_thread(w, day=1, slow_delay=0.3, trickle_max=1.0,
                                   idle_timeout=3.0) as run, Store(db) as store:
        for day, mode in zip(range(1, days + 1), ("thread", "process", "inline"), strict=True):
            run.set_day(day)
            options = CrawlOptions(resolve=run.resolve, dns=False, delay=0.01, scope="any",
                                   timeout=3.0, read_timeout=2.0, extract_mode=mode,
                                   country=False)
            summary = crawl(store, w.seeds(), options, Settings(db=db, as_of=w.date_of(day)))
            assert summary.pages_ok > 900
        live = set(store.query("SELECT source_key, target_key, kind, anchor, image_url "
                               "FROM links WHERE live"))
        truth = {link.identity for link in w.live_links(days)}
        assert live == truth
        events = set(store.query(
            "SELECT day, source_key, target_key, kind, anchor, image_url, event, reason "
            "FROM link_events e JOIN links USING (link_id, source_key, target_key)"))
        want = {(e.date, e.source_key, e.target_key, e.kind, e.anchor, e.image_url, e.event,
                 e.reason) for e in w.events(days)}
        assert events == want
