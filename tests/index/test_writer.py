"""Link history in the store: new, still, lost with each reason, back again; atomic batches."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import duckdb
import pytest

from inlink.errors import InlinkError
from inlink.extract import Extraction, Link, LinkKind, PageFacts
from inlink.index import writer as writer_module
from inlink.index.state import PageState, classify
from inlink.index.store import Store, StoreLocked
from inlink.index.writer import IndexWriter, ManifestUpdate, load_manifest
from inlink.sources.record import FetchRecord
from inlink.urls import normalize_url

PAGE = "http://www.source.example/article"


def day(n: int) -> dt.datetime:
    return dt.datetime(2026, 1, n, 12, 0, tzinfo=dt.UTC)


def link(target: str, anchor: str = "", kind: LinkKind = LinkKind.ANCHOR,
         nofollow: bool = False) -> Link:
    return Link(target_url=target, target_key=normalize_url(target), kind=kind, anchor=anchor,
                nofollow=nofollow, ugc=False, sponsored=False, alt=None, image_url=None,
                text_pre="", text_post="", location="article", links_count=1)


def page(url: str, links: list[Link], at: dt.datetime, *, status: int = 200,
         noindex: bool = False, canonical: str | None = None, ip: str = "127.5.0.9",
         title: str = "t", **kw: object) -> FetchRecord:
    facts = PageFacts(url=url, url_key=normalize_url(url), status=status,
                      content_type="text/html", is_html=True, title=title, language="en",
                      encoding="utf-8", size=100, internal_links=0, external_links=len(links),
                      noindex=noindex, nofollow=False, canonical=canonical, base_url=url,
                      truncated=False, links_dropped=0)
    return FetchRecord(url=url, url_key=normalize_url(url), fetched_at=at, status=status,
                       ip=ip, extraction=Extraction(facts, links), **kw)  # type: ignore[arg-type]


def failed(url: str, at: dt.datetime, status: int | None, **kw: object) -> FetchRecord:
    return FetchRecord(url=url, url_key=normalize_url(url), fetched_at=at, status=status,
                       **kw)  # type: ignore[arg-type]


def events(store: Store) -> list[tuple[object, ...]]:
    return store.query("SELECT day, event, reason, target_key FROM link_events "
                       "ORDER BY seen_at, event DESC, target_key")


def live_targets(store: Store, source: str = PAGE) -> set[str]:
    rows = store.query("SELECT target_key FROM links WHERE live AND source_key = ?",
                       [normalize_url(source)])
    return {r[0] for r in rows}


A, B, C = "https://a.example/", "https://b.example/x", "https://c.example/y"


def test_history_of_a_page_across_days(store: Store) -> None:
    w = IndexWriter(store)
    w.apply([page(PAGE, [link(A, "a"), link(B, "b"), link(C, "c")], day(1))])
    assert live_targets(store) == {A, B, C}

    # day 2: B removed, A turns nofollow (same identity: no event, attributes updated)
    stats = w.apply([page(PAGE, [link(A, "a", nofollow=True), link(C, "c")], day(2))])
    assert (stats.new_links, stats.lost_links) == (0, 1)
    assert store.query("SELECT nofollow, last_seen FROM links WHERE target_key = ?", [A]) == [
        (True, day(2).replace(tzinfo=None))]
    assert store.query("SELECT live, lost_reason, last_seen FROM links WHERE target_key = ?",
                       [B]) == [(False, "link_removed", day(1).replace(tzinfo=None))]

    # day 3: the page is gone
    w.apply([failed(PAGE, day(3), 404)])
    assert live_targets(store) == set()
    # day 4: back, with B again: B is new again, first_seen is kept from day 1
    w.apply([page(PAGE, [link(B, "b")], day(4))])
    assert live_targets(store) == {B}
    assert store.query("SELECT first_seen, live, lost_reason FROM links WHERE target_key = ?",
                       [B]) == [(day(1).replace(tzinfo=None), True, None)]

    d = dt.date
    assert events(store) == [
        (d(2026, 1, 1), "new", None, A), (d(2026, 1, 1), "new", None, B),
        (d(2026, 1, 1), "new", None, C),
        (d(2026, 1, 2), "lost", "link_removed", B),
        (d(2026, 1, 3), "lost", "page_not_found", A), (d(2026, 1, 3), "lost", "page_not_found", C),
        (d(2026, 1, 4), "new", None, B),
    ]


@pytest.mark.parametrize(
    ("record", "reason", "kept"),
    [
        (failed(PAGE, day(2), 410), "page_not_found", set()),
        (failed(PAGE, day(2), 503), "crawl_error", set()),
        (failed(PAGE, day(2), None, error="connection reset"), "crawl_error", set()),
        (failed(PAGE, day(2), 200, robots_disallowed=True), "page_dropped", set()),
        (failed(PAGE, day(2), 301, redirect_to="https://new.example/", redirect_final_status=200),
         "redirect", {"https://new.example/"}),
        (failed(PAGE, day(2), 302, redirect_to="https://new.example/", redirect_final_status=404),
         "broken_redirect", {"https://new.example/"}),
        (failed(PAGE, day(2), 301, redirect_to="https://new.example/", redirect_loop=True),
         "broken_redirect", {"https://new.example/"}),
        (failed(PAGE, day(2), 200, content_type="application/pdf"), "other", set()),
        (page(PAGE, [link(A, "a")], day(2), noindex=True), "noindex", set()),
        (page(PAGE, [link(A, "a"),
                     link("https://www.source.example/main", kind=LinkKind.CANONICAL)],
              day(2), canonical="https://www.source.example/main"),
         "not_canonical", {"https://www.source.example/main"}),
    ],
)
def test_each_lost_reason(store: Store, record: FetchRecord, reason: str, kept: set[str]) -> None:
    w = IndexWriter(store)
    w.apply([page(PAGE, [link(A, "a"), link(B, "b")], day(1))])
    w.apply([record])
    assert live_targets(store) == kept
    lost = store.query("SELECT target_key, reason FROM link_events WHERE event = 'lost'")
    assert sorted(lost) == [(A, reason), (B, reason)]


def test_self_canonical_is_indexable() -> None:
    rec = page(PAGE, [link(A)], day(1), canonical=PAGE + "#top")
    assert classify(rec).state is PageState.INDEXABLE


def test_older_capture_does_not_rewind_history(store: Store) -> None:
    w = IndexWriter(store)
    w.apply([page(PAGE, [link(A, "a")], day(3))])
    stats = w.apply([page(PAGE, [link(B, "b")], day(2))])
    assert stats.stale == 1
    assert live_targets(store) == {A}
    assert store.query("SELECT count(*) FROM fetches WHERE NOT applied") == [(1,)]


def test_same_page_twice_in_one_batch_is_applied_in_time_order(store: Store) -> None:
    w = IndexWriter(store)
    w.apply([page(PAGE, [link(B, "b")], day(2)), page(PAGE, [link(A, "a")], day(1))])
    assert live_targets(store) == {B}
    assert [(e[1], e[3]) for e in events(store)] == [("new", A), ("new", B), ("lost", A)]


def test_internal_links_are_marked(store: Store) -> None:
    IndexWriter(store).apply([page(PAGE, [link("http://blog.source.example/p"), link(A)], day(1))])
    rows = dict(store.query("SELECT target_key, internal FROM links"))
    assert rows == {"http://blog.source.example/p": True, A: False}


def test_manifest_commits_with_its_batch(store: Store) -> None:
    w = IndexWriter(store, job="ingest:x")
    w.apply([page(PAGE, [link(A)], day(1))],
            ManifestUpdate(job="ingest:x", kind="ingest", path="f.warc.gz", position=1234,
                           records_ok=1, records_bad=0))
    m = load_manifest(store, "ingest:x")
    assert m is not None and m["position"] == 1234 and m["records_ok"] == 1


def test_a_failed_batch_leaves_nothing_behind(store: Store,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    w = IndexWriter(store, job="j")
    w.apply([page(PAGE, [link(A)], day(1))])
    before = store.counts()
    real_insert = writer_module._insert

    def failing_insert(conn: object, table: str, *args: object) -> None:
        if table == "links":                # after the fetch and page rows
            raise RuntimeError("disk full")
        real_insert(conn, table, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(writer_module, "_insert", failing_insert)
    with pytest.raises(RuntimeError):
        w.apply([page("http://other.example/", [link(B)], day(2))],
                ManifestUpdate(job="j", kind="ingest", path="f", position=99, records_ok=2,
                               records_bad=0))
    assert store.counts() == before
    assert load_manifest(store, "j") is None


def test_second_writer_gets_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
         "time.sleep(30)", str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(StoreLocked) as info:
            Store(path)
        assert str(holder.pid) in str(info.value)
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_compact_keeps_rows_and_constraints(store: Store) -> None:
    w = IndexWriter(store)
    w.apply([page(f"http://s{i}.example/", [link(A), link(B), link(C)], day(1)) for i in range(20)])
    before = sorted(store.query("SELECT link_id, live FROM links"))
    store.compact()
    assert sorted(store.query("SELECT link_id, live FROM links")) == before
    with pytest.raises(Exception, match="NOT NULL"):
        store.write(lambda c: c.execute("INSERT INTO links (link_id) VALUES (1)"))


@pytest.mark.parametrize("per_pass", [7, 1_000_000])
def test_compact_sorts_in_ranges_as_in_one_sort(store: Store, per_pass: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A table past COMPACT_ROWS_PER_PASS is sorted a key range at a time: the same rows,
    stored in the same order as one sort gives."""
    from inlink.index import store as store_module

    monkeypatch.setattr(store_module, "COMPACT_ROWS_PER_PASS", per_pass)
    passes: list[int] = []
    real = store_module._key_ranges

    def ranges(*args: Any) -> list[tuple[str | None, str | None]]:
        got = real(*args)
        passes.append(len(got))
        return got

    monkeypatch.setattr(store_module, "_key_ranges", ranges)
    w = IndexWriter(store)
    targets = [f"http://t{i % 9}.example{i % 4}.org/p{i}" for i in range(40)]
    for d in (1, 2):
        w.apply([page(f"http://s{i}.example/", [link(t) for t in targets[i % 5::3 + d]],
                      day(d)) for i in range(30)])
    keys = {"links": "target_domain, target_host, target_key, source_key",
            "link_changes": "target_domain, day, target_key", "pages": "url_key"}
    before = {t: sorted(store.query(f"SELECT * FROM {t}")) for t in keys}
    assert store.query("SELECT count(*) FROM links")[0][0] > 3 * 7
    store.compact()
    for table, order in keys.items():
        assert sorted(store.query(f"SELECT * FROM {table}")) == before[table]
        stored = store.query(f"SELECT {order} FROM {table}")   # storage order
        assert stored == sorted(stored), table
    assert (min(passes[1:]) > 3) if per_pass == 7 else passes == [1, 1, 1]


def test_compact_keeps_indexes(store: Store) -> None:
    """The query layer's ART indexes survive the sorted copy and swap."""
    w = IndexWriter(store)
    w.apply([page(f"http://s{i}.example/", [link(A)], day(1)) for i in range(5)])
    store.write(lambda c: c.execute("CREATE INDEX pages_url_key ON pages (url_key)"))
    store.compact()
    assert store.query("SELECT index_name, table_name FROM duckdb_indexes()") == [
        ("pages_url_key", "pages")]
    w.apply([page("http://s1.example/", [link(B)], day(2))])
    assert store.query("SELECT count(*) FROM pages")[0][0] == 5


def test_link_rows_keep_the_source_title_they_were_last_seen_with(store: Store) -> None:
    w = IndexWriter(store)
    w.apply([page(PAGE, [link(A, "a"), link(B, "b")], day(1), title="First")])
    w.apply([page(PAGE, [link(A, "a")], day(2), title="Second")])   # B lost, A still there
    w.apply([page(PAGE, [link(A, "a", nofollow=True)], day(3), title="Third")])  # A changed
    assert dict(store.query("SELECT target_key, source_title FROM links")) == {
        A: "Third", B: "First"}
    w.apply([page(PAGE, [link(A, "a", nofollow=True)], day(4), title="")])
    assert store.query("SELECT source_title FROM links WHERE target_key = ?", [A]) == [("",)]


_URLS = ("coalesce(target_url, target_key) AS target_url, "
         "coalesce(source_url, source_key) AS source_url")


def _as_schema(store: Store, version: int, stray: bool = False) -> None:
    """Turn a store's file into the layout of an older schema, with the same rows: schema 2
    keeps every event in a link_events table and has no links.first_batch_id; schema 1 has
    no links.source_title either. `stray`: a column no schema ever had."""
    with store.transaction() as conn:
        conn.execute("CREATE TABLE events_old AS SELECT * FROM link_events")
        conn.execute("DROP VIEW link_events")
        conn.execute("DROP TABLE link_changes")
        conn.execute("ALTER TABLE events_old RENAME TO link_events")
        drop = "first_batch_id" + (", source_title" if version == 1 else "")
        # Schemas 1-3 stored every URL, under NOT NULL (schema 4 stores a URL equal to its
        # key as NULL).
        conn.execute(f"CREATE TABLE links_old AS SELECT * EXCLUDE ({drop}) REPLACE ("
                     f"{_URLS}){', 1 AS stray' if stray else ''} FROM links")
        conn.execute("DROP TABLE links")
        conn.execute("ALTER TABLE links_old RENAME TO links")
        for column in ("target_url", "source_url"):
            conn.execute(f"ALTER TABLE links ALTER COLUMN {column} SET NOT NULL")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version)])
        _blake2b_ids(conn)


def _blake2b(text: str) -> int:
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def _blake2b_ids(conn: duckdb.DuckDBPyConnection) -> None:
    """Link ids and attribute hashes as schemas 1 and 2 made them: BLAKE2b-64 of the texts
    index.state hashes (schema 3: XXH3-64), in links, the events and the pages' lists."""
    from inlink.index.bulk import attr_sql, ident_sql

    old = {int(i): (_blake2b(a), _blake2b(b)) for i, a, b in conn.execute(
        f"SELECT link_id, {ident_sql()}, {attr_sql()} FROM links").fetchall()}
    conn.execute("CREATE TEMP TABLE old_ids (id BIGINT, old BIGINT, old_hash BIGINT)")
    conn.executemany("INSERT INTO old_ids VALUES (?, ?, ?)",
                     [(i, a, b) for i, (a, b) in old.items()])
    conn.execute("UPDATE links SET link_id = o.old, attr_hash = o.old_hash FROM old_ids o "
                 "WHERE links.link_id = o.id")
    conn.execute("UPDATE link_events SET link_id = o.old FROM old_ids o "
                 "WHERE link_events.link_id = o.id")
    for key, ids in conn.execute("SELECT url_key, link_ids FROM pages").fetchall():
        conn.execute("UPDATE pages SET link_ids = ?, link_hashes = ? WHERE url_key = ?",
                     [[old[i][0] for i in ids], [old[i][1] for i in ids], key])
    conn.execute("DROP TABLE old_ids")


def test_a_schema_1_index_is_upgraded_on_its_first_write_open(tmp_path: Path) -> None:
    path = tmp_path / "v1.duckdb"
    with Store(path) as s:
        IndexWriter(s).apply([page(PAGE, [link(A, "a"), link(B, "b")], day(1), title="T1")])
        _as_schema(s, 1)
    with pytest.raises(InlinkError, match="open it once for writing"):
        Store(path, read_only=True)
    with Store(path) as s:
        assert s.query("SELECT value FROM meta WHERE key = 'schema_version'") == [("4",)]
        assert s.query("SELECT target_key, source_title FROM links ORDER BY 1") == [
            (A, "T1"), (B, "T1")]
        IndexWriter(s).apply([page(PAGE, [link(A, "a")], day(2), title="T2")])
        s.compact()
        assert dict(s.query("SELECT target_key, source_title FROM links")) == {
            A: "T2", B: "T1"}
    with Store(path, read_only=True) as s:
        assert s.query("SELECT count(*) FROM links")[0][0] == 2


def test_a_schema_2_index_keeps_its_events_when_upgraded(tmp_path: Path) -> None:
    """Schema 2 -> 3: BLAKE2b link ids and attribute hashes become XXH3 ones, the first 'new'
    of each link moves into its row (first_batch_id), the later changes into link_changes:
    the file then holds exactly what a schema-3 write of the same fetches holds."""
    path = tmp_path / "v2.duckdb"
    other = "http://www.other.example/page"
    with Store(path) as s:
        w = IndexWriter(s, job="j")
        w.apply([page(PAGE, [link(A, "a"), link(B, "b")], day(1)),
                 page(other, [link(A, "x")], day(1))])
        w.apply([page(PAGE, [link(B, "b")], day(2)), failed(other, day(2), 404)])
        w.apply([page(PAGE, [link(A, "a"), link(B, "b")], day(3)),
                 page(other, [link(A, "x"), link(C, "c")], day(3))])
        events = sorted(s.query("SELECT * FROM link_events"))
        firsts = sorted(s.query("SELECT link_id, first_batch_id FROM links"))
        changes = sorted(s.query("SELECT * FROM link_changes"))
        links = sorted(s.query(f"SELECT * REPLACE ({_URLS}) FROM links"))
        pages = sorted(s.query("SELECT * EXCLUDE (link_ids, link_hashes), "
                               "list_sort(link_ids), list_sort(link_hashes) FROM pages"))
        assert len(events) == 8 and len(changes) == 4     # 4 first, 2 lost, 2 back
        assert sorted(b for _, b in firsts) == [1, 1, 1, 3]
        _as_schema(s, 2)
        assert s.query("SELECT count(*) FROM links l JOIN link_events e USING (link_id)"
                       )[0][0] == 8                        # BLAKE2b ids throughout
        assert not set(s.query("SELECT link_id FROM links")) & {(i,) for i, _ in firsts}
    with Store(path) as s:
        assert s.query("SELECT value FROM meta WHERE key = 'schema_version'") == [("4",)]
        assert sorted(s.query("SELECT * FROM link_events")) == events
        assert sorted(s.query("SELECT link_id, first_batch_id FROM links")) == firsts
        assert sorted(s.query("SELECT * FROM link_changes")) == changes
        assert sorted(s.query(f"SELECT * REPLACE ({_URLS}) FROM links")) == links
        assert sorted(s.query("SELECT * EXCLUDE (link_ids, link_hashes), "
                              "list_sort(link_ids), list_sort(link_hashes) FROM pages")) == pages
        assert s.query("SELECT table_type FROM information_schema.tables "
                       "WHERE table_name = 'link_events'") == [("VIEW",)]
        s.compact()
        assert sorted(s.query("SELECT * FROM link_events")) == events


def test_packed_rows_use_the_state_ids_and_hashes() -> None:
    from inlink.index.rows import LINK_COLUMNS, OWN_COLUMNS, complete_links, to_packed
    from inlink.index.state import link_attr_hash, link_id

    links = [link(A, "a"), link(B, "", kind=LinkKind.IMAGE, nofollow=True),
             Link(target_url=C + "#x", target_key=normalize_url(C), kind=LinkKind.ALTERNATE,
                  anchor="", nofollow=False, ugc=True, sponsored=True, alt="alt \udc80",
                  image_url=None, text_pre="pre", text_post="post", location=None,
                  links_count=3, hreflang="de")]
    (packed,) = to_packed([page(PAGE, links, day(1))])
    key = normalize_url(PAGE)
    assert packed.link_ids == [link_id(key, x) for x in links]
    assert packed.link_hashes == [link_attr_hash(x) for x in links]
    assert tuple(packed.links.schema.names) == OWN_COLUMNS
    (other,) = to_packed([page("https://www.a.example/x", [link(A, "in")], day(1),
                               ip="127.5.0.10")])
    rows = complete_links([packed, other]).to_pylist()
    assert [r["link_id"] for r in rows] == packed.link_ids + other.link_ids
    assert [r["kind"] for r in rows] == ["anchor", "image", "alternate", "anchor"]
    assert rows[2]["hreflang"] == "de" and rows[2]["links_count"] == 3
    assert all(r["source_key"] == key and not r["internal"] for r in rows[:3])
    assert tuple(rows[0]) == LINK_COLUMNS
    assert rows[2]["alt"] == "alt \ufffd"
    # the source page's values repeat on its own links; host and domain come from the key
    assert (rows[3]["source_key"], rows[3]["source_host"], rows[3]["source_ip"],
            rows[3]["source_subnet"], rows[3]["source_title"]) == (
        normalize_url("https://www.a.example/x"), "www.a.example", "127.5.0.10",
        "127.5.0.0/24", "t")
    assert (rows[3]["target_host"], rows[3]["target_domain"], rows[3]["internal"]) == (
        "a.example", "a.example", True)


def _history_tables(store: Store) -> tuple[list[tuple[object, ...]], ...]:
    links = store.query(
        "SELECT link_id, target_url, source_key, kind, anchor, nofollow, text_pre, live, "
        "first_seen, last_seen, lost_at, lost_reason, attr_hash, source_ip, "
        "(SELECT fetched_at FROM fetches f WHERE f.fetch_id = l.first_fetch_id), "
        "(SELECT fetched_at FROM fetches f WHERE f.fetch_id = l.last_fetch_id) "
        "FROM links l ORDER BY link_id")
    evs = store.query("SELECT day, seen_at, link_id, event, reason, target_key, source_key, "
                      "internal FROM link_events ORDER BY seen_at, link_id, event")
    pages = store.query("SELECT url_key, first_crawl, last_crawl, state, "
                        "list_sort(link_ids), list_sort(link_hashes) FROM pages ORDER BY 1")
    return links, evs, pages


@pytest.mark.parametrize("split", [1, 2, 3, 100])
def test_batch_boundaries_do_not_change_history(tmp_path: Path, split: int) -> None:
    """The same fetches applied one per batch or several per batch (new pages, pages fetched
    twice in a batch, links lost and back, attribute changes) give the same rows."""
    other = "http://www.other.example/page"
    records = [
        page(PAGE, [link(A, "a"), link(B, "b")], day(1)),
        page(other, [link(A, "x")], day(1), ip="127.9.0.1"),
        page(PAGE, [link(A, "a", nofollow=True), link(C, "c")], day(2), ip="127.5.0.10"),
        failed(other, day(2), 404),
        page(PAGE, [link(B, "b")], day(3)),
        page(other, [link(A, "x"), link(B, "y")], day(3)),
        page(PAGE, [link(A, "a"), link(B, "b"), link(C, "c")], day(4)),
        page("http://third.example/", [link(C, "3")], day(4)),
        page("http://third.example/", [], day(5)),
    ]
    results = []
    for size in (1, split):
        with Store(tmp_path / f"s{size}-{split}.duckdb") as s:
            w = IndexWriter(s, job="j")
            for i in range(0, len(records), size):
                w.apply(records[i:i + size])
            results.append(_history_tables(s))
    assert results[0] == results[1]


def test_urls_equal_to_their_key_are_stored_as_null(store: Store) -> None:
    """Schema 4: a URL that is its key is NULL in the row; one that is not stays; the query
    layer's field gives the URL either way."""
    from inlink.query.sql import FIELDS

    odd = "https://A.example:443/x#frag"            # its key is https://a.example/x
    IndexWriter(store).apply([page("http://www.source.example:80/article",
                                   [link(A, "a"), link(odd, "b")], day(1))])
    rows = store.query(f"SELECT target_key, target_url, {FIELDS['target_url'].sql}, "
                       f"source_url, {FIELDS['source_url'].sql} FROM links l ORDER BY 1")
    assert rows == [
        (A, None, A, "http://www.source.example:80/article",
         "http://www.source.example:80/article"),
        ("https://a.example/x", odd, odd, "http://www.source.example:80/article",
         "http://www.source.example:80/article")]
    IndexWriter(store).apply([page(PAGE, [link(A, "a"), link(C, "c")], day(2))])
    assert store.query("SELECT target_key, source_url FROM links ORDER BY 1") == [
        (A, "http://www.source.example:80/article"),      # as last written
        ("https://a.example/x", "http://www.source.example:80/article"),
        (normalize_url(C), None)]


def test_a_schema_3_index_is_upgraded_in_place(tmp_path: Path) -> None:
    """Schema 3 -> 4 drops the URLs' NOT NULL: rows keep their URLs, new rows may be NULL."""
    path = tmp_path / "v3.duckdb"
    with Store(path) as s:
        IndexWriter(s).apply([page(PAGE, [link(A, "a"), link(B, "b")], day(1))])
        with s.transaction() as conn:     # schema 3 stored every URL, NOT NULL
            conn.execute("UPDATE links SET target_url = coalesce(target_url, target_key), "
                         "source_url = coalesce(source_url, source_key)")
        with s.transaction() as conn:
            for column in ("target_url", "source_url"):
                conn.execute(f"ALTER TABLE links ALTER COLUMN {column} SET NOT NULL")
            conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
        before = s.query("SELECT * FROM links ORDER BY link_id")
    with pytest.raises(InlinkError, match="open it once for writing"):
        Store(path, read_only=True)
    with Store(path) as s:
        assert s.query("SELECT value FROM meta WHERE key = 'schema_version'") == [("4",)]
        assert s.query("SELECT * FROM links ORDER BY link_id") == before
        IndexWriter(s).apply([page(PAGE, [link(A, "a"), link(C, "c")], day(2))])
        assert s.query("SELECT target_url FROM links WHERE target_key = ?",
                       [normalize_url(C)]) == [(None,)]


def test_a_failed_upgrade_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "odd.duckdb"
    with Store(path) as s:
        IndexWriter(s).apply([page(PAGE, [link(A, "a")], day(1))])
        _as_schema(s, 1, stray=True)   # a schema-1 file with a column schema 1 never had
    with pytest.raises(InlinkError, match="upgrading the index to schema 4 failed"):
        Store(path)
    con = duckdb.connect(str(path), read_only=True)   # the file as it was
    try:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() \
            == [("1",)]
        assert con.execute("SELECT count(*) FROM links").fetchall() == [(1,)]
    finally:
        con.close()


def test_history_runs_give_the_columns_row_by_row() -> None:
    """_History keeps a page's links as one run; its columns equal the row-by-row values."""
    import pyarrow as pa

    from inlink.index.rows import LINK_COLUMNS, LINK_SCHEMA

    t1, t2 = dt.datetime(2026, 1, 1, 12), dt.datetime(2026, 1, 2, 12)
    rows = list(range(9))
    links = pa.table({name: pa.array(rows if name in ("link_id", "attr_hash") else
                                     [None] * 9, LINK_SCHEMA.field(name).type)
                      for name in LINK_COLUMNS})
    hist = writer_module._History(5)
    hist.add_block(0, 3, t1, 7)
    hist.add([3, False, t1, t2, t2, "link_removed", 7, 8, False, 0, 0])
    hist.add([4, False, t1, t2, t2, "link_removed", 7, 8, False, 0, 0])
    hist.add([5, True, t2, t2, None, None, 8, 8, True, 0, 0])
    hist.add_block(6, 3, t2, 8)
    assert hist.in_order and hist.runs.lengths == [3, 2, 4]  # equal tuples join a run
    got = hist.table(links)
    assert got.column("link_id").to_pylist() == rows
    assert got.column("live").to_pylist() == [True] * 3 + [False] * 2 + [True] * 4
    assert got.column("first_seen").to_pylist() == [t1] * 5 + [t2] * 4
    assert got.column("last_seen").to_pylist() == [t1] * 3 + [t2] * 6
    assert got.column("lost_at").to_pylist() == [None] * 3 + [t2] * 2 + [None] * 4
    assert got.column("lost_reason").to_pylist() == [None] * 3 + ["link_removed"] * 2 \
        + [None] * 4
    assert got.column("first_fetch_id").to_pylist() == [7] * 5 + [8] * 4
    assert got.column("last_fetch_id").to_pylist() == [7] * 3 + [8] * 6
    assert got.column("first_batch_id").to_pylist() == [5] * 9

    # rows out of order are taken from the batch in the order given
    shuffled = writer_module._History(5)
    shuffled.add([4, True, t1, t1, None, None, 7, 7, True, 0, 0])
    shuffled.add_block(0, 2, t2, 8)
    assert not shuffled.in_order
    got = shuffled.table(links)
    assert got.column("link_id").to_pylist() == [4, 0, 1]
    assert got.column("first_seen").to_pylist() == [t1, t2, t2]

    # a run never joins values that are equal but of another type
    runs = writer_module._Runs()
    runs.add(2, 1)
    runs.add(1, True)
    runs.add(3, True)
    assert runs.lengths == [2, 4] and [type(v) for v in runs.values] == [int, bool]
    ints = writer_module._Runs()
    for n, v in ((2, 5), (1, 6), (1, 6)):
        ints.add(n, v)
    assert ints.lengths == [2, 2] and ints.column(pa.int64()).to_pylist() == [5, 5, 6, 6]
