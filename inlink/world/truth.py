"""Ground truth of the synthetic web: page outcomes, extractable links, live links, events.

Implements the index truth rule of docs/world.md over the arrays of `model.World`;
the store implements the same rule independently and tests compare the two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from inlink.extract import Link, LinkKind
from inlink.world import names
from inlink.world.build import HREFLANGS
from inlink.world.model import (
    FRAGMENT,
    KIND_NAMES,
    SESSION_AMP,
    SESSION_Q,
    SLOT_LOCATION,
    HostBroken,
    HostRobots,
    Kind,
    PageKind,
    State,
    Style,
    World,
)

I8 = npt.NDArray[np.int8]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


class Outcome:
    """What one day's crawl makes of a page; decides which of its links are live."""

    INDEXABLE = 0
    NOINDEX = 1
    NOT_CANONICAL = 2
    REDIRECT = 3
    BROKEN_REDIRECT = 4
    NOT_FOUND = 5
    CRAWL_ERROR = 6
    DROPPED = 7
    OTHER = 8


# Lost reason per outcome (None: the page is indexable, so a missing link is link_removed).
REASONS: tuple[str | None, ...] = (
    None, "noindex", "not_canonical", "redirect", "broken_redirect", "page_not_found",
    "crawl_error", "page_dropped", "other",
)
LOST_REASONS = ("page_not_found", "crawl_error", "page_dropped", "redirect", "not_canonical",
                "noindex", "link_removed", "broken_redirect", "other")
ORIGINS = ("html", "link_header", "location")
MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class TruthLink:
    """One distinct link of a source page, with the fields of `extract.Link`."""

    source_url: str
    source_key: str
    target_url: str
    target_key: str
    kind: LinkKind
    anchor: str
    nofollow: bool
    ugc: bool
    sponsored: bool
    alt: str | None
    image_url: str | None
    text_pre: str
    text_post: str
    location: str | None
    links_count: int
    hreflang: str | None
    origin: str          # "html", "link_header" (HTTP Link) or "location" (HTTP 3xx)
    link_id: int         # row in the world's link universe (stable across days)

    def to_link(self) -> Link:
        return Link(
            target_url=self.target_url, target_key=self.target_key, kind=self.kind,
            anchor=self.anchor, nofollow=self.nofollow, ugc=self.ugc, sponsored=self.sponsored,
            alt=self.alt, image_url=self.image_url, text_pre=self.text_pre,
            text_post=self.text_post, location=self.location, links_count=self.links_count,
            hreflang=self.hreflang,
        )

    @property
    def identity(self) -> tuple[str, str, str, str, str | None]:
        return (self.source_key, self.target_key, self.kind.value, self.anchor, self.image_url)


class Event(NamedTuple):
    date: dt.date
    source_key: str
    target_key: str
    kind: str
    anchor: str
    image_url: str | None
    event: str            # "new" | "lost"
    reason: str | None
    link_id: int


class Derived(NamedTuple):
    """Links that follow from a page's state: canonical, redirect, meta refresh."""

    src: npt.NDArray[np.int32]
    dst: npt.NDArray[np.int32]
    kind: I8
    cond: I8              # 0 self canonical, 1 canonical to other, 2 redirect, 3 meta refresh
    origin: I8            # index into ORIGINS


class Truth:
    """Truth queries over a `World` (cached per world as `world_truth(w)`)."""

    def __init__(self, world: World) -> None:
        self.w = world

    # --- page outcomes ----------------------------------------------------------------
    def outcome(self, day: int) -> I8:
        """Outcome code of every page on `day` (see `Outcome`)."""
        w = self.w
        st = w.state[:, day]
        hs = w.hosts
        ph = w.page_host
        out = np.zeros(w.n_pages, dtype=np.int8)
        out[np.isin(st, (State.NOINDEX_META, State.NOINDEX_HEADER))] = Outcome.NOINDEX
        out[np.isin(st, (State.CANON_OTHER, State.CANON_OTHER_HEADER))] = Outcome.NOT_CANONICAL
        out[np.isin(st, (State.TEXT_PLAIN, State.PDF))] = Outcome.OTHER
        dropped = w.disallow[:, day] | (hs.robots[ph] == HostRobots.UNAVAILABLE)
        error = np.isin(st, (State.ERR_500, State.ERR_503, State.RESET, State.TRUNCATED)) | (
            hs.broken[ph] != HostBroken.NONE)
        gone = np.isin(st, (State.NOT_FOUND, State.GONE))
        is_redirect = np.isin(st, State.REDIRECTS)
        blocked = dropped | error | gone
        red = np.flatnonzero(is_redirect)
        cur = w.aux[red].astype(np.int64)
        for _ in range(MAX_REDIRECTS - 1):
            follow = is_redirect[cur] & ~blocked[cur]
            cur[follow] = w.aux[cur[follow]]
        ok_end = ~is_redirect[cur] & ~blocked[cur]
        out[red] = np.where(ok_end, Outcome.REDIRECT, Outcome.BROKEN_REDIRECT)
        # Precedence (strongest last): robots > fetch error > 404/410 > 3xx > the rest.
        out[gone] = Outcome.NOT_FOUND
        out[error] = Outcome.CRAWL_ERROR
        out[dropped] = Outcome.DROPPED
        return out

    # --- the link universe: stored rows, then derived rows -------------------------------
    @cached_property
    def derived(self) -> Derived:
        w = self.w
        st = w.state[:, 1:]
        kind = w.page_kind
        full = (kind == PageKind.HOME) | (kind == PageKind.NORMAL) | (kind == PageKind.PRIVATE)
        parts: list[tuple[I64, I64, int, int, I64]] = []
        self_c = np.flatnonzero(full & ((w.page_flags & 3) != 0))
        parts.append((self_c, self_c, Kind.CANONICAL, 0,
                      np.where(w.page_flags[self_c] & 1, 0, 1).astype(np.int64)))
        canon_h = np.flatnonzero((st == State.CANON_OTHER_HEADER).any(axis=1))
        canon_x = np.flatnonzero((st == State.CANON_OTHER).any(axis=1))
        parts.append((canon_x, w.aux[canon_x].astype(np.int64), Kind.CANONICAL, 1,
                      np.zeros(len(canon_x), dtype=np.int64)))
        parts.append((canon_h, w.aux[canon_h].astype(np.int64), Kind.CANONICAL, 1,
                      np.ones(len(canon_h), dtype=np.int64)))
        red = np.flatnonzero(np.isin(st, State.REDIRECTS).any(axis=1))
        parts.append((red, w.aux[red].astype(np.int64), Kind.REDIRECT, 2,
                      np.full(len(red), 2, dtype=np.int64)))
        meta = np.flatnonzero((st == State.META_REFRESH).any(axis=1))
        parts.append((meta, w.aux[meta].astype(np.int64), Kind.META, 3,
                      np.zeros(len(meta), dtype=np.int64)))
        return Derived(
            src=np.concatenate([p[0] for p in parts]).astype(np.int32),
            dst=np.concatenate([p[1] for p in parts]).astype(np.int32),
            kind=np.concatenate([np.full(len(p[0]), p[2], dtype=np.int8) for p in parts]),
            cond=np.concatenate([np.full(len(p[0]), p[3], dtype=np.int8) for p in parts]),
            origin=np.concatenate([p[4] for p in parts]).astype(np.int8),
        )

    @cached_property
    def _derived_by_src(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i, s in enumerate(self.derived.src.tolist()):
            out.setdefault(s, []).append(i)
        return out

    @property
    def n_universe(self) -> int:
        return self.w.n_links + len(self.derived.src)

    def universe_src(self) -> npt.NDArray[np.int32]:
        return np.concatenate([self.w.l_src, self.derived.src])

    def universe_dst(self) -> npt.NDArray[np.int32]:
        return np.concatenate([self.w.l_dst, self.derived.dst])

    def stored_present(self, day: int) -> B:
        """Stored rows (anchor, image, alternate) written in their page's HTML on `day`."""
        w = self.w
        d = np.int8(day)
        return ((w.l_birth <= d) & (d < w.l_death)) | ((w.l_reborn > 0) & (w.l_reborn <= d))

    def derived_present(self, day: int) -> B:
        w, dv = self.w, self.derived
        st = w.state[dv.src, day]
        return np.select(
            [dv.cond == 0, dv.cond == 1, dv.cond == 2],
            [np.isin(st, (State.OK, State.NOINDEX_META, State.NOINDEX_HEADER)),
             np.isin(st, (State.CANON_OTHER, State.CANON_OTHER_HEADER)),
             np.isin(st, State.REDIRECTS)],
            st == State.META_REFRESH,
        )

    def live(self, day: int) -> B:
        """Mask over the link universe: links the index holds as live after `day`'s crawl."""
        if day == 0:
            return np.zeros(self.n_universe, dtype=np.bool_)
        w, dv = self.w, self.derived
        out = self.outcome(day)
        stored = self.stored_present(day) & (out[w.l_src] == Outcome.INDEXABLE)
        so = out[dv.src]
        want = np.select(
            [dv.cond == 1, dv.cond == 2],
            [so == Outcome.NOT_CANONICAL,
             (so == Outcome.REDIRECT) | (so == Outcome.BROKEN_REDIRECT)],
            so == Outcome.INDEXABLE,
        )
        return np.concatenate([stored, self.derived_present(day) & want])

    def iter_event_arrays(self, through_day: int) -> Iterator[tuple[int, I64, I64, I8]]:
        """Per day: (day, new link ids, lost link ids, lost reason codes; 0 = link_removed)."""
        src = self.universe_src()
        prev = self.live(0)
        for d in range(1, through_day + 1):
            cur = self.live(d)
            new = np.flatnonzero(cur & ~prev)
            lost = np.flatnonzero(prev & ~cur)
            codes = self.outcome(d)[src[lost]]
            yield d, new, lost, codes
            prev = cur

    # --- materializing rows ------------------------------------------------------------
    def link(self, i: int) -> TruthLink:
        """The record of universe row `i` (its fields do not depend on the day)."""
        w = self.w
        if i < w.n_links:
            return self._stored(i)
        j = i - w.n_links
        dv = self.derived
        src, dst = int(dv.src[j]), int(dv.dst[j])
        origin = int(dv.origin[j])
        kind = int(dv.kind[j])
        nofollow = kind != Kind.REDIRECT and self.page_nofollow(src)
        s_url, t_url = w.url_of(src), w.url_of(dst)
        return TruthLink(s_url, s_url, t_url, t_url, LinkKind(KIND_NAMES[kind]), "", nofollow,
                         False, False, None, None, "", "", None, 1, None, ORIGINS[origin], i)

    def page_nofollow(self, page: int) -> bool:
        return bool(self.w.page_flags[page] & 12)

    def _stored(self, i: int) -> TruthLink:
        w = self.w
        src, dst = int(w.l_src[i]), int(w.l_dst[i])
        s_url = w.url_of(src)
        t_key = w.url_of(dst)
        kind = int(w.l_kind[i])
        rel = int(w.l_rel[i])
        img = int(w.l_img[i])
        image_url = None
        alt = None
        if img >= 0:
            image_url = f"{w.host_url(int(w.page_host[src]))}/img/{img}.jpg"
            alt = w.anchors[int(w.l_alt[i])]
        hl = int(w.l_hreflang[i])
        return TruthLink(
            source_url=s_url, source_key=s_url, target_url=self.target_url(i), target_key=t_key,
            kind=LinkKind(KIND_NAMES[kind]), anchor=w.anchors[int(w.l_anchor[i])],
            nofollow=bool(rel & 1) or self.page_nofollow(src), ugc=bool(rel & 2),
            sponsored=bool(rel & 4), alt=alt, image_url=image_url,
            text_pre=w.snippets[int(w.l_pre[i])], text_post=w.snippets[int(w.l_post[i])],
            location=SLOT_LOCATION[int(w.l_slot[i])], links_count=int(w.l_count[i]),
            hreflang=HREFLANGS[hl] if hl >= 0 else None, origin="html", link_id=i,
        )

    def target_url(self, i: int) -> str:
        """The WHATWG-resolved href of stored row `i` (fragment and session id kept)."""
        w = self.w
        dst = int(w.l_dst[i])
        style = int(w.l_style[i])
        path = w.paths[dst]
        host = w.hosts.key[int(w.page_host[dst])]
        if style == Style.FRAG:
            return f"http://{host}{path}{FRAGMENT}"
        if style == Style.SESSION:
            return f"http://{host}{path}{SESSION_AMP if '?' in path else SESSION_Q}"
        if style == Style.PCT:
            sec = names.SECTIONS[int(w.page_section[dst])]
            return f"http://{host}/{names.SECTION_PCT[sec]}{path[len(sec) + 1:]}"
        return f"http://{host}{path}"

    # --- per page -------------------------------------------------------------------------
    def page_rows(self, page: int, day: int) -> list[int]:
        """Stored rows written in the page's HTML on `day` (document order by slot later)."""
        w = self.w
        st = int(w.state[page, day])
        if st not in State.HTML_200:
            return []
        a, b = int(w.l_start[page]), int(w.l_start[page + 1])
        d = day
        return [i for i in range(a, b)
                if (w.l_birth[i] <= d < w.l_death[i]) or (0 < w.l_reborn[i] <= d)]

    def page_derived(self, page: int, day: int) -> list[int]:
        """Universe ids of the state-derived links the page shows on `day`."""
        ids = self._derived_by_src.get(page, [])
        if not ids:
            return []
        pres = self.derived_present(day)
        return [self.w.n_links + j for j in ids if pres[j]]

    def page_links(self, page: int, day: int) -> list[TruthLink]:
        """Links a fetch of the page on `day` yields: HTML ones plus HTTP-level ones.

        Empty when the fetch fails (broken host, reset, truncated body): nothing to extract.
        """
        if not self.fetch_completes(page, day):
            return []
        out = [self.link(i) for i in self.page_derived(page, day)]
        rows = self.page_rows(page, day)
        return out + [self._stored(i) for i in rows]

    def fetch_completes(self, page: int, day: int) -> bool:
        """Whether a fetch of the page on `day` gets a complete HTTP response."""
        w = self.w
        if w.hosts.broken[int(w.page_host[page])] != HostBroken.NONE:
            return False
        return int(w.state[page, day]) not in (State.RESET, State.TRUNCATED)

    def link_counts(self, page: int, day: int) -> tuple[int, int]:
        """(internal, external) <a href> occurrences to http(s) targets on `day`."""
        w = self.w
        dom = w.hosts.domain_id
        sd = dom[int(w.page_host[page])]
        internal = external = 0
        for i in self.page_rows(page, day):
            if w.l_kind[i] > Kind.IMAGE:
                continue
            if dom[int(w.page_host[int(w.l_dst[i])])] == sd:
                internal += int(w.l_count[i])
            else:
                external += int(w.l_count[i])
        return internal, external


def world_truth(w: World) -> Truth:
    """The `Truth` of a world, built once per world object."""
    t: Truth | None = w.__dict__.get("_truth")
    if t is None:
        t = w.__dict__["_truth"] = Truth(w)
    return t
