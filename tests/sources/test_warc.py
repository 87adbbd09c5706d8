"""Reading WARC/WAT files: records, payload decoding, revisits, WAT links, damage and resync."""

from __future__ import annotations

import datetime as dt
import gzip
import random
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcgen import Page, gzip_member_starts, html, many_pages, wat_json, write_warc, write_wat

from inlink.errors import ArchiveError
from inlink.extract import LinkKind, extract
from inlink.sources.record import FetchRecord
from inlink.sources.warc import (
    Damage,
    ReadLimits,
    ReadStats,
    WarcItem,
    decode_payload,
    iter_records,
    to_fetch_record,
)

CONFORMANCE = Path("/work/shared/conformance/warc")
DAY = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def items(path: Path, **kw: object) -> list[WarcItem]:
    got = list(iter_records(path, **kw))  # type: ignore[arg-type]
    assert all(isinstance(x, WarcItem) for x in got), got
    return got  # type: ignore[return-value]


@pytest.mark.parametrize("gz", [True, False])
def test_responses_are_read_with_offsets_and_fields(tmp_path: Path, gz: bool) -> None:
    pages = [Page("http://a.example/x", html([("/y", "Y", "")]), ip="127.0.0.5"),
             Page("http://a.example/gone", b"nope", status=404, date=DAY + dt.timedelta(1)),
             Page("http://a.example/old", b"", status=301,
                  headers=[("Location", "../new?q=1")])]
    path = tmp_path / ("f.warc.gz" if gz else "f.warc")
    offsets = write_warc(path, pages, gz=gz, requests=True)
    stats = ReadStats()
    got = items(path, stats=stats)
    assert [i.offset for i in got] == offsets
    assert [(i.url, i.status, i.kind) for i in got] == [
        ("http://a.example/x", 200, "response"), ("http://a.example/gone", 404, "response"),
        ("http://a.example/old", 301, "response")]
    assert got[0].body == pages[0].body and got[0].ip == "127.0.0.5"
    assert got[1].fetched_at == DAY + dt.timedelta(1)
    assert got[0].digest and got[0].digest.startswith("sha1:")
    assert stats.skipped == 4  # warcinfo + 3 requests

    redirect = to_fetch_record(got[2], str(path))
    assert isinstance(redirect, FetchRecord)
    assert redirect.redirect_to == "http://a.example/new?q=1"
    assert redirect.redirect_final_status is None and redirect.extraction is None
    page = to_fetch_record(got[0], str(path))
    assert isinstance(page, FetchRecord) and page.extraction is not None
    assert page.extraction == extract(pages[0].body, pages[0].url, got[0].headers)
    assert page.evidence is not None and page.evidence.offset == offsets[0]
    assert page.source == "warc" and page.ip == "127.0.0.5"


def test_payload_encodings_are_undone_when_the_bytes_are_encoded() -> None:
    body = html([("http://b.example/", "b", "")])
    gz_headers = [("content-encoding", "gzip")]
    assert decode_payload(gzip.compress(body), gz_headers, 1 << 20) == (body, False)
    # ClueWeb: header says gzip, body stored decoded -> kept as is
    assert decode_payload(body, gz_headers, 1 << 20) == (body, False)
    deflated = zlib.compress(body)
    assert decode_payload(deflated, [("content-encoding", "deflate")], 1 << 20)[0] == body
    chunked = b"5\r\nhello\r\n6; ext=1\r\n world\r\n0\r\n\r\n"
    assert decode_payload(chunked, [("transfer-encoding", "chunked")], 100) == (
        b"hello world", False)
    assert decode_payload(b"plain", [("transfer-encoding", "chunked")], 100) == (b"plain", False)
    assert decode_payload(b"x" * 50, [], 10) == (b"x" * 10, True)
    assert decode_payload(gzip.compress(b"y" * 5000), gz_headers, 100) == (b"y" * 100, True)


def test_gzip_content_encoded_payload_in_a_record(tmp_path: Path) -> None:
    body = html([("http://b.example/", "bee", "")])
    page = Page("http://a.example/", gzip.compress(body),
                headers=[("Content-Type", "text/html"), ("Content-Encoding", "gzip")])
    write_warc(tmp_path / "f.warc.gz", [page])
    (item,) = items(tmp_path / "f.warc.gz")
    assert item.body == body
    rec = to_fetch_record(item, "f")
    assert isinstance(rec, FetchRecord) and rec.extraction is not None
    assert [(lk.target_key, lk.anchor) for lk in rec.extraction.links] == [
        ("http://b.example/", "bee")]


def test_payload_cap(tmp_path: Path) -> None:
    write_warc(tmp_path / "f.warc", [Page("http://a.example/", b"z" * 5000)], gz=False)
    (item,) = items(tmp_path / "f.warc", limits=ReadLimits(max_payload=1000))
    assert item.truncated and len(item.body) == 1000


def test_revisit_resolves_to_the_earlier_payload(tmp_path: Path) -> None:
    first = Page("http://a.example/p", html([("http://t.example/", "t", "")]))
    path = tmp_path / "f.warc.gz"
    later = DAY + dt.timedelta(days=3)
    offsets = write_warc(path, [first, ("revisit", ("http://a.example/p", later, 0))])
    stats = ReadStats()
    got = items(path, stats=stats)
    assert [g.kind for g in got] == ["response", "revisit"]
    assert got[1].original == offsets[0] and got[1].body == first.body
    assert got[1].status == 200 and got[1].fetched_at == later
    rec = to_fetch_record(got[1], str(path))
    assert isinstance(rec, FetchRecord) and rec.extraction is not None
    assert rec.fetched_at == later and [lk.target_key for lk in rec.extraction.links] == [
        "http://t.example/"]
    # From a resume point after the original: unresolved unless its digest is known.
    stats = ReadStats()
    assert items(path, start_offset=offsets[1], stats=stats) == []
    assert stats.revisits_unresolved == 1
    known = {got[0].digest or "": offsets[0]}
    again = items(path, start_offset=offsets[1], known_digests=known)
    assert again[0].body == first.body


def test_invalid_warc_date_falls_back_to_http_date(tmp_path: Path) -> None:
    pages = [Page("http://a.example/1", b"x", warc_date="2008-10-294T05:21:46-0700",
                  headers=[("Content-Type", "text/html"),
                           ("Date", "Wed, 28 Jan 2009 17:05:56 GMT")]),
             Page("http://a.example/2", b"x", warc_date="garbage")]
    write_warc(tmp_path / "f.warc.gz", pages)
    got = list(iter_records(tmp_path / "f.warc.gz"))
    assert isinstance(got[0], WarcItem)
    assert got[0].fetched_at == dt.datetime(2009, 1, 28, 17, 5, 56, tzinfo=dt.UTC)
    assert isinstance(got[1], Damage) and "WARC-Date" in got[1].cause


def test_not_a_warc_file(tmp_path: Path) -> None:
    for name, data in [("a.txt", b"hello\n" * 10), ("b.gz", gzip.compress(b"not warc")),
                       ("c.warc", b"")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ArchiveError) as err:
            list(iter_records(tmp_path / name))
        assert name in str(err.value)
    with pytest.raises(ArchiveError, match="cannot read"):
        list(iter_records(tmp_path / "missing.warc"))


# ---------------------------------------------------------------- damage and resync

def _five(tmp_path: Path, gz: bool) -> tuple[bytes, list[int]]:
    pages = [Page(f"http://a.example/p{i}", html([(f"/l{i}", f"a{i}", "")]) * 20)
             for i in range(5)]
    path = tmp_path / "src"
    offsets = write_warc(path, pages, gz=gz)
    return path.read_bytes(), offsets


def _damage_cases(data: bytes, o: list[int]) -> dict[str, bytes]:
    mid = (o[2] + o[3]) // 2
    return {
        "truncated_at_end": data[:o[4] + (len(data) - o[4]) // 2],
        "garbage_between": data[:o[2]] + b"\x00garbage\x00" * 7 + data[o[2]:],
        "clipped_body": data[:mid] + data[o[3]:],
        "overwritten_header": data[:o[2] + 60] + b"\xff" * 40 + data[o[2] + 100:],
        "junk_at_end": data + b"trailing junk",
    }


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("case", ["truncated_at_end", "garbage_between", "clipped_body",
                                  "overwritten_header", "junk_at_end"])
def test_damage_is_counted_skipped_and_reading_resumes(tmp_path: Path, gz: bool,
                                                       case: str) -> None:
    data, offsets = _five(tmp_path, gz)
    bad = tmp_path / "bad"
    bad.write_bytes(_damage_cases(data, offsets)[case])
    got = list(iter_records(bad))
    damage = [g for g in got if isinstance(g, Damage)]
    urls = [g.url for g in got if isinstance(g, WarcItem)]
    assert len(damage) == 1, got
    lost = {"truncated_at_end": {"p4"}, "garbage_between": set(), "clipped_body": {"p2"},
            "overwritten_header": {"p2"}, "junk_at_end": set()}[case]
    assert urls == [f"http://a.example/p{i}" for i in range(5) if f"p{i}" not in lost]
    offs = [g.offset for g in got]
    assert offs == sorted(offs)


def test_bad_http_header_block(tmp_path: Path) -> None:
    data, o = _five(tmp_path, False)
    bad = tmp_path / "bad.warc"
    bad.write_bytes(data[:o[1]] + data[o[1]:o[2]].replace(b"HTTP/1.1 200 OK", b"XXXX/9 ????? ")
                    + data[o[2]:])
    got = list(iter_records(bad))
    assert [type(g).__name__ for g in got] == ["WarcItem", "Damage", "WarcItem", "WarcItem",
                                               "WarcItem"]
    assert got[1].offset == o[1]


def test_resume_from_an_offset_reads_the_same_tail(tmp_path: Path) -> None:
    path = tmp_path / "f.warc.gz"
    offsets = write_warc(path, many_pages(30))
    full = list(iter_records(path))
    assert list(iter_records(path, start_offset=offsets[17])) == full[17:]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.data())
def test_random_corruption_never_raises(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "f.warc.gz"
    if not path.exists():
        write_warc(path, many_pages(12, links_per_page=3))
    raw = bytearray(path.read_bytes())
    members = gzip_member_starts(bytes(raw))
    hits = data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=4))
    for at in hits:
        raw[at] ^= 0xFF
    bad = tmp_path / "bad.warc.gz"
    bad.write_bytes(bytes(raw))
    try:
        got = list(iter_records(bad))
    except ArchiveError:
        assert hits and min(hits) < members[1]  # the first member decides "is it a WARC"
        return
    touched = {max(m for m in members if m <= at) for at in hits}
    good = [g for g in got if isinstance(g, WarcItem)]
    # every record whose gzip member is untouched is recovered (first one is warcinfo)
    assert len(good) >= 12 - len(touched)


# ---------------------------------------------------------------- WAT

def test_wat_links_become_an_extraction(tmp_path: Path) -> None:
    url = "http://src.example/dir/page"
    doc = wat_json(url, DAY, links=[
        {"path": "A@/href", "url": "a", "text": "  Alpha  link "},
        {"path": "A@/href", "url": "http://x.example/", "text": "paid",
         "rel": "sponsored nofollow"},
        {"path": "IMG@/src", "url": "i.png", "alt": "logo"},
        {"path": "A@/href", "url": "http://img.example/"},
        {"path": "A@/href", "url": "a", "text": "Alpha link"},
        {"path": "IMG@/src", "url": "/lonely.png"},
        {"path": "SCRIPT@/src", "url": "/s.js"},
        {"path": "AREA@/href", "url": "map", "alt": "map"},
        {"path": "A@/href", "url": "javascript:void(0)", "text": "js"},
    ], head={"Title": "The title", "Base": "http://src.example/base/",
             "Link": [{"path": "LINK@/href", "rel": "canonical", "url": "/canon"},
                      {"path": "LINK@/href", "rel": "stylesheet", "url": "/s.css"},
                      {"path": "LINK@/href", "rel": "alternate", "url": "/de",
                       "hreflang": "de"}],
             "Metas": [{"http-equiv": "refresh", "content": "5; url=next"},
                       {"name": "robots", "content": "index"}]})
    path = tmp_path / "f.wat.gz"
    offsets = write_wat(path, [(url, doc),
                               (url, wat_json(url, DAY, warc_type="request")),
                               ("http://y.example/", b"{not json")])
    got = list(iter_records(path))
    assert [g.offset for g in got] == offsets
    rec = to_fetch_record(got[0], str(path))  # type: ignore[arg-type]
    assert isinstance(rec, FetchRecord) and rec.extraction is not None
    assert rec.source == "wat" and rec.status == 200 and rec.ip == "127.9.9.9"
    assert rec.evidence is not None and rec.evidence.digest == "sha1:ABC"
    facts = rec.extraction.facts
    assert (facts.title, facts.canonical, facts.is_html) == (
        "The title", "http://src.example/canon", True)
    links = {(lk.kind, lk.target_key, lk.anchor): lk for lk in rec.extraction.links}
    base = "http://src.example/base/"
    assert set(links) == {
        (LinkKind.ANCHOR, base + "a", "Alpha link"),
        (LinkKind.ANCHOR, "http://x.example/", "paid"),
        (LinkKind.IMAGE, "http://img.example/", ""),
        (LinkKind.ANCHOR, base + "map", "map"),
        (LinkKind.CANONICAL, "http://src.example/canon", ""),
        (LinkKind.ALTERNATE, "http://src.example/de", ""),
        (LinkKind.META, base + "next", ""),
    }
    assert links[(LinkKind.ANCHOR, base + "a", "Alpha link")].links_count == 2
    paid = links[(LinkKind.ANCHOR, "http://x.example/", "paid")]
    assert paid.nofollow and paid.sponsored and not paid.ugc
    img = links[(LinkKind.IMAGE, "http://img.example/", "")]
    assert (img.image_url, img.alt) == (base + "i.png", "logo")
    assert all(lk.text_pre == "" and lk.location is None for lk in rec.extraction.links)
    assert facts.internal_links == 3 and facts.external_links == 2
    assert to_fetch_record(got[1], str(path)) is None  # type: ignore[arg-type]
    broken = to_fetch_record(got[2], str(path))  # type: ignore[arg-type]
    assert isinstance(broken, Damage) and broken.offset == offsets[2]


def test_wat_redirect_status_and_robots(tmp_path: Path) -> None:
    moved = wat_json("http://a.example/", DAY, status=301, html_meta=False,
                     headers={"Location": "/b"})
    gone = wat_json("http://a.example/g", DAY, status=404, html_meta=False)
    noindex = wat_json("http://a.example/n", DAY, links=[
        {"path": "A@/href", "url": "/x", "text": "x"}],
        head={"Metas": [{"name": "robots", "content": "noindex, nofollow"}]})
    path = tmp_path / "f.wat"
    write_wat(path, [("u", moved), ("u", gone), ("u", noindex)], gz=False)
    recs = [to_fetch_record(g, "f") for g in iter_records(path)]  # type: ignore[arg-type]
    assert isinstance(recs[0], FetchRecord) and recs[0].redirect_to == "http://a.example/b"
    assert isinstance(recs[1], FetchRecord) and recs[1].status == 404
    assert isinstance(recs[2], FetchRecord) and recs[2].extraction is not None
    assert recs[2].extraction.facts.noindex and recs[2].extraction.links[0].nofollow


# ---------------------------------------------------------------- conformance samples

def test_clueweb_warc_018_with_lf_headers_and_bad_dates() -> None:
    path = CONFORMANCE / "clueweb-quirk.warc.gz"
    if not path.exists():
        pytest.skip("conformance sample not present")
    stats = ReadStats()
    got = list(iter_records(path, stats=stats))
    assert not [g for g in got if isinstance(g, Damage)]
    assert len(got) == 29 and stats.types.get("warcinfo") == 1
    first = got[0]
    assert isinstance(first, WarcItem)
    assert first.fetched_at == dt.datetime(2009, 1, 28, 17, 5, 56, tzinfo=dt.UTC)
    assert first.body.startswith(b"<html>")  # stored decoded despite Content-Encoding: gzip
    rec = to_fetch_record(first, str(path))
    assert isinstance(rec, FetchRecord) and rec.extraction is not None
    assert rec.extraction.facts.encoding == "euc-jp" and len(rec.extraction.links) > 50


def test_clipped_sample_is_one_damaged_record() -> None:
    path = CONFORMANCE / "clipped.warc.gz"
    if not path.exists():
        pytest.skip("conformance sample not present")
    got = list(iter_records(path))
    assert len(got) == 1 and isinstance(got[0], Damage) and got[0].offset == 0
    assert "clipped" in got[0].cause


def test_many_random_pages_round_trip(tmp_path: Path) -> None:
    rng = random.Random(3)
    pages = many_pages(40, seed=rng.randrange(1000))
    path = tmp_path / "f.warc"
    write_warc(path, pages, gz=False)
    got = items(path)
    assert [g.body for g in got] == [p.body for p in pages]
