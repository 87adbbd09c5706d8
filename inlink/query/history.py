"""Link history of a target from the event log: new/lost backlinks and their daily counts,
live backlinks per day, and referring domains won and lost (seed 001 /history*).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from inlink.errors import InvalidInput
from inlink.index.store import Store
from inlink.query.aggregates import (
    _check_limit,
    backlinks_sql,
    domain_rank_join,
    home_rank_sql,
)
from inlink.query.backlinks import load_rows
from inlink.query.models import (
    BACKLINK_KINDS,
    DayCount,
    DayTotal,
    FilterExpr,
    HistoryQuery,
    HistoryRow,
    RefDomainChange,
    Target,
)
from inlink.query.sql import Ctx, compile_filter, context, field, kinds_sql, scope_sql

#: Longest date range one call may cover (a year of days is plenty for a daily chart).
MAX_DAYS = 366


def _days(date_from: dt.date, date_to: dt.date) -> list[dt.date]:
    if date_from > date_to:
        raise InvalidInput("date_from", f"{date_from} is after date_to {date_to}")
    n = (date_to - date_from).days + 1
    if n > MAX_DAYS:
        raise InvalidInput("date_to", f"a range of at most {MAX_DAYS} days, got {n}")
    return [date_from + dt.timedelta(days=i) for i in range(n)]


def _events_sql(target: Target, ctx: Ctx, filters: FilterExpr | None, kinds: frozenset[str],
                include_internal: bool) -> tuple[str, list[object]]:
    """FROM/WHERE of a target's events joined to their links. Both tables are scoped by the
    target columns so each is read through its zone maps (events are sorted by
    target_domain, day; links by target)."""
    escope, eparams = scope_sql(target, "e")
    lscope, lparams = scope_sql(target, "l")
    ksql, kparams = kinds_sql(kinds)
    fsql, fparams, joins = compile_filter(filters, ctx)
    internal = "" if include_internal else " AND NOT e.internal"
    sql = (f"FROM link_events e JOIN links l ON l.link_id = e.link_id {ctx.joins(joins)} "
           f"WHERE {escope} AND {lscope}{internal} AND {ksql} AND {fsql}")
    return sql, [*eparams, *lparams, *kparams, *fparams]


def _check_event(event: str | None) -> None:
    if event not in (None, "new", "lost"):
        raise InvalidInput("new_lost_type", f"{event!r} is not one of new, lost")


HistoryOrder = Literal["date", "domain_inlink_rank", "inlink_rank"]
_HISTORY_ORDER = {
    # Seed 001 new_lost_date: "in order of being found or lost (starting from the most
    # recent ones)".
    "date": "e.day DESC, e.seen_at DESC, e.event, e.link_id",
    "domain_inlink_rank": "source_domain_inlink_rank DESC, e.day DESC, e.event, e.link_id",
    "inlink_rank": "source_inlink_rank DESC, e.day DESC, e.event, e.link_id",
}


_RANK_FIELDS = {"domain_inlink_rank": "source_domain_inlink_rank",
                "inlink_rank": "source_inlink_rank"}


def list_history(store: Store, q: HistoryQuery, *, order_by: HistoryOrder = "date",
                 limit: int = 100) -> list[HistoryRow]:
    """Backlinks found or lost in [date_from, date_to] (seed 001 /history), each with its
    link row (current attributes) and, for lost ones, the reason."""
    _check_limit(limit)
    _check_event(q.event)
    _days(q.date_from, q.date_to)
    if order_by not in _HISTORY_ORDER:
        raise InvalidInput("order_by", f"{order_by!r} is not one of "
                                       f"{', '.join(_HISTORY_ORDER)}")
    ctx = context(store)
    src, params = _events_sql(q.target, ctx, q.filters, q.kinds, q.include_internal)
    cols = ""
    rank_field = _RANK_FIELDS.get(order_by)
    if rank_field is not None:
        f = field(rank_field)
        extra = ctx.joins({str(f.join)} - _joined(src))
        src = src.replace(" WHERE ", f" {extra} WHERE ", 1)
        cols = f", {ctx.expr(f.sql)} AS {rank_field}"
    event_sql = "" if q.event is None else " AND e.event = ?"
    rows = store.query(
        f"SELECT e.day, e.event, e.reason, e.link_id, l.target_domain{cols} {src} "
        f"AND e.day BETWEEN ? AND ?{event_sql} ORDER BY {_HISTORY_ORDER[order_by]} LIMIT ?",
        [*params, q.date_from, q.date_to, *([q.event] if q.event else []), limit])
    links = load_rows(store, ctx, sorted({int(r[3]) for r in rows}),
                       sorted({str(r[4]) for r in rows}))
    return [HistoryRow(day, str(ev), reason, links[int(lid)])
            for day, ev, reason, lid, *_ in rows]


def _joined(sql: str) -> set[str]:
    return {a for a in ("sp", "rp", "rd") if f" {a} ON " in sql}


def history_counts(store: Store, q: HistoryQuery) -> list[DayCount]:
    """New and lost backlinks per day, every day of the range, oldest first
    (seed 001 /history/count)."""
    _check_event(q.event)
    days = _days(q.date_from, q.date_to)
    ctx = context(store)
    src, params = _events_sql(q.target, ctx, q.filters, q.kinds, q.include_internal)
    counts = {d: (int(n), int(lo)) for d, n, lo in store.query(
        "SELECT e.day, count(*) FILTER (e.event = 'new'), count(*) FILTER (e.event = 'lost') "
        f"{src} AND e.day BETWEEN ? AND ? GROUP BY e.day", [*params, q.date_from, q.date_to])}
    out = []
    for d in days:
        new, lost = counts.get(d, (0, 0))
        out.append(DayCount(d, new if q.event != "lost" else 0, lost if q.event != "new" else 0))
    return out


def history_cumulative(store: Store, target: Target, date_from: dt.date, date_to: dt.date, *,
                       filters: FilterExpr | None = None,
                       kinds: frozenset[str] = BACKLINK_KINDS,
                       include_internal: bool = False) -> list[DayTotal]:
    """Live backlinks at the end of each day of the range (seed 001 /history/cumulative).

    Every link's history starts with `new` and alternates, so the live count at the end of
    a day is the running sum of (new - lost) up to it: one pass over the target's events.
    """
    days = _days(date_from, date_to)
    ctx = context(store)
    src, params = _events_sql(target, ctx, filters, kinds, include_internal)
    deltas = store.query(
        "SELECT e.day, sum(CASE WHEN e.event = 'new' THEN 1 ELSE -1 END) "
        f"{src} AND e.day <= ? GROUP BY e.day ORDER BY e.day", [*params, date_to])
    out: list[DayTotal] = []
    total = 0
    i = 0
    for d in days:
        while i < len(deltas) and deltas[i][0] <= d:
            total += int(deltas[i][1])
            i += 1
        out.append(DayTotal(d, total))
    return out


def _domain_changes_sql(target: Target, ctx: Ctx, include_internal: bool,
                        kinds: frozenset[str]) -> tuple[str, list[object]]:
    """(dom, day, ev): days on which a referring domain's live backlinks to the target went
    from none to some (new) or from some to none (lost). Seed 001 new_lost_date: "the oldest
    live backlink coming from this domain was found, or the last backlink from this domain
    was lost" — a domain is new when it starts linking, lost when its last link goes."""
    src, params = _events_sql(target, ctx, None, kinds, include_internal)
    sql = (
        "SELECT dom, day, CASE WHEN after - delta = 0 AND after > 0 THEN 'new' "
        "WHEN after - delta > 0 AND after = 0 THEN 'lost' END AS ev FROM ("
        "SELECT dom, day, delta, sum(delta) OVER (PARTITION BY dom ORDER BY day "
        "ROWS UNBOUNDED PRECEDING) AS after FROM ("
        "SELECT e.source_domain AS dom, e.day AS day, "
        f"sum(CASE WHEN e.event = 'new' THEN 1 ELSE -1 END) AS delta {src} AND e.day <= ? "
        "GROUP BY ALL))")
    return sql, params


RefDomainHistoryOrder = Literal["date", "domain_inlink_rank", "inlink_rank"]
_RD_ORDER = {"date": "c.day DESC, c.ev, c.dom", "domain_inlink_rank": "dr DESC, c.day DESC, c.dom",
             "inlink_rank": "ir DESC, c.day DESC, c.dom"}


def refdomains_history(store: Store, target: Target, date_from: dt.date, date_to: dt.date, *,
                       event: Literal["new", "lost"] | None = None,
                       order_by: RefDomainHistoryOrder = "date", limit: int = 100,
                       kinds: frozenset[str] = BACKLINK_KINDS,
                       include_internal: bool = False) -> list[RefDomainChange]:
    """Referring domains won or lost in the range (seed 001 /refdomains/history), with their
    live backlinks now."""
    _check_limit(limit)
    _check_event(event)
    _days(date_from, date_to)
    if order_by not in _RD_ORDER:
        raise InvalidInput("order_by", f"{order_by!r} is not one of {', '.join(_RD_ORDER)}")
    ctx = context(store)
    changes, cparams = _domain_changes_sql(target, ctx, include_internal, kinds)
    live, lparams = backlinks_sql([target], kinds=kinds, include_internal=include_internal)
    join, dr = domain_rank_join(ctx, "c.dom")
    event_sql = "" if event is None else " AND ev = ?"
    rows = store.query(
        f"WITH c AS MATERIALIZED (SELECT * FROM ({changes}) WHERE ev IS NOT NULL "
        f"AND day BETWEEN ? AND ?{event_sql}), "
        f"b AS (SELECT dom, count(*) AS bl, count(*) FILTER (NOT nf) AS dbl, "
        f"min(first_seen) AS fs FROM ({live}) WHERE dom IN (SELECT dom FROM c) GROUP BY dom), "
        f"h AS ({home_rank_sql(ctx, '(SELECT DISTINCT dom FROM c)')}) "
        f"SELECT c.day, c.ev, c.dom, coalesce(b.bl, 0), coalesce(b.dbl, 0), b.fs, {dr} AS dr, "
        f"coalesce(h.ir, 0) AS ir FROM c LEFT JOIN b ON b.dom = c.dom "
        f"LEFT JOIN h ON h.dom = c.dom {join} ORDER BY {_RD_ORDER[order_by]} LIMIT ?",
        [*cparams, date_to, date_from, date_to, *([event] if event else []), *lparams, limit])
    return [RefDomainChange(day, str(ev), str(dom), int(bl), int(dbl), fs, int(r), int(ir))
            for day, ev, dom, bl, dbl, fs, r, ir in rows]


def refdomains_history_counts(store: Store, target: Target, date_from: dt.date,
                              date_to: dt.date, *, event: Literal["new", "lost"] | None = None,
                              kinds: frozenset[str] = BACKLINK_KINDS,
                              include_internal: bool = False) -> list[DayCount]:
    """Referring domains won and lost per day, every day of the range, oldest first
    (seed 001 /refdomains/history/count)."""
    _check_event(event)
    days = _days(date_from, date_to)
    ctx = context(store)
    changes, params = _domain_changes_sql(target, ctx, include_internal, kinds)
    counts = {d: (int(n), int(lo)) for d, n, lo in store.query(
        "SELECT day, count(*) FILTER (ev = 'new'), count(*) FILTER (ev = 'lost') "
        f"FROM ({changes}) WHERE day BETWEEN ? AND ? GROUP BY day",
        [*params, date_to, date_from, date_to])}
    return [DayCount(d, counts.get(d, (0, 0))[0] if event != "lost" else 0,
                     counts.get(d, (0, 0))[1] if event != "new" else 0) for d in days]
