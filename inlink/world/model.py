"""The synthetic web as columnar numpy arrays: hosts, pages, page states per day, links.

`World(seed=...)` builds everything deterministically from the seed (no global RNG);
`truth.py` derives what a crawl must see, `render.py` turns a page and day into HTTP bytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from inlink.errors import InvalidInput

if TYPE_CHECKING:
    from inlink.world.render import PageTruth, Response
    from inlink.world.truth import Event, TruthLink

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


class State:
    """What a page answers on one day (int8 codes in `World.state`)."""

    OK = 0
    NOINDEX_META = 1
    NOINDEX_HEADER = 2
    CANON_OTHER = 3          # <link rel=canonical> to `aux`
    CANON_OTHER_HEADER = 4   # HTTP Link rel=canonical to `aux`
    R301 = 5
    R302 = 6
    R308 = 7
    NOT_FOUND = 8
    GONE = 9
    ERR_500 = 10
    ERR_503 = 11
    RESET = 12
    TRUNCATED = 13
    TEXT_PLAIN = 14
    PDF = 15
    META_REFRESH = 16        # thin 200 page with <meta http-equiv=refresh> to `aux`

    NAMES = (
        "ok", "noindex_meta", "noindex_header", "canonical_other", "canonical_other_header",
        "redirect_301", "redirect_302", "redirect_308", "not_found", "gone", "error_500",
        "error_503", "reset", "truncated", "text_plain", "pdf", "meta_refresh",
    )
    STATUS = (200, 200, 200, 200, 200, 301, 302, 308, 404, 410, 500, 503, 0, 200, 200, 200, 200)
    REDIRECTS = (R301, R302, R308)
    HTML_200 = (OK, NOINDEX_META, NOINDEX_HEADER, CANON_OTHER, CANON_OTHER_HEADER, META_REFRESH)


class Kind:
    """Link kind codes; values index `KIND_NAMES` (= extract.LinkKind values)."""

    ANCHOR = 0
    IMAGE = 1
    META = 2
    REDIRECT = 3
    CANONICAL = 4
    ALTERNATE = 5


KIND_NAMES = ("anchor", "image", "meta", "redirect", "canonical", "alternate")


class Slot:
    """Where in the page template a stored link is rendered; decides its `location`."""

    HEAD = 0
    LOGO = 1
    NAV = 2
    MAIN = 3
    ARTICLE = 4
    FIGURE = 5
    SECTION = 6
    BLOCKQUOTE = 7
    TABLE = 8
    DETAILS = 9
    ASIDE = 10
    MORE = 11
    SITEMAP = 12
    FOOTER = 13


SLOT_LOCATION: tuple[str | None, ...] = (
    None, "header", "nav", "main", "article", "figure", "section", "blockquote", "table",
    "details", "aside", None, None, "footer",
)
LIST_SLOTS = frozenset({Slot.LOGO, Slot.NAV, Slot.ASIDE, Slot.SITEMAP})


class Style:
    """How an href is written; all styles of one target resolve to the same key."""

    ABS = 0
    ROOT = 1        # /path (same host only)
    REL = 2         # ../path relative to the page (or <base href>) directory
    PROTO = 3       # //host/path
    UPPER = 4       # HTTP://HOST/path
    PORT = 5        # http://host:80/path
    DOTS = 6        # http://host/a/./b/../../path
    FRAG = 7        # ...#section-2 (kept in target_url, not in the key)
    SESSION = 8     # ...?PHPSESSID=... (kept in target_url, dropped from the key)
    PCT = 9         # /blo%67/... lowercase hex of an unreserved char
    UNI = 10        # unicode (IDN) host
    SPACE = 11      # leading/trailing whitespace inside the attribute


FRAGMENT = "#section-2"
SESSION_Q = "?PHPSESSID=0a1b2c3d4e5f6a7b"
SESSION_AMP = "&sid=9f8e7d6c5b4a"


class HostRobots:
    ALLOW = 0
    PRIVATE = 1      # Disallow: /private/
    DELAY = 2        # Crawl-delay: 1
    MISSING = 3      # robots.txt answers 404 -> allow all (RFC 9309 2.3.1.3)
    UNAVAILABLE = 4  # robots.txt answers 503 -> complete disallow (RFC 9309 2.3.1.4)


class HostBroken:
    NONE = 0
    RESET = 1
    TRUNCATED = 2
    TRICKLE = 3


BROKEN_NAMES = ("", "reset", "truncated", "trickle")


class PageKind:
    HOME = 0
    NORMAL = 1
    DEAD = 2      # linked to but never exists: 404/410 every day
    PRIVATE = 3   # under /private/, disallowed by robots.txt every day
    THIN = 4      # meta-refresh or redirect page without stored links


@dataclass(frozen=True)
class Hosts:
    name: list[str]        # as people write it (unicode for IDN), lowercase
    key: list[str]         # ASCII (punycode) form used in URL keys
    domain: list[str]      # registrable domain (ASCII)
    domain_id: I32
    tld: list[str]
    lang: list[str]
    lang_tag: list[str]
    encoding: list[str]    # WHATWG name
    charset_label: list[str]
    charset_mode: I8       # 0 header, 1 meta, 2 both, 3 undeclared
    brand: list[str]
    ip: npt.NDArray[np.uint32]
    robots: I8
    broken: I8
    slow: B
    is_farm: B
    page_start: I64        # pages of host h are page_start[h]:page_start[h+1]


def ip_str(ip: int) -> str:
    return f"{(ip >> 24) & 255}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}"


class World:
    """A deterministic synthetic web; see docs/world.md for what it contains."""

    def __init__(
        self,
        seed: int = 1,
        hosts: int = 2000,
        *,
        pages_per_host: float = 10.0,
        days: int = 7,
        start: dt.date = dt.date(2026, 1, 1),
        farm_hosts: int | None = None,
        slow_delay: float = 1.5,
    ) -> None:
        if hosts < 40:
            raise InvalidInput("hosts", f"a world needs at least 40 hosts, got {hosts}")
        if not 2 <= days <= 60:
            raise InvalidInput("days", f"days must be within 2..60, got {days}")
        if pages_per_host < 2:
            raise InvalidInput("pages_per_host", "must be at least 2")
        self.seed = seed
        self.n_hosts = hosts
        self.days = days
        self.start = start
        self.slow_delay = slow_delay
        self.n_farm = farm_hosts if farm_hosts is not None else max(12, hosts // 100)
        self._pph = pages_per_host
        # Independent streams per stage, so one stage's draws never shift another's.
        self._ss = np.random.SeedSequence([seed, 0x1A11C])
        from inlink.world import build  # local: build imports model

        build.build(self)

    def rng(self, stage: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, 0x1A11C, stage]))

    # --- attributes filled by build.build -------------------------------------------------
    hosts: Hosts
    money_host: int
    page_host: I32
    page_local: I32
    page_kind: I8
    page_section: I8
    page_query: B
    page_slug: I32
    page_flags: I8            # bit 1 self-canonical html, 2 self-canonical header,
    #                           4 meta nofollow, 8 header nofollow, 16 base href
    page_big: npt.NDArray[np.int32]  # target byte size, 0 = natural
    paths: list[str]
    state: I8                 # (pages, days + 1); column 0 unused
    aux: I32                  # redirect / canonical / refresh target page, -1 none
    disallow: B               # (pages, days + 1) robots.txt disallows the page that day
    stable: B                 # never changes state; redirect targets come from here
    # stored links (anchor, image, alternate), sorted by src
    l_src: I32
    l_dst: I32
    l_kind: I8
    l_anchor: I32
    l_alt: I32
    l_img: I32
    l_rel: I8                 # bit 1 nofollow, 2 ugc, 4 sponsored
    l_slot: I8
    l_style: I8
    l_count: I8
    l_pre: I32
    l_post: I32
    l_hreflang: I8
    l_birth: I8
    l_death: I8               # first day absent; days + 1 = never removed
    l_reborn: I8              # day it is back after removal; 0 = never
    l_start: I64              # CSR: links of page p are l_start[p]:l_start[p+1]
    anchors: list[str]
    snippets: list[str]
    paragraphs: dict[str, list[str]]
    page_title: list[str]

    # --- derived helpers ------------------------------------------------------------------
    @property
    def n_pages(self) -> int:
        return len(self.page_host)

    @property
    def n_links(self) -> int:
        return len(self.l_src)

    def date_of(self, day: int) -> dt.date:
        """Calendar date of `day` (day 1 = `start`)."""
        if not 1 <= day <= self.days:
            raise InvalidInput("day", f"day must be within 1..{self.days}, got {day}")
        return self.start + dt.timedelta(days=day - 1)

    def host_url(self, h: int) -> str:
        return "http://" + self.hosts.key[h]

    def url_of(self, page: int) -> str:
        """The page's URL in key form (what `normalize_url` must produce for it)."""
        return "http://" + self.hosts.key[int(self.page_host[page])] + self.paths[page]

    def host_pages(self, h: int) -> range:
        s = self.hosts.page_start
        return range(int(s[h]), int(s[h + 1]))

    def home_of(self, h: int) -> int:
        return int(self.hosts.page_start[h])

    @cached_property
    def _host_index(self) -> dict[str, int]:
        idx = {k: i for i, k in enumerate(self.hosts.key)}
        for i, n in enumerate(self.hosts.name):
            idx.setdefault(n, i)
        return idx

    def host_index(self, host: str) -> int | None:
        """Host number of a host name (ASCII key or unicode form, any case, no port)."""
        return self._host_index.get(host.lower().rstrip("."))

    @cached_property
    def _path_index(self) -> dict[tuple[int, str], int]:
        host = self.page_host.tolist()
        return {(host[p], path): p for p, path in enumerate(self.paths)}

    def page_at(self, host: int, path: str) -> int | None:
        """Page number for a host and a path+query in key form, or None."""
        return self._path_index.get((host, path))

    def page_of_url(self, url: str) -> int | None:
        """Page number of a URL in key form ("http://host/path?query")."""
        if not url.startswith("http://"):
            return None
        rest = url[7:]
        slash = rest.find("/")
        host, path = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
        h = self.host_index(host)
        return None if h is None else self.page_at(h, path.split("#", 1)[0])

    def ip_of_host(self, h: int) -> str:
        return ip_str(int(self.hosts.ip[h]))

    def seeds(self) -> list[str]:
        """Start URLs of a crawl: every host's home page (key form)."""
        return [self.url_of(self.home_of(h)) for h in range(self.n_hosts)]

    def farm_hosts(self) -> list[str]:
        return [k for k, f in zip(self.hosts.key, self.hosts.is_farm.tolist(), strict=True) if f]

    def top_targets(self, n: int = 10) -> list[tuple[str, int]]:
        """The `n` pages with the most distinct linking pages from other domains (day 1)."""
        dom = self.hosts.domain_id
        src_dom = dom[self.page_host[self.l_src]]
        dst_dom = dom[self.page_host[self.l_dst]]
        ext = (src_dom != dst_dom) & (self.l_birth == 1) & (self.l_kind <= Kind.IMAGE)
        counts = np.bincount(self.l_dst[ext], minlength=self.n_pages)
        order = np.argsort(-counts, kind="stable")[:n]
        return [(self.url_of(int(p)), int(counts[p])) for p in order]

    # --- truth API (delegates to truth.py / render.py) ------------------------------------
    def _page(self, url: str) -> int:
        p = self.page_of_url(url)
        if p is None:
            raise InvalidInput("url", f"{url!r} is not a page of this world (use the key form)")
        return p

    def page_truth(self, url: str, day: int) -> PageTruth:
        """What fetching `url` (key form) on `day` returns and what it means for the index."""
        from inlink.world.render import page_truth

        return page_truth(self, self._page(url), day)

    def page_links(self, url: str, day: int) -> list[TruthLink]:
        """Links an extractor must report for a fetch of `url` on `day` (HTML + HTTP ones)."""
        from inlink.world.truth import world_truth

        self.date_of(day)
        return world_truth(self).page_links(self._page(url), day)

    def live_links(self, day: int) -> Iterator[TruthLink]:
        """Links the index holds as live after the crawl of `day` (index truth rule)."""
        from inlink.world.truth import world_truth

        t = world_truth(self)
        for i in np.flatnonzero(t.live(day)).tolist():
            yield t.link(i)

    def events(self, through_day: int | None = None) -> Iterator[Event]:
        """New/lost events of days 1..through_day, ordered by day then link id."""
        from inlink.world.truth import REASONS, Event, world_truth

        t = world_truth(self)
        last = self.days if through_day is None else through_day
        self.date_of(last)
        for d, new, lost, codes in t.iter_event_arrays(last):
            date = self.date_of(d)
            merged = sorted([(int(i), None) for i in new]
                            + [(int(i), REASONS[c] or "link_removed")
                               for i, c in zip(lost.tolist(), codes.tolist(), strict=True)])
            lost_set = set(lost.tolist())
            for i, reason in merged:
                rec = t.link(i)
                yield Event(date, rec.source_key, rec.target_key, rec.kind.value, rec.anchor,
                            rec.image_url, "lost" if i in lost_set else "new", reason, i)

    def render(self, url: str, day: int) -> Response:
        """The HTTP response the server gives for `url` (key form) on `day`."""
        from inlink.world.render import renderer

        return renderer(self).render(self._page(url), day)
