"""The synthetic web written as WARC files and ingested gives the world's link set.

The crawl path is checked against the same truth in tests/crawl/test_crawl_world.py; this is
the archive path: warcio writes each day's fetchable pages, `ingest` reads them back.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from inlink.index.ingest import ingest
from inlink.index.store import Store
from inlink.world import World
from inlink.world.export import write_warc

DAYS = 3


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=11, hosts=80, days=DAYS)


@pytest.fixture(scope="module")
def warcs(world: World, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("warc")
    paths = []
    for day in range(1, DAYS + 1):
        path = folder / f"day-{day}.warc.gz"
        write_warc(world, path, day)
        paths.append(path)
    return paths


def _live(store: Store) -> set[tuple[str, str, str, str, str | None]]:
    return set(store.query(
        "SELECT source_key, kind, target_key, anchor, image_url FROM links WHERE live"))


def _truth(world: World, day: int) -> set[tuple[str, str, str, str, str | None]]:
    return {(t.source_key, t.kind.value, t.target_key, t.anchor, t.image_url)
            for t in world.live_links(day)}


def test_each_day_ingested_equals_the_live_truth(world: World, warcs: list[Path],
                                                 tmp_path: Path) -> None:
    with Store(tmp_path / "index.duckdb") as store:
        for day, path in enumerate(warcs, start=1):
            summary = ingest(store, [path], workers=0)
            assert summary.records_bad == 0
            got, want = _live(store), _truth(world, day)
            fetched = {row[0] for row in store.query(
                "SELECT url_key FROM fetches WHERE fetched_at::DATE = ?", [world.date_of(day)])}
            # Exactly the truth, except links of pages this day's archive has no record of
            # (a reset connection or a robots.txt rule leaves nothing to archive): those keep
            # the state of their last capture.
            assert want - got == {t for t in want - got if t[0] not in fetched} == set()
            assert all(t[0] not in fetched for t in got - want), f"day {day}"
            if day == 1:
                assert got == want


def test_new_and_lost_events_match_where_an_archive_can_know(world: World, warcs: list[Path],
                                                            tmp_path: Path) -> None:
    with Store(tmp_path / "index.duckdb") as store:
        ingest(store, warcs, workers=0)
        got = Counter(store.query("SELECT day, event, reason FROM link_events"))
    want = Counter((e.date, e.event, e.reason) for e in world.events(DAYS))
    # One WARC record cannot tell where a redirect chain ends (the target's record may be
    # missing or later in the file), so an archive calls every redirect `redirect`; the
    # crawler follows the chain and can say `broken_redirect` (docs/ingest.md). Pages that
    # fail without a response (resets, robots) are absent from an archive, so their links
    # stay live instead of being lost with `crawl_error` / `page_dropped`. Everything else
    # must agree exactly.
    for key in list(want):
        if key[2] == "broken_redirect":
            want[(key[0], key[1], "redirect")] += want.pop(key)
    # A link that comes back after such an unarchived failure is "new again" in the truth
    # but was never lost in the archive's view, so later days can only have fewer news.
    uncertain = {"crawl_error", "page_dropped"}
    for key, n in want.items():
        if key[1] == "lost" and key[2] not in uncertain:
            assert got[key] == n, key
        elif key[1] == "lost":  # 5xx answers are archived, resets and robots rules are not
            assert got[key] <= n, key
    assert not {k for k in got if k[1] == "lost"} - set(want)
    first = world.date_of(1)
    assert got[(first, "new", None)] == want[(first, "new", None)] > 0
    for day in range(2, DAYS + 1):
        key = (world.date_of(day), "new", None)
        assert 0 < got[key] <= want[key]
