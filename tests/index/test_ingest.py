"""`ingest()`: WARC/WAT files into the store; resume, no-op re-ingest, damage, new/lost events."""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sources"))

from warcgen import Page, html, many_pages, wat_json, write_warc, write_wat  # noqa: E402

from inlink.errors import InvalidInput
from inlink.extract import extract  # noqa: E402
from inlink.index import ingest as ingest_module  # noqa: E402
from inlink.index.ingest import IngestProgress, ingest  # noqa: E402
from inlink.index.state import classify, link_id  # noqa: E402
from inlink.index.store import Store  # noqa: E402
from inlink.index.writer import load_manifest  # noqa: E402
from inlink.sources.record import FetchRecord  # noqa: E402
from inlink.urls import normalize_url  # noqa: E402

DAY1 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
DAY2 = dt.datetime(2026, 1, 2, 12, 0, tzinfo=dt.UTC)
SRC = "http://src.example/article"


def interrupt(p: IngestProgress) -> None:
    """A progress callback that stops the ingest as ^C would."""
    raise KeyboardInterrupt


def live_links(store: Store) -> set[tuple[object, ...]]:
    return set(store.query(
        "SELECT source_key, target_key, kind, anchor, nofollow FROM links WHERE live"))


def content_hash(store: Store) -> str:
    """Sorted rows of pages/links/link_events without batch ids, fetch ids and wall clocks."""
    h = hashlib.sha256()
    queries = [
        "SELECT * EXCLUDE (fetch_id) FROM pages ORDER BY url_key",
        "SELECT * EXCLUDE (first_fetch_id, last_fetch_id, first_batch_id) FROM links "
        "ORDER BY link_id",
        "SELECT * EXCLUDE (batch_id) FROM link_events ORDER BY link_id, seen_at, event",
        "SELECT url_key, fetched_at, status, state, applied, source, evidence_offset "
        "FROM fetches ORDER BY url_key, fetched_at, evidence_offset",
    ]
    for sql in queries:
        for row in store.query(sql):
            h.update(repr(row).encode())
    return h.hexdigest()


@pytest.mark.parametrize("gz", [True, False])
def test_ingest_matches_extract_on_the_same_bytes(tmp_path: Path, store: Store,
                                                  gz: bool) -> None:
    pages = many_pages(25)
    path = tmp_path / ("a.warc.gz" if gz else "a.warc")
    write_warc(path, pages, gz=gz, requests=True)
    summary = ingest(store, [path], batch_size=7, workers=0)
    assert summary.errors == [] and summary.records_bad == 0
    assert summary.pages == 25 and summary.files[0].status == "ingested"
    assert summary.files[0].skipped == 26  # warcinfo + requests

    expected = set()
    for page in pages:
        ex = extract(page.body, page.url, page.headers)
        record = FetchRecord(url=page.url, url_key=ex.facts.url_key, fetched_at=page.date,
                             status=200, extraction=ex)
        for link in classify(record).live_links:
            expected.add((ex.facts.url_key, link.target_key, link.kind.value, link.anchor,
                          link.nofollow))
    assert live_links(store) == expected
    assert summary.links_new == len(expected)
    rows = store.query("SELECT count(*), min(source), min(evidence_path) FROM fetches")
    assert rows == [(25, "warc", str(path.resolve()))]
    manifest = load_manifest(store, summary.files[0].job or "")
    assert manifest is not None and manifest["done"] and manifest["position"] == path.stat().st_size
    assert manifest["records_ok"] == 25 and manifest["records_bad"] == 0


def test_hand_checked_links_redirects_and_ip(tmp_path: Path, store: Store) -> None:
    pages = [
        Page(SRC, html([("http://t.example/a", "Alpha", ""),
                        ("/local", "home", ""),
                        ("http://t.example/b", "Beta", "nofollow sponsored")]),
             ip="127.4.5.6"),
        Page("http://src.example/moved", b"", status=301,
             headers=[("Location", "http://t.example/new")]),
    ]
    path = tmp_path / "a.warc.gz"
    write_warc(path, pages)
    ingest(store, [path], workers=0)
    assert live_links(store) == {
        (SRC, "http://t.example/a", "anchor", "Alpha", False),
        (SRC, "http://src.example/local", "anchor", "home", False),
        (SRC, "http://t.example/b", "anchor", "Beta", True),
        ("http://src.example/moved", "http://t.example/new", "redirect", "", False),
    }
    assert store.query("SELECT source_ip, source_subnet, internal FROM links "
                       "WHERE target_key = 'http://t.example/a'") == [
        ("127.4.5.6", "127.4.5.0/24", False)]
    assert store.query("SELECT state FROM pages ORDER BY url_key") == [("indexable",),
                                                                       ("redirect",)]


def test_reingest_is_a_noop_and_duplicates_are_marked(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "a.warc.gz"
    write_warc(path, many_pages(10))
    copy = tmp_path / "copy.warc.gz"
    copy.write_bytes(path.read_bytes())
    first = ingest(store, [path, copy], workers=0)
    assert [f.status for f in first.files] == ["ingested", "duplicate"]
    # the first file's sha256 was computed alongside its first batch (no job had its size),
    # the copy's before anything else (one had): both name the same job
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert [f.job for f in first.files] == [f"ingest:{sha}"] * 2
    manifest = load_manifest(store, f"ingest:{sha}")
    assert manifest is not None and manifest["digest"] == sha and manifest["done"]
    before = (store.counts(), content_hash(store))
    again = ingest(store, [copy], workers=0)
    assert again.files[0].status == "already_done" and again.pages == 0
    assert (store.counts(), content_hash(store)) == before


def test_a_non_warc_file_is_reported_and_others_still_ingested(tmp_path: Path,
                                                               store: Store) -> None:
    good = tmp_path / "good.warc.gz"
    write_warc(good, many_pages(5))
    bad = tmp_path / "notes.txt"
    bad.write_text("not an archive\n")
    summary = ingest(store, [bad, tmp_path / "missing.warc", good], workers=0)
    assert [f.status for f in summary.files] == ["error", "error", "ingested"]
    assert "notes.txt" in (summary.files[0].error or "")
    assert "not a WARC" in (summary.files[0].error or "")
    assert "missing.warc" in (summary.files[1].error or "")
    assert summary.pages == 5


def test_damaged_records_are_counted_and_the_rest_ingested(tmp_path: Path,
                                                           store: Store) -> None:
    pages = many_pages(8)
    path = tmp_path / "a.warc.gz"
    offsets = write_warc(path, pages)
    data = path.read_bytes()
    # garbage inside record 3's member, junk between 5 and 6, record 7 truncated
    broken = (data[:offsets[3] + 40] + b"\x00" * 30 + data[offsets[3] + 70:offsets[6]]
              + b"JUNK" * 10 + data[offsets[6]:offsets[7] + 50])
    bad = tmp_path / "bad.warc.gz"
    bad.write_bytes(broken)
    summary = ingest(store, [bad], workers=0, batch_size=3)
    result = summary.files[0]
    assert result.records_bad == 3 and result.pages == 6
    assert [d.offset for d in result.damage][0] == offsets[3]
    got = {r[0] for r in store.query("SELECT url FROM pages")}
    assert got == {pages[i].url for i in (0, 1, 2, 4, 5, 6)}
    manifest = load_manifest(store, result.job or "")
    assert manifest is not None and manifest["records_bad"] == 3 and manifest["done"]


def test_two_days_of_captures_give_new_and_lost_events(tmp_path: Path, store: Store) -> None:
    a, b, c = "http://t.example/a", "http://t.example/b", "http://t.example/c"
    day1 = [Page(SRC, html([(a, "a", ""), (b, "b", "")]), date=DAY1),
            Page("http://src.example/gone", html([(c, "c", "")]), date=DAY1),
            Page("http://src.example/moves", html([(c, "c2", "")]), date=DAY1)]
    day2 = [Page(SRC, html([(a, "a", ""), (c, "new c", "")]), date=DAY2),
            Page("http://src.example/gone", b"not here", status=404, date=DAY2),
            Page("http://src.example/moves", b"", status=301, date=DAY2,
                 headers=[("Location", "/elsewhere")])]
    write_warc(tmp_path / "d1.warc.gz", day1)
    write_warc(tmp_path / "d2.warc", day2, gz=False)
    summary = ingest(store, [tmp_path / "d1.warc.gz", tmp_path / "d2.warc"], workers=0)
    assert summary.links_lost == 3
    events = store.query("SELECT day, event, reason, source_key, target_key FROM link_events "
                         "WHERE day = DATE '2026-01-02' ORDER BY event, source_key, target_key")
    d2 = dt.date(2026, 1, 2)
    assert events == [
        (d2, "lost", "link_removed", SRC, b),
        (d2, "lost", "page_not_found", "http://src.example/gone", c),
        (d2, "lost", "redirect", "http://src.example/moves", c),
        (d2, "new", None, SRC, c),
        (d2, "new", None, "http://src.example/moves", "http://src.example/elsewhere"),
    ]


def test_revisit_records_index_the_earlier_payload(tmp_path: Path, store: Store) -> None:
    page = Page(SRC, html([("http://t.example/a", "a", "")]), date=DAY1)
    path = tmp_path / "a.warc.gz"
    write_warc(path, [page, ("revisit", (SRC, DAY2, 0))])
    summary = ingest(store, [path], workers=0)
    assert summary.pages == 2 and summary.links_new == 1 and summary.links_lost == 0
    assert store.query("SELECT last_seen FROM links") == [(DAY2.replace(tzinfo=None),)]


def test_wat_ingest(tmp_path: Path, store: Store) -> None:
    doc = wat_json(SRC, DAY1, links=[{"path": "A@/href", "url": "http://t.example/", "text": "T"},
                                     {"path": "A@/href", "url": "/in", "text": "in",
                                      "rel": "nofollow"}])
    path = tmp_path / "a.wat.gz"
    write_wat(path, [(SRC, doc), (SRC, wat_json(SRC, DAY1, warc_type="request"))])
    summary = ingest(store, [path], workers=0)
    assert summary.pages == 1
    assert live_links(store) == {(SRC, "http://t.example/", "anchor", "T", False),
                                 (SRC, "http://src.example/in", "anchor", "in", True)}
    assert store.query("SELECT source FROM fetches") == [("wat",)]


def test_interrupted_ingest_resumes_where_it_committed(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "a.warc.gz"
    write_warc(path, many_pages(40))
    seen: list[IngestProgress] = []

    def stop_after_two(p: IngestProgress) -> None:
        seen.append(p)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest(store, [path], workers=0, batch_size=6, progress=stop_after_two)
    manifest = load_manifest(store, f"ingest:{hashlib.sha256(path.read_bytes()).hexdigest()}")
    assert manifest is not None and not manifest["done"]
    # two batches: 3 pages (the first batch is half size), then 6
    assert manifest["position"] == seen[1].position and manifest["records_ok"] == 9
    assert store.counts()["fetches"] == 9
    resumed = ingest(store, [path], workers=0, batch_size=6)
    assert resumed.files[0].status == "resumed" and resumed.pages == 31

    clean = Store(tmp_path / "clean.duckdb")
    try:
        ingest(clean, [path], workers=0, batch_size=100)
        assert content_hash(clean) == content_hash(store)
    finally:
        clean.close()


def test_gc_threshold_is_relaxed_while_ingesting_and_restored(tmp_path: Path,
                                                              store: Store) -> None:
    import gc

    from inlink.index.gcpolicy import GEN0_THRESHOLD

    original = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        path = tmp_path / "a.warc.gz"
        write_warc(path, many_pages(12))
        before = gc.get_threshold()
        during: list[tuple[int, ...]] = []
        ingest(store, [path], workers=0, batch_size=4,
               progress=lambda p: during.append(gc.get_threshold()))
        assert during and {t[0] for t in during} == {GEN0_THRESHOLD}
        assert gc.get_threshold() == before

        other = tmp_path / "b.warc.gz"
        write_warc(other, many_pages(8))
        with pytest.raises(KeyboardInterrupt):
            ingest(store, [other], workers=0, batch_size=4, progress=interrupt)
        assert gc.get_threshold() == before
    finally:
        gc.set_threshold(*original)


def test_malloc_thresholds_are_raised_while_ingesting_and_lowered_after(
        tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """glibc's trim threshold is raised for the ingest only (a server runs ingests as jobs),
    also when the ingest stops on an error; nested ingests lower it once, at the last end."""
    calls: list[object] = []
    monkeypatch.setattr(ingest_module, "tune_malloc",
                        lambda trim=ingest_module._TRIM_THRESHOLD: calls.append(trim) or True)
    monkeypatch.setattr(ingest_module, "trim_malloc", lambda: calls.append("trim") or True)
    path = tmp_path / "a.warc.gz"
    write_warc(path, many_pages(8))
    during: list[list[object]] = []
    ingest(store, [path], workers=0, batch_size=4, progress=lambda p: during.append(calls[:]))
    assert during and all(c == [ingest_module._TRIM_THRESHOLD] for c in during)
    assert calls == [ingest_module._TRIM_THRESHOLD, ingest_module._DEFAULT_TRIM_THRESHOLD,
                     "trim"]
    calls.clear()
    with ingest_module.malloc_tuned():
        other = tmp_path / "b.warc.gz"
        write_warc(other, many_pages(6))
        with pytest.raises(KeyboardInterrupt):
            ingest(store, [other], workers=0, batch_size=4, progress=interrupt)
        assert calls == [ingest_module._TRIM_THRESHOLD]      # still held by the outer one
    assert calls == [ingest_module._TRIM_THRESHOLD, ingest_module._DEFAULT_TRIM_THRESHOLD,
                     "trim"]
    calls.clear()
    ingest(store, [path], workers=0, malloc_tuning=False)
    assert calls == []


def test_row_group_merging_is_paused_while_ingesting(tmp_path: Path, store: Store,
                                                    vacuum_tasks: Callable[[], int],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches and the compaction are written with DuckDB's merging off, and the ingest
    checkpoints before it ends: nothing is left in the WAL for a later checkpoint to merge."""
    tasks = vacuum_tasks
    before = tasks()
    assert before > 0
    during: list[int] = []
    real = store._compact

    def spy() -> None:
        during.append(tasks())
        real()

    monkeypatch.setattr(store, "_compact", spy)
    path = tmp_path / "a.warc.gz"
    write_warc(path, many_pages(12))
    summary = ingest(store, [path], workers=0, batch_size=4, compact=False,
                     progress=lambda p: during.append(tasks()))
    # batches of 2 (the first is half size), 4, 4 and 2 pages
    assert not summary.compacted and len(during) == 4 and set(during) == {0}
    assert tasks() == before
    wal = store.path.with_name(store.path.name + ".wal")
    assert not wal.exists() or wal.stat().st_size == 0
    write_warc(path := tmp_path / "c.warc.gz", many_pages(4, seed=3))
    during.clear()
    assert ingest(store, [path], workers=0, compact=True,
                  progress=lambda p: during.append(tasks())).compacted
    assert during == [0, 0]              # its one batch, then the compaction
    assert tasks() == before

    other = tmp_path / "b.warc.gz"
    write_warc(other, many_pages(8, seed=5))
    with pytest.raises(KeyboardInterrupt):
        ingest(store, [other], workers=0, batch_size=4, progress=interrupt)
    assert tasks() == before


def test_worker_processes_give_the_same_index(tmp_path: Path) -> None:
    path = tmp_path / "a.warc.gz"
    write_warc(path, many_pages(60))
    hashes = []
    for workers in (0, 2):
        with Store(tmp_path / f"w{workers}.duckdb") as s:
            summary = ingest(s, [path], workers=workers, batch_size=16)
            assert summary.pages == 60
            hashes.append(content_hash(s))
    assert hashes[0] == hashes[1]


def test_compaction_rule(tmp_path: Path, store: Store,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.warc.gz"
    write_warc(path, many_pages(10))
    monkeypatch.setattr(ingest_module, "COMPACT_MIN_ROWS", 50)
    assert ingest(store, [path], workers=0).compacted
    other = tmp_path / "b.warc.gz"
    write_warc(other, many_pages(1, seed=99))
    assert not ingest(store, [other], workers=0).compacted  # grew by far less than 25%


def test_the_compaction_runs_under_its_own_memory_cap(tmp_path: Path, store: Store,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    during: list[str] = []
    real = store._compact

    def spy() -> None:
        during.append(str(store.query("SELECT current_setting('memory_limit')")[0][0]))
        real()

    monkeypatch.setattr(store, "_compact", spy)
    path = tmp_path / "a.warc.gz"
    write_warc(path, many_pages(3))
    assert ingest(store, [path], workers=0, compact=True, compact_memory_limit="300MB").compacted
    assert ingest(store, [path], workers=0, compact=True).compacted
    assert ingest(store, [path], workers=0, compact=True, compact_memory_limit=None).compacted
    # DuckDB reports its limits in its own units: 300MB -> 286.1 MiB, 512MB -> 488.2 MiB
    assert during[:2] == ["286.1 MiB", "488.2 MiB"]
    assert during[2] == str(store.query("SELECT current_setting('memory_limit')")[0][0])
    from inlink.settings import Settings
    assert Settings.from_env({}).compact_memory_limit == ingest_module.COMPACT_MEMORY_LIMIT
    assert Settings.from_env({"INLINK_COMPACT_MEMORY_LIMIT": "2GB"}).compact_memory_limit == "2GB"
    assert Settings.from_env({"INLINK_COMPACT_MEMORY_LIMIT": "none"}).compact_memory_limit is None
    with pytest.raises(InvalidInput, match="INLINK_COMPACT_MEMORY_LIMIT"):
        Settings.from_env({"INLINK_COMPACT_MEMORY_LIMIT": "lots"})


def test_link_ids_are_the_writers(tmp_path: Path, store: Store) -> None:
    page = Page(SRC, html([("http://t.example/a", "a", "")]))
    write_warc(tmp_path / "a.warc", [page], gz=False)
    ingest(store, [tmp_path / "a.warc"], workers=0)
    ex = extract(page.body, page.url, page.headers)
    assert store.query("SELECT link_id FROM links") == [(link_id(normalize_url(SRC),
                                                                 ex.links[0]),)]


def test_memory_is_released_before_the_compaction(tmp_path: Path, store: Store,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The compaction's sort gets the batches' freed memory back first (glibc's heap and
    Arrow's allocator)."""
    path = tmp_path / "a.warc.gz"
    write_warc(path, many_pages(6))
    calls: list[str] = []
    real = ingest_module.release_memory
    monkeypatch.setattr(ingest_module, "release_memory", lambda: calls.append("release"))
    compact = Store.compact

    def spy(self: Store, *args: object, **kw: object) -> object:
        calls.append("compact")
        return compact(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "compact", spy)
    ingest(store, [path], workers=0, compact=True)
    assert calls == ["release", "compact"]
    real()                              # and the real one runs (glibc or not)
