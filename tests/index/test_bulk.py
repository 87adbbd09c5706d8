"""Bulk-loading a world export equals crawling the same world day by day (the normal path).

The crawl (real HTTP on loopback, `--as-of` each day, the IndexWriter) is the reference; the
bulk loader must produce the same live links, link attributes, history and events.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from inlink.errors import InlinkError
from inlink.index import bulk
from inlink.index.bulk import load_world_export
from inlink.index.store import Store
from inlink.settings import Settings
from inlink.world import World
from inlink.world.export import export_world

DAYS = 3
HOSTS = 150

# Link columns the export carries, compared as they are. Compared apart: target_url and
# attr_hash (see test_target_urls_differ_only_in_escapes). Not compared: source_url (the
# crawler keeps the href it first discovered a page by, e.g. with a #fragment, which depends
# on crawl order; the export has the key), first_fetch_id/last_fetch_id (numbering differs;
# compared through the fetch they point at), source_country (NULL both ways on loopback) and
# source_title (not in an export).
LINK_COLUMNS = (
    "link_id", "target_domain", "target_host", "target_key", "source_key",
    "source_host", "source_domain", "source_ip", "source_subnet", "internal",
    "kind", "anchor", "alt", "image_url", "nofollow", "ugc", "sponsored", "text_pre",
    "text_post", "location", "links_count", "hreflang", "live", "first_seen",
    "last_seen", "lost_at", "lost_reason",
)
EVENT_COLUMNS = ("day", "seen_at", "link_id", "event", "reason", "target_domain",
                 "target_host", "target_key", "source_key", "source_domain", "internal")
# Page columns the export carries; the facts it cannot (bulk.PAGE_FACTS_NOT_CARRIED) are NULL.
PAGE_COLUMNS = ("url_key", "host", "domain", "first_crawl", "last_crawl", "state", "status",
                "ip", "redirect_to", "noindex")


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=5, hosts=HOSTS, days=DAYS)


@pytest.fixture(scope="module")
def crawled(world: World, tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The normal path: serve the world and crawl it as of each day (like inlink.demo)."""
    from inlink.index.crawljob import crawl
    from inlink.sources.crawl import CrawlOptions
    from inlink.world import serve_in_thread

    db = tmp_path_factory.mktemp("crawl") / "crawl.duckdb"
    store = Store(db)
    with serve_in_thread(world, 1) as served:
        options = CrawlOptions(resolve=served.resolve, dns=False, delay=0.02, per_host=2,
                               concurrency=96, timeout=5.0, read_timeout=3.0,
                               connect_timeout=2.0, scope="any", country=False)
        for day in range(1, DAYS + 1):
            served.set_day(day)
            crawl(store, world.seeds(), options,
                  Settings.from_env(db=db, as_of=world.date_of(day)))
    return store


@pytest.fixture(scope="module")
def export_dir(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export")
    export_world(world, out)
    return out


@pytest.fixture(scope="module")
def loaded(export_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("bulk") / "bulk.duckdb")
    load_world_export(store, export_dir, workers=0)
    return store


def _rows(store: Store, sql: str) -> Counter[tuple[Any, ...]]:
    return Counter(store.query(sql))


def test_live_links_and_attributes_match_the_crawl(crawled: Store, loaded: Store) -> None:
    sql = f"SELECT {', '.join(LINK_COLUMNS)} FROM links"
    want, got = _rows(crawled, sql), _rows(loaded, sql)
    # An export carries no titles (bulk.PAGE_FACTS_NOT_CARRIED): not on pages, not on links.
    assert loaded.query("SELECT count(*) FROM links WHERE source_title IS NOT NULL") == [(0,)]
    assert sum(want.values()) > 10_000
    assert got == want, (list((want - got).items())[:3], list((got - want).items())[:3])
    assert _rows(loaded, "SELECT link_id FROM links WHERE live") == \
        _rows(crawled, "SELECT link_id FROM links WHERE live")


def test_target_urls_differ_only_in_escapes(crawled: Store, loaded: Store) -> None:
    """The export writes a few `%XX` hrefs unescaped (world truth, not the loader): the URL
    as written then differs, and with it attr_hash; the key and the identity do not."""
    from urllib.parse import unquote

    sql = "SELECT link_id, (coalesce(target_url, target_key), attr_hash) FROM links"
    want, got = dict(crawled.query(sql)), dict(loaded.query(sql))
    assert want.keys() == got.keys()
    differ = [(want[k][0], got[k][0]) for k in want if want[k] != got[k]]
    assert len(differ) <= len(want) // 1000, differ[:5]
    assert all(unquote(a) == unquote(b) for a, b in differ), differ[:5]


def test_evidence_points_at_the_same_fetches(crawled: Store, loaded: Store) -> None:
    sql = ("SELECT l.link_id, f1.url_key, f1.fetched_at, f2.url_key, f2.fetched_at "
           "FROM links l JOIN fetches f1 ON f1.fetch_id = l.first_fetch_id "
           "JOIN fetches f2 ON f2.fetch_id = l.last_fetch_id")
    assert _rows(loaded, sql) == _rows(crawled, sql)
    # A bulk fetch's evidence is its row in pages.parquet.
    assert loaded.query("SELECT count(*) FROM fetches WHERE source <> 'import' "
                        "OR evidence_offset + 1 <> fetch_id OR NOT applied")[0][0] == 0


def test_events_match_the_crawl_by_day_and_reason(crawled: Store, loaded: Store) -> None:
    sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM link_events"
    want, got = _rows(crawled, sql), _rows(loaded, sql)
    assert got == want, (list((want - got).items())[:3], list((got - want).items())[:3])
    reasons = {r for (r,) in loaded.query("SELECT DISTINCT reason FROM link_events")}
    assert {"link_removed", "page_not_found", "crawl_error", "redirect", "noindex"} <= reasons


def test_pages_and_fetches_match_the_crawl(crawled: Store, loaded: Store) -> None:
    sql = f"SELECT {', '.join(PAGE_COLUMNS)} FROM pages"
    want, got = _rows(crawled, sql), _rows(loaded, sql)
    assert got == want, (list((want - got).items())[:3], list((got - want).items())[:3])
    kept = "SELECT url_key, list_sort(link_ids)::VARCHAR FROM pages"
    assert _rows(loaded, kept) == _rows(crawled, kept)
    # The hashes a page keeps are its links' attr_hash (which differ only as
    # test_target_urls_differ_only_in_escapes allows).
    (bad,), = loaded.query(
        "SELECT count(*) FROM (SELECT unnest(link_ids) AS link_id, unnest(link_hashes) AS h "
        "FROM pages) k JOIN links l USING (link_id) WHERE l.attr_hash <> k.h OR NOT l.live")
    assert bad == 0
    fetches = "SELECT url_key, fetched_at, state, status, ip FROM fetches"
    assert _rows(loaded, fetches) == _rows(crawled, fetches)
    for column in bulk.PAGE_FACTS_NOT_CARRIED:
        assert loaded.query(f"SELECT count({column}) FROM pages")[0][0] == 0


def test_batches_and_manifest(loaded: Store, export_dir: Path) -> None:
    batches = loaded.query("SELECT batch_id, fetches, new_links, lost_links FROM batches "
                           "ORDER BY 1")
    per_day = loaded.query(
        "SELECT batch_id, count(*) FILTER (WHERE event = 'new'), "
        "count(*) FILTER (WHERE event = 'lost') FROM link_events GROUP BY 1 ORDER BY 1")
    assert [(b, n, lo) for b, _, n, lo in batches] == per_day
    assert [b for b, *_ in batches] == list(range(1, DAYS + 1))
    (kind, path, position, done), = loaded.query(
        "SELECT kind, path, position, done FROM manifests")
    assert (kind, path, position, done) == ("import", str(export_dir), DAYS, True)


def test_earlier_day_matches_the_world_truth(world: World, export_dir: Path,
                                             tmp_path: Path) -> None:
    with Store(tmp_path / "day2.duckdb") as store:
        summary = load_world_export(store, export_dir, through_day=2, workers=2)
        live = set(store.query(
            "SELECT source_key, target_key, kind, anchor, image_url FROM links WHERE live"))
        events = Counter(store.query("SELECT day, event, reason FROM link_events"))
    assert live == {t.identity for t in world.live_links(2)}
    assert events == Counter((e.date, e.event, e.reason) for e in world.events(2))
    assert summary.live_links == len(live) and summary.through_day == 2


def test_rank_runs_on_the_bulk_loaded_index(loaded: Store, world: World) -> None:
    from inlink.rank import run_rank

    ranked = run_rank(loaded, Settings.from_env(db=loaded.path, as_of=world.date_of(DAYS)))
    assert ranked.pages > 1000 and ranked.page_converged and ranked.domain_converged


def test_a_failed_load_leaves_the_index_empty(export_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("killed mid-load")

    with Store(tmp_path / "x.duckdb") as store:
        real = bulk._load

        def half(conn: Any, *args: Any, **kwargs: Any) -> Any:
            conn.execute("INSERT INTO fetches SELECT 1, 1, 'k', 'u', now()::TIMESTAMP, 200, "
                         "'indexable', true, 'import', NULL, NULL, NULL, NULL").fetchall()
            boom()
            return real(conn, *args, **kwargs)

        monkeypatch.setattr(bulk, "_load", half)
        with pytest.raises(RuntimeError):
            load_world_export(store, export_dir, workers=0)
        assert store.counts() == {"pages": 0, "fetches": 0, "links": 0, "link_events": 0,
                                  "batches": 0}
        assert not list(tmp_path.glob(".bulk-*"))
        monkeypatch.setattr(bulk, "_load", real)
        load_world_export(store, export_dir, workers=0)
        with pytest.raises(InlinkError, match="already holds an index"):
            load_world_export(store, export_dir, workers=0)


def test_not_an_export(tmp_path: Path) -> None:
    with Store(tmp_path / "x.duckdb") as store, pytest.raises(InlinkError, match="world export"):
        load_world_export(store, tmp_path)
