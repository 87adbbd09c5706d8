"""Export round trip: Parquet truth files and the WARC equal the in-memory truth."""

from __future__ import annotations

import collections
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator

from inlink.world import World, read_resolve_file
from inlink.world.export import export_world
from inlink.world.render import renderer


@pytest.fixture(scope="module")
def exported(small: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    export_world(small, out, warc_day=2, batch_size=5000)
    return out


def test_files_exist_and_pages_cover_every_day(small: World, exported: Path) -> None:
    for name in ("hosts.parquet", "pages.parquet", "links.parquet", "events.parquet",
                 "seeds.txt", "resolve.txt", "day-2.warc.gz"):
        assert (exported / name).exists(), name
    pages = pq.read_table(exported / "pages.parquet")
    assert pages.num_rows == small.n_pages * small.days
    rows = pages.filter(pages["day"].to_numpy() == 3).to_pylist()
    for row in rows[::17]:
        truth = small.page_truth(row["url"], 3)
        assert row["outcome"] == truth.outcome and row["lost_reason"] == truth.lost_reason
        assert row["status"] == truth.status
    assert (exported / "seeds.txt").read_text().split() == small.seeds()
    resolve = read_resolve_file(exported / "resolve.txt")
    assert resolve == {small.hosts.key[h]: (small.ip_of_host(h), None)
                       for h in range(small.n_hosts)}


def test_links_intervals_equal_live_truth(small: World, exported: Path) -> None:
    links = pq.read_table(exported / "links.parquet").to_pylist()
    for day in range(1, small.days + 1):
        from_file = {(r["source_key"], r["target_key"], r["kind"], r["anchor"], r["image_url"])
                     for r in links
                     if r["first_day"] is not None and r["first_day"] <= day <= r["last_day"]}
        truth = {t.identity for t in small.live_links(day)}
        assert from_file == truth, day
    by_id = {r["link_id"]: r for r in links}
    for t in list(small.live_links(1))[::23]:
        row = by_id[t.link_id]
        for field in ("target_url", "anchor", "nofollow", "ugc", "sponsored", "alt",
                      "image_url", "text_pre", "text_post", "location", "links_count",
                      "hreflang", "origin"):
            assert row[field] == getattr(t, field), (field, row, t)


def test_events_equal_truth(small: World, exported: Path) -> None:
    rows = pq.read_table(exported / "events.parquet").to_pylist()
    want = collections.Counter(
        (e.date, e.link_id, e.source_key, e.target_key, e.kind, e.anchor, e.image_url,
         e.event, e.reason) for e in small.events())
    got = collections.Counter(
        (r["date"], r["link_id"], r["source_key"], r["target_key"], r["kind"], r["anchor"],
         r["image_url"], r["event"], r["reason"]) for r in rows)
    assert got == want


def test_warc_holds_the_served_bytes(small: World, exported: Path) -> None:
    r = renderer(small)
    n = 0
    with open(exported / "day-2.warc.gz", "rb") as f:
        for rec in ArchiveIterator(f):
            if rec.rec_type != "response":
                continue
            url = rec.rec_headers.get_header("WARC-Target-URI")
            page = small.page_of_url(url)
            assert page is not None
            assert rec.rec_headers.get_header("WARC-Date").startswith(
                small.date_of(2).isoformat())
            h = int(small.page_host[page])
            assert rec.rec_headers.get_header("WARC-IP-Address") == small.ip_of_host(h)
            want = r.render(page, 2)
            assert rec.http_headers.get_statuscode() == str(want.status)
            assert rec.content_stream().read() == want.body
            n += 1
    assert n > small.n_pages // 2
