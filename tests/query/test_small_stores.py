"""Edge cases on hand-made stores: target rules, rows added between pages, indirect links,
countries, image anchors, .edu/.gov, an index without ranks."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from inlink.errors import InvalidInput, InvalidUrl
from inlink.extract import Extraction, Link, LinkKind, PageFacts
from inlink.index.store import Store
from inlink.index.writer import IndexWriter
from inlink.query.aggregates import list_anchors, metrics, summarize
from inlink.query.backlinks import find_backlinks
from inlink.query.history import history_counts, history_cumulative
from inlink.query.models import (
    ALL_KINDS,
    BacklinkQuery,
    HistoryQuery,
    Mode,
    Order,
    resolve_target,
)
from inlink.sources.record import FetchRecord
from inlink.urls import normalize_url

SECRET = b"s"


def at(n: int) -> dt.datetime:
    return dt.datetime(2026, 1, n, 12, 0, tzinfo=dt.UTC)


def link(target: str, anchor: str = "a", kind: LinkKind = LinkKind.ANCHOR,
         nofollow: bool = False, alt: str | None = None, image: str | None = None) -> Link:
    return Link(target_url=target, target_key=normalize_url(target), kind=kind, anchor=anchor,
                nofollow=nofollow, ugc=False, sponsored=False, alt=alt, image_url=image,
                text_pre="", text_post="", location="article", links_count=1)


def page(url: str, links: list[Link], when: dt.datetime, *, ip: str = "127.5.0.9",
         country: str | None = None, canonical: str | None = None) -> FetchRecord:
    facts = PageFacts(url=url, url_key=normalize_url(url), status=200,
                      content_type="text/html", is_html=True, title="T " + url, language="en",
                      encoding="utf-8", size=100, internal_links=0, external_links=len(links),
                      noindex=False, nofollow=False, canonical=canonical, base_url=url,
                      truncated=False, links_dropped=0)
    return FetchRecord(url=url, url_key=normalize_url(url), fetched_at=when, status=200, ip=ip,
                       country=country, extraction=Extraction(facts, links))


def redirect(url: str, to: str, when: dt.datetime) -> FetchRecord:
    return FetchRecord(url=url, url_key=normalize_url(url), fetched_at=when, status=301,
                       ip="127.9.9.9", redirect_to=to, redirect_final_status=200)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "small.duckdb")
    yield s
    s.close()


# -- targets -------------------------------------------------------------------------------

def test_target_rules() -> None:
    t = resolve_target("https://Blog.Example.co.uk/a/../b?x=1#f", "domain")
    assert (t.mode, t.value, t.domain) == (Mode.DOMAIN, "example.co.uk", "example.co.uk")
    t = resolve_target("https://blog.example.co.uk/b", "host")
    assert (t.value, t.host) == ("blog.example.co.uk", "blog.example.co.uk")
    t = resolve_target("www.Example.com/x", "url")
    assert t.key == "http://www.example.com/x" and t.given == "www.Example.com/x"
    assert resolve_target("example.com").mode is Mode.HOST  # seed 001 default mode
    assert resolve_target("example.com", "host").value == "example.com"  # no www. added
    assert resolve_target("127.0.0.1", "domain").value == "127.0.0.1"
    for bad, mode in (("", "domain"), ("   ", "host"), ("localhost", "domain"),
                      ("co.uk", "domain"), ("example.com", "subdomain")):
        with pytest.raises(InvalidInput):
            resolve_target(bad, mode)
    for bad in ("ftp://example.com/", "http://exa mple.com/", "http://[::1", "http://a..b/"):
        with pytest.raises((InvalidInput, InvalidUrl)):
            resolve_target(bad, "url")


# -- a store built by hand ---------------------------------------------------------------------

T = "https://www.target.example/"


def build(store: Store) -> IndexWriter:
    w = IndexWriter(store)
    w.apply([
        page("http://a.example/", [link(T, "Target"), link(T + "p", "img", LinkKind.IMAGE)],
             at(1), ip="10.0.0.1", country="US"),
        page("http://b.edu/x", [link(T, "Target", nofollow=True)], at(1), ip="10.0.0.2",
             country="DE"),
        page("http://c.gov.uk/", [link(T + "p", "", LinkKind.IMAGE, alt="Logo",
                                       image="http://c.gov.uk/l.png")], at(1), ip="10.0.1.3"),
        page("https://www.target.example/int", [link(T, "home")], at(1), ip="10.0.2.1"),
        # an old URL of the target's site now redirects to it; d.example links to the old URL
        redirect("http://old.example/", T, at(1)),
        page("http://d.example/", [link("http://old.example/", "old")], at(1), ip="10.0.3.1"),
    ])
    return w


def test_small_summary(store: Store) -> None:
    build(store)
    t = resolve_target(T, "domain")
    s = summarize(store, [t])[0]
    # the redirect old.example -> target is a backlink too (seed 001 link_type redirect)
    assert (s.backlinks, s.refdomains, s.ips, s.subnets) == (5, 4, 4, 3)
    assert s.redirect_backlinks == 1
    assert (s.edu_backlinks, s.gov_backlinks, s.edu_refdomains, s.gov_refdomains) == (1, 1, 1, 1)
    assert (s.nofollow_backlinks, s.text_backlinks, s.image_backlinks) == (1, 2, 2)
    assert (s.from_home_page_backlinks, s.from_home_page_refdomains) == (4, 3)
    assert [(c.value, c.backlinks) for c in s.top_countries] == [("US", 2), ("DE", 1)]
    assert [(c.value, c.backlinks) for c in s.top_tlds] == [("example", 3), ("edu", 1),
                                                            ("uk", 1)]
    # an image link without text counts under its alt text (seed 001 anchor)
    assert {a.value for a in list_anchors(store, t)} == {"Target", "img", "Logo", ""}
    assert (s.inlink_rank, s.domain_inlink_rank) == (0, 0)  # no rank run yet
    m = metrics(store, [t, resolve_target(T, "url")])
    assert [x.backlinks for x in m] == [5, 3]


def test_indirect_links_through_a_redirect(store: Store) -> None:
    build(store)
    t = resolve_target(T, "url")
    direct = find_backlinks(store, BacklinkQuery(t))
    assert {r.source_key for r in direct.rows} == {"http://a.example/", "http://b.edu/x",
                                                   "http://old.example/"}
    both = find_backlinks(store, BacklinkQuery(t, include_indirect=True))
    indirect = [r for r in both.rows if r.indirect_path]
    assert len(both.rows) == 4 and len(indirect) == 1
    r = indirect[0]
    assert r.source_key == "http://d.example/" and r.target_key == T
    assert [(h.kind, h.url, h.status) for h in r.indirect_path] == [
        ("redirect", "http://old.example/", 301)]
    # the redirect itself is a backlink of kind redirect from old.example
    redirects = find_backlinks(store, BacklinkQuery(t, kinds=frozenset({"redirect"})))
    assert [x.source_key for x in redirects.rows] == ["http://old.example/"]


def test_rows_added_between_pages_neither_repeat_nor_skip(store: Store) -> None:
    w = IndexWriter(store)
    w.apply([page(f"http://s{i}.example/", [link(T, f"x{i}")], at(1), ip=f"10.1.0.{i}")
             for i in range(30)])
    t = resolve_target(T, "host")
    for order in ((Order("first_seen"),), (Order("source_domain", False),),
                  (Order("link_id", False),)):
        q = BacklinkQuery(t, order=order, limit=7)
        first = find_backlinks(store, q, secret=SECRET)
        seen = [r.source_key for r in first.rows]
        # new links arrive (before and after the cursor in any order) while paging
        w.apply([page(f"http://n{order[0].field}{i}.example/", [link(T, "new")], at(2))
                 for i in range(10)])
        cursor = first.next_cursor
        while cursor:
            p = find_backlinks(store, dataclasses.replace(q, cursor=cursor), secret=SECRET)
            seen += [r.source_key for r in p.rows]
            cursor = p.next_cursor
        assert len(seen) == len(set(seen))
        assert {f"http://s{i}.example/" for i in range(30)} <= set(seen)


def test_history_on_a_small_store(store: Store) -> None:
    w = build(store)
    # day 2: a.example drops its text link; day 3: it comes back
    w.apply([page("http://a.example/", [link(T + "p", "img", LinkKind.IMAGE)], at(2),
                  ip="10.0.0.1")])
    w.apply([page("http://a.example/", [link(T, "Target"), link(T + "p", "img",
                                                                 LinkKind.IMAGE)], at(3),
                  ip="10.0.0.1")])
    t = resolve_target(T, "url")
    q = HistoryQuery(t, at(1).date(), at(3).date())
    assert [(c.new, c.lost) for c in history_counts(store, q)] == [(3, 0), (0, 1), (1, 0)]
    assert [c.backlinks for c in history_cumulative(store, t, at(1).date(), at(3).date())] == [
        3, 2, 3]
    with pytest.raises(InvalidInput):
        history_counts(store, dataclasses.replace(q, date_from=at(4).date()))


def test_all_kinds_include_canonical(store: Store) -> None:
    IndexWriter(store).apply([page("http://e.example/", [link(T, "", LinkKind.CANONICAL)], at(1),
                                   canonical=T)])
    t = resolve_target(T, "url")
    assert find_backlinks(store, BacklinkQuery(t)).total == 0
    rows = find_backlinks(store, BacklinkQuery(t, kinds=ALL_KINDS)).rows
    assert [r.kind for r in rows] == ["canonical"]
    with pytest.raises(InvalidInput):
        find_backlinks(store, BacklinkQuery(t, kinds=frozenset({"bogus"})))
