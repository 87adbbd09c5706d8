"""A small synthetic web crawled over three days (as `inlink demo` does) and its ground truth,
computed independently from the world generator for the query tests to compare with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from inlink import urls
from inlink.index.crawljob import CrawlOptions, crawl
from inlink.index.store import Store
from inlink.query.models import BACKLINK_KINDS, Mode, Target
from inlink.rank import run_rank
from inlink.settings import Settings
from inlink.world import World, serve_in_thread

DAYS = 3


@dataclass(frozen=True)
class TL:
    """A truth link with the derived facts the index keeps (domain, IP, internal, ...)."""

    source_key: str
    source_host: str
    source_domain: str
    ip: str
    subnet: str | None
    target_key: str
    target_host: str
    target_domain: str
    kind: str
    anchor: str
    anchor_text: str
    image_url: str | None
    nofollow: bool
    internal: bool

    @property
    def identity(self) -> tuple[str, str, str, str, str | None]:
        return (self.source_key, self.target_key, self.kind, self.anchor, self.image_url)


class Truth:
    """Ground truth of the world, in query-layer terms."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._live: dict[int, list[TL]] = {}
        self._events = list(world.events(DAYS))
        self._tl_cache: dict[tuple[str, str, str, str, str | None], TL] = {}
        for d in range(1, DAYS + 1):
            self._live[d] = [self._tl(t.source_key, t.target_key, t.kind.value, t.anchor,
                                      t.image_url, t.alt, t.nofollow)
                             for t in world.live_links(d)]

    def _tl(self, skey: str, tkey: str, kind: str, anchor: str, image_url: str | None,
            alt: str | None, nofollow: bool) -> TL:
        ident = (skey, tkey, kind, anchor, image_url)
        if ident in self._tl_cache:
            return self._tl_cache[ident]
        shost, thost = urls.key_host(skey), urls.key_host(tkey)
        sdom, tdom = urls.registrable_domain(shost), urls.registrable_domain(thost)
        h = self.world.host_index(shost)
        assert h is not None
        ip = self.world.ip_of_host(h)
        text = (alt or "") if kind == "image" and anchor == "" else anchor
        tl = TL(skey, shost, sdom, ip, urls.subnet24(ip), tkey, thost, tdom, kind, anchor,
                text, image_url, nofollow, sdom == tdom)
        self._tl_cache[ident] = tl
        return tl

    @staticmethod
    def in_scope(t: Target, tl: TL) -> bool:
        if t.mode is Mode.DOMAIN:
            return tl.target_domain == t.domain
        if t.mode is Mode.HOST:
            return tl.target_host == t.host
        return tl.target_key == t.key

    def backlinks(self, t: Target, day: int = DAYS, kinds: frozenset[str] = BACKLINK_KINDS,
                  internal: bool = False) -> list[TL]:
        return [tl for tl in self._live[day] if self.in_scope(t, tl) and tl.kind in kinds
                and (internal or not tl.internal)]

    def events(self, t: Target, kinds: frozenset[str] = BACKLINK_KINDS
               ) -> list[tuple[object, str, str | None, TL]]:
        """(date, event, reason, link) of the target's backlinks, all days."""
        out = []
        for e in self._events:
            tl = self._tl_cache.get((e.source_key, e.target_key, e.kind, e.anchor, e.image_url))
            if tl is None:  # a link never live on a crawled day end: build it from keys
                tl = self._tl(e.source_key, e.target_key, e.kind, e.anchor, e.image_url,
                              None, False)
            if self.in_scope(t, tl) and tl.kind in kinds and not tl.internal:
                out.append((e.date, e.event, e.reason, tl))
        return out


@dataclass
class Indexed:
    world: World
    store: Store
    truth: Truth
    path: Path


@pytest.fixture(scope="session")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Indexed]:
    world = World(seed=7, hosts=100, days=DAYS)
    db = tmp_path_factory.mktemp("query") / "world.duckdb"
    with serve_in_thread(world, 1, slow_delay=0.3, trickle_max=1.0,
                         idle_timeout=3.0) as served, Store(db) as store:
        for day in range(1, DAYS + 1):
            served.set_day(day)
            options = CrawlOptions(resolve=served.resolve, dns=False, delay=0.01, scope="any",
                                   timeout=3.0, read_timeout=2.0, extract_mode="thread",
                                   country=False)
            crawl(store, world.seeds(), options, Settings(db=db, as_of=world.date_of(day)))
        run_rank(store, Settings(db=db, as_of=world.date_of(DAYS)))
        store.compact()
        yield Indexed(world, store, Truth(world), db)
