"""Hand-made webs for the rank tests: pages with links, written through the IndexWriter."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from inlink.extract import Extraction, Link, LinkKind, PageFacts
from inlink.index.store import Store
from inlink.index.writer import IndexWriter
from inlink.sources.record import FetchRecord
from inlink.urls import normalize_url


def day(n: int) -> dt.datetime:
    return dt.datetime(2026, 3, n, 12, 0, tzinfo=dt.UTC)


def link(target: str, anchor: str = "a link", *, kind: LinkKind = LinkKind.ANCHOR,
         nofollow: bool = False, ugc: bool = False, sponsored: bool = False,
         location: str = "article") -> Link:
    return Link(target_url=target, target_key=normalize_url(target), kind=kind, anchor=anchor,
                nofollow=nofollow, ugc=ugc, sponsored=sponsored, alt=None, image_url=None,
                text_pre="", text_post="", location=location, links_count=1)


def page(url: str, links: list[Link], at: dt.datetime, *, ip: str = "198.51.100.7",
         size: int = 20_000, internal: int = 0) -> FetchRecord:
    facts = PageFacts(url=url, url_key=normalize_url(url), status=200,
                      content_type="text/html", is_html=True, title="t", language="en",
                      encoding="utf-8", size=size, internal_links=internal,
                      external_links=len(links), noindex=False, nofollow=False,
                      canonical=None, base_url=url, truncated=False, links_dropped=0)
    return FetchRecord(url=url, url_key=normalize_url(url), fetched_at=at, status=200,
                       ip=ip, extraction=Extraction(facts, links))


def redirect(url: str, to: str, at: dt.datetime) -> FetchRecord:
    return FetchRecord(url=url, url_key=normalize_url(url), fetched_at=at, status=301,
                       redirect_to=to, redirect_final_status=200, ip="198.51.100.8")


@dataclass
class Web:
    """Collects records and writes them as one batch per `commit`."""

    store: Store
    records: list[FetchRecord] = field(default_factory=list)

    def add(self, *records: FetchRecord) -> Web:
        self.records.extend(records)
        return self

    def commit(self) -> None:
        IndexWriter(self.store).apply(self.records)
        self.records = []


HUB = "https://hub.example/"
A = "https://a.example/"
BX = "https://b.example/x"
B = "https://b.example/"
C = "https://c.example/"
OLD = "https://old.example/page"
NEW = "https://new.example/page"


def small_web(web: Web, at: dt.datetime) -> None:
    """hub -> a, b/x, c, old; a -> b/x, a -nofollow-> c; b/x -> b (internal);
    old 301 -> new; c and new are never fetched."""
    web.add(
        page(HUB, [link(A), link(BX), link(BX, "again"), link(C), link(OLD)], at),
        page(A, [link(BX), link(C, nofollow=True), link(A + "#top")], at),
        page(BX, [link(B)], at),
        page(B, [], at),
        redirect(OLD, NEW, at),
    ).commit()


#: The edges that pass rank in small_web (what the decisions in docs/rank.md say).
SMALL_WEB_EDGES = [(HUB, A), (HUB, BX), (HUB, C), (HUB, OLD), (A, BX), (BX, B), (OLD, NEW)]
SMALL_WEB_NODES = [HUB, A, BX, B, C, OLD, NEW]
