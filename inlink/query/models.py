"""The query layer's vocabulary: targets and their scope, filters, ordering, queries, rows.

Everything here is inlink's own naming (source_url, target_key, nofollow, kind, ...); the API
dialects translate vendor parameters onto these types and the rows back (docs/query.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from inlink import urls
from inlink.errors import InvalidInput, InvalidUrl

# -- targets -------------------------------------------------------------------------------


class Mode(StrEnum):
    """Target scope (seed 001 `mode`): the registrable domain and its subdomains, exactly
    one host, or exactly one normalized URL."""

    DOMAIN = "domain"
    HOST = "host"
    URL = "url"


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved target: `domain` and `host` are always filled (the scope's registrable
    domain and, for host/url mode, its host); `key` is the normalized URL in url mode."""

    mode: Mode
    value: str          # the scope key: domain, host or URL key, depending on mode
    given: str          # the text as the caller gave it (dialects echo it back)
    domain: str
    host: str | None = None
    key: str | None = None


def _parse_mode(mode: Mode | str) -> Mode:
    try:
        return Mode(mode)
    except ValueError:
        raise InvalidInput("mode", f"{mode!r} is not one of domain, host, url") from None


def resolve_target(text: str, mode: Mode | str = Mode.HOST) -> Target:
    """Resolve a target as seed 001 describes it: "root domain, host (subdomain), or URL".

    A URL (or a host) given in domain mode means its registrable domain, in host mode its
    host, in url mode the URL itself (normalized). Input without a scheme is read as
    `http://` + text, so "example.com" in url mode is the page http://example.com/. The
    default mode is `host`, seed 001's default.
    """
    m = _parse_mode(mode)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("target", "is empty: give a domain, host or URL")
    raw = text.strip()
    if any(c.isspace() for c in raw):
        raise InvalidUrl(raw, "contains whitespace")
    has_scheme = "://" in raw
    if has_scheme and not raw.lower().startswith(("http://", "https://")):
        raise InvalidUrl(raw, "only http and https URLs can be targets")
    key = urls.normalize_url(raw if has_scheme else "http://" + raw)
    host = urls.key_host(key)
    if host.startswith("["):
        raise InvalidInput("target", f"{raw!r}: IPv6 hosts are not indexed as targets")
    if not urls.is_ip(host) and "." not in host:
        raise InvalidInput("target", f"{raw!r}: {host!r} is not a domain name "
                                     "(a single label has no registrable domain)")
    if not urls.is_ip(host) and urls.psl_registrable_domain(host) is None:
        raise InvalidInput("target", f"{raw!r}: {host!r} is a public suffix, not a "
                                     "registrable domain")
    domain = urls.registrable_domain(host)
    if m is Mode.DOMAIN:
        return Target(m, domain, text, domain)
    if m is Mode.HOST:
        return Target(m, host, text, domain, host)
    return Target(m, key, text, domain, host, key)


# -- filters -------------------------------------------------------------------------------


class Op(StrEnum):
    """Filter operators: both dialects' languages map onto these (seed 004 lists =, <>, in,
    not_in, like, not_like, ilike, not_ilike, regex, not_regex, match, not_match; seed 001
    uses contains / does_not_contain)."""

    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    IN = "in"
    NOT_IN = "not_in"
    LIKE = "like"            # SQL LIKE with % and _, case-sensitive
    NOT_LIKE = "not_like"
    ILIKE = "ilike"          # case-insensitive LIKE
    NOT_ILIKE = "not_ilike"
    CONTAINS = "contains"    # substring, case-insensitive (seed 001 *_filter_mode contains)
    NOT_CONTAINS = "not_contains"
    STARTS = "starts"        # prefix, case-sensitive
    ENDS = "ends"
    REGEX = "regex"          # RE2 syntax (DuckDB regexp_matches), partial match
    NOT_REGEX = "not_regex"


FilterValue = (str | int | float | bool | dt.date | dt.datetime | None
               | tuple[str | int | float | bool | dt.date | dt.datetime, ...])


@dataclass(frozen=True, slots=True)
class Filter:
    """One condition `field op value` over a field of FIELDS (inlink vocabulary)."""

    field: str
    op: Op
    value: FilterValue

    def __post_init__(self) -> None:
        object.__setattr__(self, "op", _parse_op(self.op))
        if isinstance(self.value, list):  # lists are accepted for convenience, stored frozen
            object.__setattr__(self, "value", tuple(self.value))


def _parse_op(op: Op | str) -> Op:
    try:
        return Op(op)
    except ValueError:
        raise InvalidInput("filters", f"unknown operator {op!r}; use one of "
                                      f"{', '.join(o.value for o in Op)}") from None


@dataclass(frozen=True, slots=True)
class FilterGroup:
    """Conditions joined by one logical operator; groups nest (seed 004 allows and/or
    nesting, up to 8 conditions in all)."""

    logic: Literal["and", "or"]
    items: tuple[Filter | FilterGroup, ...]

    def __post_init__(self) -> None:
        if self.logic not in ("and", "or"):
            raise InvalidInput("filters", f"logical operator must be and/or, got {self.logic!r}")
        if isinstance(self.items, list):
            object.__setattr__(self, "items", tuple(self.items))


FilterExpr = Filter | FilterGroup

#: Limits of the filter language (seed 004: "8 filters maximum").
MAX_CONDITIONS = 8
MAX_DEPTH = 4


def all_of(*items: FilterExpr) -> FilterGroup:
    return FilterGroup("and", tuple(items))


def any_of(*items: FilterExpr) -> FilterGroup:
    return FilterGroup("or", tuple(items))


# -- ordering ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Order:
    """One sort rule; a query takes up to three (seed 004 order_by)."""

    field: str
    desc: bool = True

    @classmethod
    def parse(cls, text: str) -> Order:
        """"first_seen" / "first_seen,desc" / "first_seen asc" -> Order."""
        parts = text.replace(",", " ").split()
        if not parts or len(parts) > 2:
            raise InvalidInput("order_by", f"{text!r} is not 'field[,asc|desc]'")
        direction = parts[1].lower() if len(parts) == 2 else "desc"
        if direction not in ("asc", "desc"):
            raise InvalidInput("order_by", f"direction must be asc or desc, got {parts[1]!r}")
        return cls(parts[0], direction == "desc")


MAX_ORDER_RULES = 3


# -- the backlink query --------------------------------------------------------------------

Status = Literal["live", "lost", "all"]

#: Link kinds that are backlinks in SE Ranking's sense (seed 001 link_type href | redirect;
#: a meta refresh is a redirect made in HTML). canonical and alternate are hints about the
#: source page itself, not votes for another page: DataForSEO lists them as item_type, so
#: its dialect asks for ALL_KINDS.
BACKLINK_KINDS: frozenset[str] = frozenset({"anchor", "image", "redirect", "meta"})
ALL_KINDS: frozenset[str] = frozenset({"anchor", "image", "redirect", "meta", "canonical",
                                       "alternate"})
#: Kinds that make a page an intermediate of an indirect link (seed 004 include_indirect_links:
#: "a page that either redirects to the target, or points to a canonical page").
INDIRECT_KINDS: frozenset[str] = frozenset({"redirect", "meta", "canonical"})


@dataclass(frozen=True, slots=True)
class GroupBy:
    """Keep at most `per` rows per value of `field` (SE Ranking per_domain, DataForSEO
    one_per_domain / one_per_anchor / custom_mode); rows carry the group's size."""

    field: str
    per: int = 1


DEFAULT_ORDER: tuple[Order, ...] = (Order("first_seen", True),)


@dataclass(frozen=True, slots=True)
class BacklinkQuery:
    """A backlink listing: who links into `target`, filtered, ordered and paged.

    `cursor` continues a previous page (key-set; `offset` must then be 0). `kinds` defaults
    to SE Ranking's backlinks; `status` selects live, lost or all links (seed 004
    backlinks_status_type); `include_internal` keeps links from the target's own registrable
    domain; `include_indirect` adds links to pages that redirect or canonicalize into the
    target (seed 004 include_indirect_links). `fields` names the `Backlink` fields to read
    (None: all); the others are None in the rows, except the keys a row always has
    (`backlinks.KEY_FIELDS`). Every field is a column to decode per row, and the source
    page's attributes a keyed read per source page, so a dialect asks for what it returns.
    """

    target: Target
    filters: FilterExpr | None = None
    order: tuple[Order, ...] = DEFAULT_ORDER
    limit: int = 100
    offset: int = 0
    cursor: str | None = None
    group: GroupBy | None = None
    status: Status = "live"
    kinds: frozenset[str] = BACKLINK_KINDS
    include_internal: bool = False
    include_indirect: bool = False
    fields: frozenset[str] | None = None


#: Largest page (seed 001 raw allows limit up to 100,000) and offset (seed 004: 20,000).
MAX_LIMIT = 100_000
MAX_OFFSET = 20_000


# -- rows ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndirectHop:
    """One intermediate page of an indirect link: the link points at `url`, which reaches
    the target through a `kind` link (redirect, meta refresh or canonical)."""

    kind: str
    url: str
    status: int | None


@dataclass(frozen=True, slots=True)
class Backlink:
    """One link row with its source page's facts and ranks (inlink vocabulary)."""

    link_id: int
    source_url: str
    source_key: str
    source_host: str
    source_domain: str
    source_tld: str
    source_ip: str | None
    source_subnet: str | None
    source_country: str | None
    source_title: str | None
    source_status: int | None
    source_language: str | None
    source_encoding: str | None
    source_size: int | None
    source_internal_links: int | None
    source_external_links: int | None
    source_inlink_rank: int         # 0-100 InLink Rank of the source page (0 if unranked)
    source_rank_1000: int
    source_domain_inlink_rank: int  # Domain InLink Rank of the source's registrable domain
    source_domain_rank_1000: int
    link_rank_1000: int             # what this link passes (seed 004 `rank`); 0 if nofollow
    from_home_page: bool
    target_url: str
    target_key: str
    target_host: str
    target_domain: str
    kind: str
    anchor: str
    anchor_text: str                # anchor, or the image's alt for an image link without text
    alt: str | None
    image_url: str | None
    text_pre: str
    text_post: str
    location: str | None
    links_count: int
    hreflang: str | None
    nofollow: bool
    ugc: bool
    sponsored: bool
    internal: bool
    live: bool
    first_seen: dt.datetime
    last_seen: dt.datetime
    lost_at: dt.datetime | None
    lost_reason: str | None
    group_count: int | None = None  # rows in this row's group (GroupBy), else None
    indirect_path: tuple[IndirectHop, ...] = ()

    @property
    def dofollow(self) -> bool:
        return not self.nofollow


@dataclass(frozen=True, slots=True)
class BacklinkPage:
    """One page of a listing. `next_cursor` is None on the last page; `total` counts every
    row the query matches (after grouping) when it was asked for."""

    target: Target
    rows: list[Backlink]
    total: int | None
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class BacklinkColumns:
    """One page of a listing as columns: `columns[name]` holds the page's values of each
    `Backlink` field the query read (`BacklinkQuery.fields` and the keys), plus
    `group_count` and `indirect_path`, all in row order. A dialect that renders a large page
    reads these instead of building a `Backlink` per row; `rows()` builds them."""

    target: Target
    columns: dict[str, list[Any]]
    total: int | None
    next_cursor: str | None

    def __len__(self) -> int:
        return len(self.columns["link_id"])

    def rows(self) -> list[Backlink]:
        """The page as Backlink rows; fields the query did not read are None."""
        return backlink_rows(self.columns)

    def page(self) -> BacklinkPage:
        return BacklinkPage(self.target, self.rows(), self.total, self.next_cursor)


def backlink_rows(columns: dict[str, list[Any]]) -> list[Backlink]:
    """Backlink rows from columns by field name (`link_id` always there); a field without a
    column is None (group_count too; indirect_path empty)."""
    n = len(columns["link_id"])
    blank: list[Any] = [None] * n
    values = [columns.get(f.name, blank) for f in dataclasses.fields(Backlink)]
    if "indirect_path" not in columns:
        values[-1] = [()] * n
    return [Backlink(*v) for v in zip(*values, strict=True)]


@dataclass(frozen=True, slots=True)
class Metrics:
    """The batch counts of seed 001 /metrics, /count and the */count endpoints."""

    target: Target
    backlinks: int
    refdomains: int
    subnets: int
    ips: int
    nofollow_backlinks: int
    dofollow_backlinks: int
    edu_backlinks: int
    gov_backlinks: int


@dataclass(frozen=True, slots=True)
class CountItem:
    """A value with counts: a top anchor, page, TLD or country of a summary."""

    value: str
    backlinks: int
    refdomains: int


@dataclass(frozen=True, slots=True)
class Summary:
    """Every figure of seed 001 /summary for one target."""

    target: Target
    backlinks: int
    refdomains: int
    subnets: int
    ips: int
    nofollow_backlinks: int
    dofollow_backlinks: int
    from_home_page_backlinks: int
    dofollow_from_home_page_backlinks: int
    text_backlinks: int
    image_backlinks: int
    redirect_backlinks: int
    edu_backlinks: int
    gov_backlinks: int
    dofollow_refdomains: int
    from_home_page_refdomains: int
    edu_refdomains: int
    gov_refdomains: int
    anchors: int
    dofollow_anchors: int
    pages_with_backlinks: int
    inlink_rank: int
    domain_inlink_rank: int
    top_anchors_by_backlinks: list[CountItem]
    top_anchors_by_refdomains: list[CountItem]
    top_pages_by_backlinks: list[CountItem]
    top_pages_by_refdomains: list[CountItem]
    top_tlds: list[CountItem]
    top_countries: list[CountItem]


@dataclass(frozen=True, slots=True)
class GroupRow:
    """An aggregate row of anchors, referring IPs or indexed pages (seed 001)."""

    value: str              # the anchor text, the IP, or the target page URL (key)
    backlinks: int
    refdomains: int
    nofollow_backlinks: int
    dofollow_backlinks: int
    first_seen: dt.datetime
    last_seen: dt.datetime


@dataclass(frozen=True, slots=True)
class RefDomain:
    """A referring domain of a target (seed 001 /refdomains)."""

    domain: str
    backlinks: int
    dofollow_backlinks: int
    first_seen: dt.datetime       # of its oldest live backlink
    last_seen: dt.datetime
    domain_inlink_rank: int
    inlink_rank: int              # of its home page (best of http/https, with or without www)


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """A new or lost event of a backlink (seed 001 /history), with the link's row."""

    day: dt.date
    event: str                    # new | lost
    reason: str | None            # lost reason (seed 001 reason_lost); None for new
    link: Backlink


@dataclass(frozen=True, slots=True)
class DayCount:
    """New and lost counts of one day (seed 001 /history/count, refdomains/history/count)."""

    day: dt.date
    new: int
    lost: int


@dataclass(frozen=True, slots=True)
class DayTotal:
    """Live backlinks at the end of one day (seed 001 /history/cumulative)."""

    day: dt.date
    backlinks: int


@dataclass(frozen=True, slots=True)
class RefDomainChange:
    """A referring domain that started (new) or stopped (lost) linking on `day`."""

    day: dt.date
    event: str
    domain: str
    backlinks: int                # live backlinks from it now
    dofollow_backlinks: int
    first_seen: dt.datetime | None  # of its oldest live backlink now (None if none live)
    domain_inlink_rank: int
    inlink_rank: int


@dataclass(frozen=True, slots=True)
class Authority:
    """InLink Rank of a page and Domain InLink Rank of its domain (seed 001 /authority)."""

    target: Target
    url: str                      # the page whose InLink Rank this is
    inlink_rank: int
    domain_inlink_rank: int
    rank_1000: int
    domain_rank_1000: int


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """New/lost backlinks of a target in a date range (inclusive); filters apply to the
    link's current attributes; `event` None means both."""

    target: Target
    date_from: dt.date
    date_to: dt.date
    event: Literal["new", "lost"] | None = None
    filters: FilterExpr | None = None
    kinds: frozenset[str] = BACKLINK_KINDS
    include_internal: bool = False
