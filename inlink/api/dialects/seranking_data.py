"""SE Ranking Data API, Backlinks (seed 001) at `/v1/backlinks/...`: each endpoint parses the
vendor's parameters, calls the query layer and renders the vendor's field names. No SQL here.

Choices where the seed is silent or contradicts itself are listed in docs/compat.md.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inlink import query as q
from inlink.api import exports as ex
from inlink.api.errors import message_of, param_of, status_of
from inlink.api.params import Params
from inlink.errors import InvalidInput
from inlink.index.store import Store
from inlink.query import (
    BacklinkQuery,
    Filter,
    FilterExpr,
    GroupBy,
    HistoryQuery,
    Op,
    Order,
    Target,
    all_of,
    any_of,
    resolve_target,
)

PREFIX = "/v1/backlinks"
DIALECT = "data"
MAX_TARGETS = 100
MAX_LIST = 10_000
MAX_RAW = 100_000
MAX_FILTER_TEXT = 2063  # seed 001: "Maximum 2063 ASCII symbols"

#: Parameter spellings the seed uses besides the canonical one (its raw example: `apiKey`;
#: names are matched case-insensitively anyway).
ALIASES: dict[str, str] = {}

Data = dict[str, Any]
Runner = Callable[[Store], Data]


@dataclass(frozen=True, slots=True)
class Context:
    today: dt.date
    secret: bytes
    key_hash: str = ""                 # the caller's key (hashed): owner of its exports
    exports: ex.Exports | None = None  # the server's export tasks
    base_url: str = ""                 # scheme://host[:port] the caller reached us at


#: Answers a request and charges for it in one step: (data, cost charged, balance left).
SelfCharging = Callable[[Store, int], tuple[Data, int, int]]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A parsed request: how many targets it is charged for and how to answer it.

    Most endpoints are charged by the app after `run` answers; an endpoint whose charge
    depends on what it does (export: a `rejected` task costs nothing) sets `charged`, which
    answers and charges atomically and is called instead of `run`.
    """

    targets: int
    run: Runner
    charged: SelfCharging | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    path: str
    cost: int                 # credits per target (seed 001 "Cost: N credits per target")
    methods: tuple[str, ...]
    parse: Callable[[Params, Context], Prepared]
    summary: str
    cacheable: bool = True    # an answer depends only on the parameters and the data


# ---------------------------------------------------------------- shared parsing

def _mode(p: Params) -> str:
    return p.text("mode", "host", choices=("domain", "host", "url")) or "host"


def _targets(p: Params, *, batch: bool, guess_mode: bool = False) -> list[Target]:
    """The request's targets. `guess_mode` (the authority endpoints, which the seed gives no
    `mode`): unless `mode` is sent, a target with a scheme is a page (url) and one without
    is a host."""
    given = [t for t in p.all("target")]
    if not given:
        raise InvalidInput("target", "is required: a root domain, host or URL")
    if not batch and len(given) > 1:
        raise InvalidInput("target", "this endpoint takes a single target; batch endpoints "
                                     "are summary, metrics, authority and the */count ones")
    if len(given) > MAX_TARGETS:
        raise InvalidInput("target", f"at most {MAX_TARGETS} targets per request, "
                                     f"got {len(given)}")
    mode = None if guess_mode and p.get("mode") in (None, "") else _mode(p)
    out = []
    for t in given:
        if not isinstance(t, str):
            raise InvalidInput("target", f"expected a string, got {t!r}")
        out.append(resolve_target(t, mode or ("url" if "://" in t.strip()[:12] else "host")))
    return out


def _limit(p: Params, default: int = 100, hi: int = MAX_LIST) -> int:
    n = p.integer("limit", default, 1, hi)
    assert n is not None
    return n


def _day(d: dt.datetime | dt.date | None) -> str | None:
    if d is None:
        return None
    return (d.date() if isinstance(d, dt.datetime) else d).isoformat()


def _dates(p: Params, ctx: Context) -> tuple[dt.date, dt.date]:
    """date_from (default yesterday) and date_to (default today) by the server's clock."""
    date_from = p.date("date_from", ctx.today - dt.timedelta(days=1))
    date_to = p.date("date_to", ctx.today)
    if date_from > date_to:
        raise InvalidInput("date_from", f"{date_from} is after date_to {date_to}")
    return date_from, date_to


def _text_filter(p: Params, name: str) -> str | None:
    return p.text(name, max_len=MAX_FILTER_TEXT, ascii_only=True)


# ---------------------------------------------------------------- rendering

#: The Backlink fields `_backlinks` reads (BacklinkQuery.fields): each is a column to decode.
ROW_FIELDS = frozenset({"source_url", "target_url", "source_title", "anchor_text", "nofollow",
                        "kind", "image_url", "source_inlink_rank",
                        "source_domain_inlink_rank", "first_seen", "last_seen"})


def _days(values: list[dt.datetime]) -> list[str | None]:
    """_day of a column (a page holds few distinct timestamps: each is formatted once)."""
    memo: dict[dt.datetime, str | None] = {}
    return [memo[v] if v in memo else memo.setdefault(v, _day(v)) for v in values]


def _backlinks(page: q.BacklinkColumns) -> list[Data]:
    """Seed 001 /all, /raw rows (the table says nofollow_backlinks, the example nofollow: we
    follow the example, docs/compat.md), built from the page's columns: a raw page holds up
    to 100,000 rows."""
    c = page.columns
    return [{"url_from": url_from, "url_to": url_to, "title": title or "", "anchor": anchor,
             "alt": "", "nofollow": nofollow, "image": kind == "image",
             "image_source": image or "", "inlink_rank": rank, "domain_inlink_rank": drank,
             "first_seen": first, "last_visited": last}
            for url_from, url_to, title, anchor, nofollow, kind, image, rank, drank, first, last
            in zip(c["source_url"], c["target_url"], c["source_title"], c["anchor_text"],
                   c["nofollow"], c["kind"], c["image_url"], c["source_inlink_rank"],
                   c["source_domain_inlink_rank"], _days(c["first_seen"]),
                   _days(c["last_seen"]), strict=True)]


def _link_type(kind: str) -> str:
    return "redirect" if kind in ("redirect", "meta") else "href"


def _group_row(r: q.GroupRow, key: str) -> Data:
    return {key: r.value, "backlinks": r.backlinks, "refdomains": r.refdomains,
            "dofollow_backlinks": r.dofollow_backlinks,
            "nofollow_backlinks": r.nofollow_backlinks,
            "first_seen": _day(r.first_seen), "last_visited": _day(r.last_seen)}


def render_error(exc: BaseException) -> tuple[int, Data]:
    """The dialect's error envelope (seed 001 names no error body; docs/compat.md):
    `{"error": {"code": <HTTP status>, "message": "...", "parameter": "<name>" | null}}`."""
    status = status_of(exc)
    return status, {"error": {"code": status, "message": message_of(exc),
                              "parameter": param_of(exc)}}


# ---------------------------------------------------------------- batch endpoints

def _summary(p: Params, ctx: Context) -> Prepared:
    targets = _targets(p, batch=True)

    def run(store: Store) -> Data:
        out = []
        for s in q.summarize(store, targets):
            out.append({
                "target": s.target.given,
                "backlinks": s.backlinks, "refdomains": s.refdomains, "subnets": s.subnets,
                "ips": s.ips, "nofollow_backlinks": s.nofollow_backlinks,
                "dofollow_backlinks": s.dofollow_backlinks, "edu_backlinks": s.edu_backlinks,
                "gov_backlinks": s.gov_backlinks, "inlink_rank": s.inlink_rank,
                "domain_inlink_rank": s.domain_inlink_rank,
                "from_home_page_backlinks": s.from_home_page_backlinks,
                "dofollow_from_home_page_backlinks": s.dofollow_from_home_page_backlinks,
                "text_backlinks": s.text_backlinks, "dofollow_refdomains": s.dofollow_refdomains,
                "from_home_page_refdomains": s.from_home_page_refdomains,
                "edu_refdomains": s.edu_refdomains, "gov_refdomains": s.gov_refdomains,
                "anchors": s.anchors, "dofollow_anchors": s.dofollow_anchors,
                "pages_with_backlinks": s.pages_with_backlinks,
                "top_anchors_by_backlinks": [{"anchor": c.value, "backlinks": c.backlinks}
                                             for c in s.top_anchors_by_backlinks],
                "top_anchors_by_refdomains": [{"anchor": c.value, "refdomains": c.refdomains}
                                              for c in s.top_anchors_by_refdomains],
                "top_pages_by_backlinks": [{"url": c.value, "backlinks": c.backlinks}
                                           for c in s.top_pages_by_backlinks],
                "top_pages_by_refdomains": [{"url": c.value, "refdomains": c.refdomains}
                                            for c in s.top_pages_by_refdomains],
                "top_tlds": [{"tld": c.value, "count": c.backlinks} for c in s.top_tlds],
                "top_countries": [{"country": c.value, "count": c.backlinks}
                                  for c in s.top_countries],
            })
        return {"summary": out}

    return Prepared(len(targets), run)


def _metrics(p: Params, ctx: Context) -> Prepared:
    targets = _targets(p, batch=True)

    def run(store: Store) -> Data:
        return {"metrics": [{
            "target": m.target.given, "backlinks": m.backlinks, "refdomains": m.refdomains,
            "subnets": m.subnets, "ips": m.ips, "nofollow_backlinks": m.nofollow_backlinks,
            "dofollow_backlinks": m.dofollow_backlinks, "edu_backlinks": m.edu_backlinks,
            "gov_backlinks": m.gov_backlinks} for m in q.metrics(store, targets)]}

    return Prepared(len(targets), run)


def _counter(fn: Callable[[Store, list[Target]], list[int]], field: str
             ) -> Callable[[Params, Context], Prepared]:
    def parse(p: Params, ctx: Context) -> Prepared:
        targets = _targets(p, batch=True)

        def run(store: Store) -> Data:
            return {"metrics": [{"target": t.given, field: n}
                                for t, n in zip(targets, fn(store, targets), strict=True)]}

        return Prepared(len(targets), run)

    return parse


# ---------------------------------------------------------------- backlink listings

#: order_by values: the table writes first.domain_inlink_rank / first.inlink_rank, the
#: examples inlink_rank; both are accepted (docs/compat.md).
_BACKLINK_ORDER = {
    "date_found": Order("first_seen"),
    "domain_inlink_rank": Order("source_domain_inlink_rank"),
    "first.domain_inlink_rank": Order("source_domain_inlink_rank"),
    "inlink_rank": Order("source_inlink_rank"),
    "first.inlink_rank": Order("source_inlink_rank"),
}


def _backlink_filters(p: Params) -> FilterExpr | None:
    """Seed 001 /all filters as query-layer filters; defaults add nothing."""
    items: list[Filter] = []
    for name, fld in (("inlink_rank", "source_inlink_rank"),
                      ("domain_inlink_rank", "source_domain_inlink_rank")):
        lo = p.integer(f"{name}_from", 0, 0, 100)
        hi = p.integer(f"{name}_to", 100, 0, 100)
        assert lo is not None and hi is not None
        if lo > hi:
            raise InvalidInput(f"{name}_from", f"{lo} is above {name}_to {hi}")
        if lo > 0:
            items.append(Filter(fld, Op.GE, lo))
        if hi < 100:
            items.append(Filter(fld, Op.LE, hi))
    for name, fld in (("url_from", "source_url"), ("url_to", "target_url"),
                      ("anchor", "anchor_text")):
        text = _text_filter(p, f"{name}_filter")
        mode = p.text(f"{name}_filter_mode", "contains",
                      choices=("contains", "does_not_contain"))
        if text is not None:
            items.append(Filter(fld, Op.CONTAINS if mode == "contains" else Op.NOT_CONTAINS,
                                text))
    nf = p.text("nofollow_filter", choices=("nofollow_only", "dofollow_only"))
    if nf is not None:
        items.append(Filter("nofollow", Op.EQ, nf == "nofollow_only"))
    if not items:
        return None
    return items[0] if len(items) == 1 else all_of(*items)


def _per_domain(p: Params) -> GroupBy | None:
    n = p.integer("per_domain", None, 1, 100)
    return None if n is None else GroupBy("source_domain", n)


def _all(p: Params, ctx: Context) -> Prepared:
    (target,) = _targets(p, batch=False)
    order = _BACKLINK_ORDER[p.text("order_by", "date_found", choices=_BACKLINK_ORDER) or ""]
    bq = BacklinkQuery(target, filters=_backlink_filters(p), order=(order,),
                       limit=_limit(p), group=_per_domain(p), fields=ROW_FIELDS)

    def run(store: Store) -> Data:
        page = q.find_backlink_columns(store, bq, secret=ctx.secret, with_total=False)
        return {"backlinks": _backlinks(page)}

    return Prepared(1, run)


def _raw(p: Params, ctx: Context) -> Prepared:
    (target,) = _targets(p, batch=False)
    order = _BACKLINK_ORDER[p.text("order_by", "date_found", choices=_BACKLINK_ORDER) or ""]
    cursor = None
    if "next" in p:
        # Seed 001: "must NOT be present ... the first time. Including it will result in an
        # error." A cursor this server did not issue fails the signature check below.
        cursor = p.get("next")
        if not isinstance(cursor, str) or cursor == "":
            raise InvalidInput("next", "must not be sent on the first request; on later "
                                       "requests pass the `next` value the previous page "
                                       "returned")
    bq = BacklinkQuery(target, order=(order,), limit=_limit(p, 10_000, MAX_RAW),
                       group=_per_domain(p), cursor=cursor, fields=ROW_FIELDS)

    def run(store: Store) -> Data:
        try:
            page = q.find_backlink_columns(store, bq, secret=ctx.secret, with_total=False)
        except InvalidInput as exc:
            if exc.name == "cursor":
                raise InvalidInput("next", exc.message) from None
            raise
        out: Data = {"backlinks": _backlinks(page)}
        if page.next_cursor is not None:
            out["next"] = page.next_cursor
        return out

    return Prepared(1, run)


# ---------------------------------------------------------------- grouped lists

def _grouped(fn: Callable[..., list[q.GroupRow]], envelope: str, key: str
             ) -> Callable[[Params, Context], Prepared]:
    def parse(p: Params, ctx: Context) -> Prepared:
        (target,) = _targets(p, batch=False)
        order_by = p.text("order_by", "backlinks", choices=("backlinks", "refdomains"))
        limit = _limit(p)

        def run(store: Store) -> Data:
            rows = fn(store, target, order_by=order_by, limit=limit)
            return {envelope: [_group_row(r, key) for r in rows]}

        return Prepared(1, run)

    return parse


_REFDOMAIN_ORDER = {"date_found": "first_seen", "domain_inlink_rank": "domain_inlink_rank",
                    "inlink_rank": "inlink_rank"}


def _refdomains(p: Params, ctx: Context) -> Prepared:
    (target,) = _targets(p, batch=False)
    order_by = _REFDOMAIN_ORDER[p.text("order_by", "date_found", choices=_REFDOMAIN_ORDER)
                                or ""]
    limit = _limit(p)

    def run(store: Store) -> Data:
        rows = q.list_refdomains(store, target, order_by=order_by,  # type: ignore[arg-type]
                                 limit=limit)
        return {"refdomains": [{"refdomain": r.domain, "backlinks": r.backlinks,
                                "dofollow_backlinks": r.dofollow_backlinks,
                                "first_seen": _day(r.first_seen),
                                "domain_inlink_rank": r.domain_inlink_rank} for r in rows]}

    return Prepared(1, run)


# ---------------------------------------------------------------- history

_LINK_TYPE_KINDS = {"href": frozenset({"anchor", "image"}),
                    "redirect": frozenset({"redirect", "meta"})}
# "undefined - anchor type is not defined": links without an anchor, i.e. redirects.
_ANCHOR_TYPE_KINDS = {"text": frozenset({"anchor"}), "image": frozenset({"image"}),
                      "undefined": frozenset({"redirect", "meta"})}


def _history_query(p: Params, ctx: Context, target: Target, *, with_event: bool = True
                   ) -> HistoryQuery:
    date_from, date_to = _dates(p, ctx)
    event = p.text("new_lost_type", choices=("new", "lost")) if with_event else None
    kinds = q.BACKLINK_KINDS
    link_type = p.text("link_type", choices=tuple(_LINK_TYPE_KINDS))
    if link_type is not None:
        kinds = kinds & _LINK_TYPE_KINDS[link_type]
    anchor_type = p.text("anchor_type", choices=tuple(_ANCHOR_TYPE_KINDS))
    if anchor_type is not None:
        kinds = kinds & _ANCHOR_TYPE_KINDS[anchor_type]
    items: list[FilterExpr] = []
    follow = p.text("dofollow", choices=("dofollow", "nofollow", "undefined"))
    if follow == "undefined":
        # inlink always knows whether a link is nofollow: nothing is "undefined".
        items.append(Filter("link_id", Op.LT, 0))
    elif follow is not None:
        items.append(Filter("nofollow", Op.EQ, follow == "nofollow"))
    url_from = _text_filter(p, "url_from")
    if url_from is not None:
        try:
            host = resolve_target(url_from, "host").host or ""
        except InvalidInput as exc:
            raise InvalidInput("url_from", exc.message) from None
        except ValueError as exc:
            raise InvalidInput("url_from", str(exc)) from None
        items.append(any_of(Filter("source_host", Op.EQ, host),
                            Filter("source_host", Op.ENDS, "." + host)))
    if not kinds:  # e.g. link_type=redirect&anchor_type=text: nothing can match
        items.append(Filter("link_id", Op.LT, 0))
        kinds = q.BACKLINK_KINDS
    filters = None if not items else items[0] if len(items) == 1 else all_of(*items)
    return HistoryQuery(target, date_from, date_to, event=event,  # type: ignore[arg-type]
                        filters=filters, kinds=kinds)


_HISTORY_ORDER = {"new_lost_date": "date", "domain_inlink_rank": "domain_inlink_rank",
                  "inlink_rank": "inlink_rank"}


def _history(p: Params, ctx: Context) -> Prepared:
    (target,) = _targets(p, batch=False)
    hq = _history_query(p, ctx, target)
    order_by = _HISTORY_ORDER[p.text("order_by", "new_lost_date", choices=_HISTORY_ORDER)
                              or ""]
    limit = _limit(p)

    def run(store: Store) -> Data:
        rows = q.list_history(store, hq, order_by=order_by,  # type: ignore[arg-type]
                              limit=limit)
        return {"new_lost_backlinks": [{
            "new_lost_date": _day(r.day), "new_lost_type": r.event,
            "url_from": r.link.source_url, "url_to": r.link.target_url,
            "title": r.link.source_title, "anchor": r.link.anchor_text, "alt": None,
            "link_type": _link_type(r.link.kind), "nofollow": r.link.nofollow,
            "image": r.link.kind == "image", "image_source": r.link.image_url,
            "redirect_chain": False, "redirect_chain_urls": [],
            "reason_lost": r.reason if r.event == "lost" else None,
            "inlink_rank": r.link.source_inlink_rank,
            "domain_inlink_rank": r.link.source_domain_inlink_rank,
            "first_seen": _day(r.link.first_seen)} for r in rows]}

    return Prepared(1, run)


def _history_count(p: Params, ctx: Context) -> Prepared:
    (target,) = _targets(p, batch=False)
    hq = _history_query(p, ctx, target)

    def run(store: Store) -> Data:
        days = q.history_counts(store, hq)
        # Seed example lists the newest day first.
        return {"new_lost_backlinks_count": [{"date": _day(d.day), "new": d.new,
                                              "lost": d.lost} for d in reversed(days)]}

    return Prepared(1, run)


def _history_cumulative(p: Params, ctx: Context) -> Prepared:
    (target,) = _targets(p, batch=False)
    date_from, date_to = _dates(p, ctx)

    def run(store: Store) -> Data:
        days = q.history_cumulative(store, target, date_from, date_to)
        return {"backlinks_count": [{"date": _day(d.day), "backlinks": d.backlinks}
                                    for d in reversed(days)]}

    return Prepared(1, run)


def _refdomains_history(p: Params, ctx: Context) -> Prepared:
    (target,) = _targets(p, batch=False)
    date_from, date_to = _dates(p, ctx)
    event = p.text("new_lost_type", choices=("new", "lost"))
    order_by = _HISTORY_ORDER[p.text("order_by", "new_lost_date", choices=_HISTORY_ORDER)
                              or ""]
    limit = _limit(p)

    def run(store: Store) -> Data:
        rows = q.refdomains_history(store, target, date_from, date_to,
                                    event=event,  # type: ignore[arg-type]
                                    order_by=order_by, limit=limit)  # type: ignore[arg-type]
        return {"new_lost_refdomains": [{
            "new_lost_date": _day(r.day), "new_lost_type": r.event, "refdomain": r.domain,
            "backlinks": r.backlinks, "dofollow_backlinks": r.dofollow_backlinks,
            "first_seen": _day(r.first_seen), "domain_inlink_rank": r.domain_inlink_rank}
            for r in rows]}

    return Prepared(1, run)


def _refdomains_history_count(p: Params, ctx: Context) -> Prepared:
    (target,) = _targets(p, batch=False)
    date_from, date_to = _dates(p, ctx)
    event = p.text("new_lost_type", choices=("new", "lost"))

    def run(store: Store) -> Data:
        days = q.refdomains_history_counts(store, target, date_from, date_to,
                                           event=event)  # type: ignore[arg-type]
        return {"new_lost_refdomains_count": [{"date": _day(d.day), "new": d.new,
                                               "lost": d.lost} for d in reversed(days)]}

    return Prepared(1, run)


# ---------------------------------------------------------------- authority

def _site_of(t: Target) -> str:
    """scheme://host of a URL target, else the host or domain (seed /authority/domain rows)."""
    given = t.given.strip()
    if t.mode is q.Mode.URL and "://" in given:
        return given.split("://", 1)[0].lower() + "://" + (t.host or t.domain)
    return t.host or t.value


def _authority(row: Callable[[q.Authority], Data]) -> Callable[[Params, Context], Prepared]:
    """authority, authority/page and authority/domain: the same lookup, their own rows."""
    def parse(p: Params, ctx: Context) -> Prepared:
        targets = _targets(p, batch=True, guess_mode=True)

        def run(store: Store) -> Data:
            return {"pages": [row(a) for a in q.authority(store, targets)]}

        return Prepared(len(targets), run)

    return parse


def _distribution(p: Params, ctx: Context) -> Prepared:
    (target,) = _targets(p, batch=False)
    per = p.text("histogramMode", "host", choices=("domain", "host")) or "host"

    def run(store: Store) -> Data:
        rows = q.refdomain_rank_distribution(store, target, per=per)  # type: ignore[arg-type]
        return {"histogram": [{"domain_inlink_rank": r, "refdomains": n} for r, n in rows]}

    return Prepared(1, run)


def _rank_history_params(p: Params, ctx: Context) -> tuple[dt.date, dt.date, str]:
    """date_from (default: a month before today), date_to (today), granularity."""
    today = ctx.today
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    month_ago = today.replace(year=year, month=month,
                              day=min(today.day, calendar.monthrange(year, month)[1]))
    date_from = p.date("date_from", month_ago)
    date_to = p.date("date_to", today)
    if date_from > date_to:
        raise InvalidInput("date_from", f"{date_from} is after date_to {date_to}")
    granularity = p.text("granularity", "by_day", choices=("by_day", "by_week", "by_month"))
    return date_from, date_to, granularity or "by_day"


def _rank_points(points: list[Any], date_from: dt.date, field: str) -> list[Data]:
    # Newest first, as the seed's example; a bucket that starts before the range is dated
    # by the range's first day ("the first record corresponds to the first day of the
    # requested range").
    return [{"date": max(pt.day, date_from).isoformat(), field: pt.inlink_rank}
            for pt in reversed(points)]


def _rank_history(fn: Callable[..., list[Any]], field: str
                  ) -> Callable[[Params, Context], Prepared]:
    """authority/page/history (fn = page history, `inlink_rank`) and inlink's
    authority/domain/history (domain history, `domain_inlink_rank`)."""
    def parse(p: Params, ctx: Context) -> Prepared:
        (target,) = _targets(p, batch=False, guess_mode=True)
        date_from, date_to, granularity = _rank_history_params(p, ctx)

        def run(store: Store) -> Data:
            points = fn(store, target, date_from, date_to, granularity)
            return {"ranks": _rank_points(points, date_from, field)}

        return Prepared(1, run)

    return parse


# ---------------------------------------------------------------- export

def _export(p: Params, ctx: Context) -> Prepared:
    (target,) = _targets(p, batch=False)
    exports = ctx.exports
    if exports is None:
        raise InvalidInput("export", "exports are not enabled on this server")

    def charged(store: Store, cost: int) -> tuple[Data, int, int]:
        sub = exports.submit(ctx.key_hash, target, cost)
        if sub.status == ex.REJECTED:
            return ({"task_status": ex.REJECTED, "message": "a previous export of this key "
                     "is still being processed; wait for it to complete"},
                    sub.cost, sub.remaining)
        return {"task_status": sub.status, "task_id": sub.task_id}, sub.cost, sub.remaining

    def run(store: Store) -> Data:  # not used: `charged` answers
        raise AssertionError("export is self-charging")

    return Prepared(1, run, charged)


def _export_status(p: Params, ctx: Context) -> Prepared:
    task_id = p.text("task_id")
    if task_id is None:
        raise InvalidInput("task_id", "is required: the task_id the export request returned")
    exports = ctx.exports

    def run(store: Store) -> Data:
        task = None if exports is None else exports.status(ctx.key_hash, task_id)
        if task is None:
            return {"task_status": ex.UNKNOWN, "task_id": task_id}
        out: Data = {"task_status": task.status, "task_id": task.task_id}
        if task.status == ex.COMPLETE and exports is not None:
            out["download_file"] = (f"{ctx.base_url}/export/{exports.token(task.task_id)}/"
                                    f"{task.file_name}")
        elif task.status == ex.FAILED:
            out["message"] = task.error or "the export failed"
        return out

    return Prepared(1, run)


# ---------------------------------------------------------------- the endpoint table

_GP = ("GET", "POST")
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("/summary", 100, _GP, _summary, "Backlink summary (batch)"),
    Endpoint("/metrics", 100, _GP, _metrics, "Key backlink metrics (batch)"),
    Endpoint("/count", 10, _GP, _counter(q.count_backlinks, "backlinks"),
             "Total backlinks count (batch)"),
    Endpoint("/all", 1, _GP, _all, "List backlinks, filtered and ordered"),
    Endpoint("/raw", 1, ("GET",), _raw, "Fetch backlinks in batches (cursor `next`)"),
    Endpoint("/anchors", 1, _GP, _grouped(q.list_anchors, "anchors", "anchor"),
             "Anchor texts"),
    Endpoint("/refdomains", 1, _GP, _refdomains, "Referring domains"),
    Endpoint("/refdomains/count", 10, _GP, _counter(q.count_refdomains, "refdomains"),
             "Referring domains count (batch)"),
    Endpoint("/referring-ips", 1, _GP, _grouped(q.list_referring_ips, "ips", "ip"),
             "Referring IPv4 addresses"),
    Endpoint("/referring-ips/count", 10, _GP, _counter(q.count_ips, "ips"),
             "Referring IPs count (batch)"),
    Endpoint("/referring-subnets/count", 10, _GP, _counter(q.count_subnets, "subnets"),
             "Referring /24 subnets count (batch)"),
    Endpoint("/history", 1, _GP, _history, "New and lost backlinks"),
    Endpoint("/history/count", 100, _GP, _history_count,
             "Daily count of new and lost backlinks"),
    Endpoint("/history/cumulative", 100, _GP, _history_cumulative,
             "Live backlinks at the end of each day"),
    Endpoint("/indexed-pages", 1, _GP, _grouped(q.indexed_pages, "pages", "url"),
             "Target pages with backlinks"),
    Endpoint("/refdomains/history", 1, _GP, _refdomains_history,
             "New and lost referring domains"),
    Endpoint("/refdomains/history/count", 100, _GP, _refdomains_history_count,
             "Daily count of new and lost referring domains"),
    Endpoint("/export", 1, ("GET",), _export,
             "Export every backlink as a .csv.gz (asynchronous task)", cacheable=False),
    Endpoint("/export/status", 0, ("GET",), _export_status,
             "Status of an export task, with its download URL when complete",
             cacheable=False),
    Endpoint("/authority", 100, _GP, _authority(
        lambda a: {"url": a.url, "inlink_rank": a.inlink_rank,
                   "domain_inlink_rank": a.domain_inlink_rank}),
        "InLink Rank and Domain InLink Rank (batch)"),
    Endpoint("/authority/domain", 10, _GP, _authority(
        lambda a: {"url": _site_of(a.target), "domain_inlink_rank": a.domain_inlink_rank}),
        "Domain InLink Rank (batch)"),
    Endpoint("/authority/domain/distribution", 1, ("GET",), _distribution,
             "Domain InLink Rank distribution of the referring domains or hosts"),
    Endpoint("/authority/domain/history", 1, ("GET",),
             _rank_history(q.domain_authority_history, "domain_inlink_rank"),
             "Domain InLink Rank over time (inlink extension)"),
    Endpoint("/authority/page", 10, _GP, _authority(
        lambda a: {"url": a.url, "inlink_rank": a.inlink_rank}),
        "InLink Rank of pages (batch)"),
    Endpoint("/authority/page/history", 1, ("GET",),
             _rank_history(q.page_authority_history, "inlink_rank"),
             "InLink Rank of a page over time"),
)
