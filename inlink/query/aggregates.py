"""Aggregates over a target's live backlinks: summary, metrics and counts (batched, up to 100
targets in one statement), anchors, referring domains, referring IPs, indexed pages (seed 001).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from inlink.errors import InvalidInput
from inlink.index.store import Store
from inlink.query import heavy, rankcache, small
from inlink.query.models import (
    BACKLINK_KINDS,
    CountItem,
    GroupRow,
    Metrics,
    Mode,
    RefDomain,
    Summary,
    Target,
)
from inlink.query.sql import (
    ANCHOR_TEXT_SQL,
    HOME_PAGE_SQL,
    SOURCE_TLD_SQL,
    Ctx,
    context,
    kinds_sql,
    label_sql,
    scope_sql,
)

T = TypeVar("T")

#: Seed 001: batch endpoints take "100 maximum" targets.
MAX_TARGETS = 100
MAX_LIST = 10_000

# The columns aggregates need, computed once per link row of the batch (in small.T... order
# after `_t`): the stored ones as small.RAW reads them, the others derived.
_RAW = dict(small.RAW)
_BASE = (*((n, _RAW[n]) for n in ("dom", "ip", "subnet", "nf", "kind")),
         ("home", HOME_PAGE_SQL), ("edu", label_sql("edu")), ("gov", label_sql("gov")),
         ("anchor", ANCHOR_TEXT_SQL), ("page", _RAW["page"]), ("tld", SOURCE_TLD_SQL),
         *((n, _RAW[n]) for n in ("country", "first_seen", "last_seen")))
_BASE_COLS = ", ".join(f"{sql} AS {name}" for name, sql in _BASE)


def _fetch_small(store: Store, targets: Sequence[Target],
                 names: frozenset[str] | None = None) -> dict[int, list[small.Row]] | None:
    """small.fetch of the batch's rows with the `_BASE` columns in `names` (None: all); the
    others are None. Every string column is a dictionary to decode per row group, so a
    small answer reads only what it aggregates."""
    base, params = backlinks_sql(targets, small.raw_cols(names))
    return small.fetch(store, base, params, names=names)


def _check_targets(targets: Sequence[Target]) -> None:
    if not targets:
        raise InvalidInput("target", "give at least one target")
    if len(targets) > MAX_TARGETS:
        raise InvalidInput("target", f"at most {MAX_TARGETS} targets per call, "
                                     f"got {len(targets)}")


def backlinks_sql(targets: Sequence[Target], cols: str = _BASE_COLS,
                  kinds: frozenset[str] = BACKLINK_KINDS,
                  include_internal: bool = False) -> tuple[str, list[object]]:
    """Live backlinks of several targets in one statement, tagged with the target's index
    `_t`. One target: plain scope terms. Several: one scan filtered by `target_domain IN
    (list)` (pruned by zone maps like a single target) joined to the target list; measured
    35x faster than a UNION ALL of 100 scoped branches (docs/query.md)."""
    kind, kparams = kinds_sql(kinds)
    internal = "" if include_internal else " AND NOT l.internal"
    if len(targets) == 1:
        scope, sparams = scope_sql(targets[0])
        return (f"SELECT 0 AS _t, {cols} FROM links l "
                f"WHERE {scope} AND l.live{internal} AND {kind}", [*sparams, *kparams])
    idx = list(range(len(targets)))
    doms = [t.domain for t in targets]
    hosts = [None if t.mode is Mode.DOMAIN else t.host for t in targets]
    keys = [t.key if t.mode is Mode.URL else None for t in targets]
    sql = (f"SELECT t._t, {cols} FROM links l JOIN (SELECT unnest(?::INTEGER[]) AS _t, "
           "unnest(?::VARCHAR[]) AS t_dom, unnest(?::VARCHAR[]) AS t_host, "
           "unnest(?::VARCHAR[]) AS t_key) t ON l.target_domain = t.t_dom "
           "AND (t.t_host IS NULL OR l.target_host = t.t_host) "
           "AND (t.t_key IS NULL OR l.target_key = t.t_key) "
           f"WHERE l.target_domain IN (SELECT unnest(?::VARCHAR[])) AND l.live{internal} "
           f"AND {kind}")
    return sql, [idx, doms, hosts, keys, sorted(set(doms)), *kparams]


def _ints(row: tuple[Any, ...]) -> list[int]:
    return [int(v or 0) for v in row]


_METRIC_SQL = ("count(*), count(DISTINCT dom), count(DISTINCT subnet), count(DISTINCT ip), "
               "count(*) FILTER (nf), count(*) FILTER (NOT nf), count(*) FILTER (edu), "
               "count(*) FILTER (gov)")


def metrics(store: Store, targets: Sequence[Target]) -> list[Metrics]:
    """Seed 001 /metrics for up to 100 targets, in the order given, in one statement."""
    _check_targets(targets)
    stored = _stored_summaries(store, targets)
    if stored:
        return _merge_stored(targets, stored, lambda s, t: Metrics(t, *_ints_of(s)),
                             lambda rest: metrics(store, rest))
    fetched = _fetch_small(store, targets, frozenset({"dom", "ip", "subnet", "nf", "edu",
                                                      "gov"}))
    if fetched is not None:
        rows = {i: small.metric_values(r) for i, r in fetched.items()}
    else:
        base, params = backlinks_sql(targets)
        rows = {int(r[0]): _ints(r[1:]) for r in store.query(
            f"SELECT _t, {_METRIC_SQL} FROM ({base}) GROUP BY _t", params)}
    return [Metrics(t, *rows.get(i, [0] * 8)) for i, t in enumerate(targets)]


_COUNT_NEEDS = {"count(*)": frozenset(), "count(DISTINCT dom)": frozenset({"dom"}),
                "count(DISTINCT ip)": frozenset({"ip"}),
                "count(DISTINCT subnet)": frozenset({"subnet"})}
_COUNT_FIELD = {"count(*)": "backlinks", "count(DISTINCT dom)": "refdomains",
                "count(DISTINCT ip)": "ips", "count(DISTINCT subnet)": "subnets"}


def _stored_summaries(store: Store, targets: Sequence[Target]) -> dict[int, Summary]:
    """Materialized summaries of the heavy targets among these (inlink.query.heavy)."""
    out = {}
    for i, t in enumerate(targets):
        s = heavy.summary(store, t)
        if s is not None:
            out[i] = s
    return out


def _merge_stored(targets: Sequence[Target], stored: dict[int, Summary],
                  answer: Callable[[Summary, Target], T],
                  compute: Callable[[list[Target]], list[T]]) -> list[T]:
    """Answers in target order: from the stored summaries where there is one, the rest
    computed in one call."""
    missing = [t for i, t in enumerate(targets) if i not in stored]
    rest = iter(compute(missing) if missing else [])
    return [answer(stored[i], t) if i in stored else next(rest)
            for i, t in enumerate(targets)]


def _ints_of(s: Summary) -> list[int]:
    return [s.backlinks, s.refdomains, s.subnets, s.ips, s.nofollow_backlinks,
            s.dofollow_backlinks, s.edu_backlinks, s.gov_backlinks]


def _count(store: Store, targets: Sequence[Target], expr: str) -> list[int]:
    _check_targets(targets)
    stored = _stored_summaries(store, targets)
    if stored:
        return _merge_stored(targets, stored, lambda s, _t: int(getattr(s, _COUNT_FIELD[expr])),
                             lambda rest: _count(store, rest, expr))
    fetched = _fetch_small(store, targets, _COUNT_NEEDS[expr])
    if fetched is not None:
        counts = {i: small.count_value(r, expr) for i, r in fetched.items()}
    else:
        base, params = backlinks_sql(targets)
        counts = {int(r[0]): int(r[1]) for r in store.query(
            f"SELECT _t, {expr} FROM ({base}) GROUP BY _t", params)}
    return [counts.get(i, 0) for i in range(len(targets))]


def count_backlinks(store: Store, targets: Sequence[Target]) -> list[int]:
    """Live backlinks per target (seed 001 /count)."""
    return _count(store, targets, "count(*)")


def count_refdomains(store: Store, targets: Sequence[Target]) -> list[int]:
    """Distinct referring registrable domains per target (seed 001 /refdomains/count)."""
    return _count(store, targets, "count(DISTINCT dom)")


def count_ips(store: Store, targets: Sequence[Target]) -> list[int]:
    """Distinct referring IPs per target (seed 001 /referring-ips/count)."""
    return _count(store, targets, "count(DISTINCT ip)")


def count_subnets(store: Store, targets: Sequence[Target]) -> list[int]:
    """Distinct referring /24 subnets per target (seed 001 /referring-subnets/count)."""
    return _count(store, targets, "count(DISTINCT subnet)")


def _target_ranks(store: Store, ctx: Ctx,
                  targets: Sequence[Target]) -> list[tuple[int, int, int, int, str]]:
    """(inlink_rank, rank_1000, domain_inlink_rank, domain_rank_1000, page) per target.

    A URL target has its own InLink Rank; a host or domain target the best of its root
    pages (http/https, and for a domain also www.), since seed 001 gives "the InLink Rank
    of the target URL" for every mode.
    """
    cands: list[list[str]] = []
    for t in targets:
        if t.mode is Mode.URL:
            assert t.key is not None
            cands.append([t.key])
        else:
            hosts = [t.value] if t.mode is Mode.HOST else [t.domain, "www." + t.domain]
            cands.append([f"{s}://{h}/" for h in hosts for s in ("https", "http")])
    out = [(0, 0, 0, 0, c[0]) for c in cands]
    if ctx.run_id is None:
        return out
    keys = sorted({k for c in cands for k in c})
    pages = {k: (r, r1) for k, (r, r1, _) in rankcache.page_ranks(store, ctx.run_id,
                                                                  keys).items()}
    domains = rankcache.domain_ranks(store, ctx.run_id, sorted({t.domain for t in targets}))
    for i, (t, c) in enumerate(zip(targets, cands, strict=True)):
        best = max(c, key=lambda k: (pages.get(k, (-1, -1)), k == c[0]))
        r, r1 = pages.get(best, (0, 0))
        dr, dr1 = domains.get(t.domain, (0, 0))
        out[i] = (r, r1, dr, dr1, best)
    return out


_SUMMARY_DEFAULTS = (10, 5, 5, 5)


def summarize(store: Store, targets: Sequence[Target], *, top_anchors: int = 10,
              top_pages: int = 5, top_tlds: int = 5, top_countries: int = 5) -> list[Summary]:
    """Seed 001 /summary for up to 100 targets: two statements for the whole batch.

    Top lists order by their count, then by value (ascending) for equal counts.
    """
    _check_targets(targets)
    if (top_anchors, top_pages, top_tlds, top_countries) == _SUMMARY_DEFAULTS:
        stored = _stored_summaries(store, targets)
        if stored:
            return _merge_stored(targets, stored,
                                 lambda s, t: dataclasses.replace(s, target=t),
                                 lambda rest: summarize(store, rest))
    ctx = context(store)
    n = max(top_anchors, top_pages, top_tlds, top_countries)
    fetched = _fetch_small(store, targets)
    if fetched is not None:
        scalars, tops = _summary_small(fetched, n)
    else:
        scalars, tops = _summary_sql(store, *backlinks_sql(targets), n)

    def top(i: int, what: str, by: str, k: int) -> list[CountItem]:
        ranked = sorted(tops.get((i, what, by), []), key=lambda p: p[0])
        return [item for pos, item in ranked if pos <= k]

    ranks = _target_ranks(store, ctx, targets)
    out: list[Summary] = []
    for i, t in enumerate(targets):
        s = scalars.get(i, [0] * 20)
        (backlinks, refdomains, subnets, ips, nofollow, dofollow, edu, gov, home, home_do,
         text, image, redirect, do_rd, home_rd, edu_rd, gov_rd, anchors, do_anchors,
         pages) = s[:20]
        out.append(Summary(
            t, backlinks, refdomains, subnets, ips, nofollow, dofollow, home, home_do, text,
            image, redirect, edu, gov, do_rd, home_rd, edu_rd, gov_rd, anchors, do_anchors,
            pages, ranks[i][0], ranks[i][2],
            top(i, "anchor", "bl", top_anchors), top(i, "anchor", "rd", top_anchors),
            top(i, "page", "bl", top_pages), top(i, "page", "rd", top_pages),
            top(i, "tld", "bl", top_tlds), top(i, "country", "bl", top_countries)))
    return out


_Tops = dict[tuple[int, str, str], list[tuple[int, CountItem]]]


def _summary_sql(store: Store, base: str, params: list[object], n: int
                 ) -> tuple[dict[int, list[int]], _Tops]:
    """summarize()'s figures by SQL: two statements for the whole batch."""
    scalar_sql = (
        f"SELECT _t, {_METRIC_SQL}, count(*) FILTER (home), count(*) FILTER (home AND NOT nf), "
        "count(*) FILTER (kind = 'anchor'), count(*) FILTER (kind = 'image'), "
        "count(*) FILTER (kind IN ('redirect', 'meta')), "
        "count(DISTINCT dom) FILTER (NOT nf), count(DISTINCT dom) FILTER (home), "
        "count(DISTINCT dom) FILTER (edu), count(DISTINCT dom) FILTER (gov), "
        "count(DISTINCT anchor), count(DISTINCT anchor) FILTER (NOT nf), count(DISTINCT page) "
        f"FROM ({base}) GROUP BY _t")
    scalars = {int(r[0]): _ints(r[1:]) for r in store.query(scalar_sql, params)}
    top_sql = (
        f"WITH b AS MATERIALIZED ({base}), g AS ("
        "SELECT _t, 'anchor' AS what, anchor AS v, count(*) AS bl, count(DISTINCT dom) AS rd "
        "FROM b GROUP BY ALL "
        "UNION ALL SELECT _t, 'page', page, count(*), count(DISTINCT dom) FROM b GROUP BY ALL "
        "UNION ALL SELECT _t, 'tld', tld, count(*), count(DISTINCT dom) FROM b "
        "WHERE tld <> '' GROUP BY ALL "
        "UNION ALL SELECT _t, 'country', country, count(*), count(DISTINCT dom) FROM b "
        "WHERE country IS NOT NULL GROUP BY ALL) "
        "SELECT _t, what, v, bl, rd, "
        "row_number() OVER (PARTITION BY _t, what ORDER BY bl DESC, v) AS rb, "
        "row_number() OVER (PARTITION BY _t, what ORDER BY rd DESC, v) AS rr "
        "FROM g QUALIFY rb <= ? OR rr <= ?")
    tops: _Tops = {}
    for t, what, v, bl, rd, rb, rr in store.query(top_sql, [*params, n, n]):
        item = CountItem(str(v), int(bl), int(rd))
        tops.setdefault((int(t), str(what), "bl"), []).append((int(rb), item))
        tops.setdefault((int(t), str(what), "rd"), []).append((int(rr), item))
    return scalars, tops


_TOP_COLS: dict[str, tuple[int, Any]] = {
    "anchor": (small.ANCHOR, None), "page": (small.PAGE, None),
    "tld": (small.TLD, lambda r: r[small.TLD] != ""),
    "country": (small.COUNTRY, lambda r: r[small.COUNTRY] is not None),
}


def _summary_small(fetched: dict[int, list[small.Row]], n: int
                   ) -> tuple[dict[int, list[int]], _Tops]:
    """summarize()'s figures from fetched rows (the small-target path; same answers)."""
    scalars = {i: small.summary_values(rows) for i, rows in fetched.items()}
    tops: _Tops = {}
    for i, rows in fetched.items():
        for what, (col, keep) in _TOP_COLS.items():
            by_bl, by_rd = small.top(rows, col, n, keep)
            tops[(i, what, "bl")] = [(pos, CountItem(str(v), bl, rd))
                                     for pos, (v, bl, rd) in enumerate(by_bl, 1)]
            tops[(i, what, "rd")] = [(pos, CountItem(str(v), bl, rd))
                                     for pos, (v, bl, rd) in enumerate(by_rd, 1)]
    return scalars, tops


def _check_limit(limit: int) -> None:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise InvalidInput("limit", f"must be within 1..{MAX_LIST}, got {limit!r}")


GroupOrder = Literal["backlinks", "refdomains"]


def _group_rows(store: Store, target: Target, key: str, where: str, order_by: str,
                limit: int) -> list[GroupRow]:
    _check_limit(limit)
    if order_by not in ("backlinks", "refdomains"):
        raise InvalidInput("order_by", f"{order_by!r} is not one of backlinks, refdomains")
    stored = heavy.group_rows(store, target, _GROUP_NAMES[key], order_by, limit)
    if stored is not None:
        return stored
    fetched = _fetch_small(store, [target], frozenset({key, "dom", "nf", "first_seen",
                                                       "last_seen", "subnet"}))
    if fetched is not None:
        keep = _GROUP_KEEP[where]
        return [GroupRow(str(v), bl, rd, nf, df, fs, ls) for v, bl, rd, nf, df, fs, ls
                in small.group_rows(fetched.get(0, []), _GROUP_COLS[key], keep, order_by,
                                    limit)]
    first, second = ("bl", "rd") if order_by == "backlinks" else ("rd", "bl")
    base, params = backlinks_sql([target])
    rows = store.query(
        f"SELECT {key} AS v, count(*) AS bl, count(DISTINCT dom) AS rd, "
        "count(*) FILTER (nf), count(*) FILTER (NOT nf), min(first_seen), max(last_seen) "
        f"FROM ({base}) WHERE {where} GROUP BY v "
        f"ORDER BY {first} DESC, {second} DESC, v LIMIT ?", [*params, limit])
    return [GroupRow(str(v), int(bl), int(rd), int(nf), int(df), fs, ls)
            for v, bl, rd, nf, df, fs, ls in rows]


_GROUP_COLS = {"anchor": small.ANCHOR, "ip": small.IP, "page": small.PAGE}
_GROUP_NAMES = {"anchor": "anchors", "ip": "ips", "page": "pages"}
_GROUP_KEEP: dict[str, Any] = {"true": None,
                               "subnet IS NOT NULL": lambda r: r[small.SUBNET] is not None}


def list_anchors(store: Store, target: Target, *, order_by: GroupOrder = "backlinks",
                 limit: int = 100) -> list[GroupRow]:
    """Anchor texts of a target's backlinks (seed 001 /anchors); an image link without text
    counts under its alt text. Ties: the other count, then the anchor."""
    return _group_rows(store, target, "anchor", "true", order_by, limit)


def list_referring_ips(store: Store, target: Target, *, order_by: GroupOrder = "backlinks",
                       limit: int = 100) -> list[GroupRow]:
    """IPv4 addresses serving the referring pages (seed 001 /referring-ips: "Information
    about IPv6 is not served")."""
    return _group_rows(store, target, "ip", "subnet IS NOT NULL", order_by, limit)


def indexed_pages(store: Store, target: Target, *, order_by: GroupOrder = "backlinks",
                  limit: int = 100) -> list[GroupRow]:
    """Pages of the target with at least one live backlink (seed 001 /indexed-pages);
    http and https of a path are different pages."""
    return _group_rows(store, target, "page", "true", order_by, limit)


RefDomainOrder = Literal["first_seen", "domain_inlink_rank", "inlink_rank"]
_REFDOMAIN_ORDER = {
    # Seed 001 date_found: "most recent (new) referring domains first".
    "first_seen": "fs DESC, dom",
    "domain_inlink_rank": "dr DESC, dom",
    "inlink_rank": "ir DESC, dom",
}


def home_rank_sql(ctx: Ctx, domains_rel: str) -> str:
    """(dom, ir): the best InLink Rank of each domain's home page, http/https, with and
    without www. (seed 001 refdomains order_by inlink_rank: "InLink Rank of their home
    page")."""
    if ctx.run_id is None:
        return f"SELECT dom, 0 AS ir FROM {domains_rel}"
    return (f"SELECT c.dom, max(p.inlink_rank) AS ir FROM (SELECT dom, unnest(["
            "'http://' || dom || '/', 'https://' || dom || '/', "
            "'http://www.' || dom || '/', 'https://www.' || dom || '/']) AS k "
            f"FROM {domains_rel}) c JOIN rank_pages p ON p.run_id = {int(ctx.run_id)} "
            "AND p.url_key = c.k GROUP BY c.dom")


def domain_rank_join(ctx: Ctx, col: str) -> tuple[str, str]:
    """(join clause, expr) for the Domain InLink Rank of registrable domain column `col`."""
    if ctx.run_id is None:
        return "", "0"
    return (f"LEFT JOIN rank_domains rd ON rd.run_id = {int(ctx.run_id)} AND rd.domain = {col}",
            "coalesce(rd.inlink_rank, 0)")


def list_refdomains(store: Store, target: Target, *, order_by: RefDomainOrder = "first_seen",
                    limit: int = 100) -> list[RefDomain]:
    """Referring domains of a target with their backlink counts and ranks (seed 001
    /refdomains)."""
    _check_limit(limit)
    if order_by not in _REFDOMAIN_ORDER:
        raise InvalidInput("order_by", f"{order_by!r} is not one of "
                                       f"{', '.join(_REFDOMAIN_ORDER)}")
    stored = heavy.refdomains(store, target, order_by, limit)
    if stored is not None:
        return stored
    ctx = context(store)
    fetched = _fetch_small(store, [target], frozenset({"dom", "nf", "first_seen",
                                                       "last_seen"}))
    if fetched is not None:
        return _refdomains_small(store, ctx, fetched.get(0, []), order_by, limit)
    base, params = backlinks_sql([target])
    join, dr = domain_rank_join(ctx, "r.dom")
    rows = store.query(
        f"WITH r AS MATERIALIZED (SELECT dom, count(*) AS bl, count(*) FILTER (NOT nf) AS dbl, "
        f"min(first_seen) AS fs, max(last_seen) AS ls FROM ({base}) GROUP BY dom), "
        f"h AS ({home_rank_sql(ctx, 'r')}) "
        f"SELECT r.dom, bl, dbl, fs, ls, {dr} AS dr, coalesce(h.ir, 0) AS ir FROM r "
        f"{join} LEFT JOIN h ON h.dom = r.dom ORDER BY {_REFDOMAIN_ORDER[order_by]} LIMIT ?",
        [*params, limit])
    return [RefDomain(str(d), int(bl), int(dbl), fs, ls, int(r), int(ir))
            for d, bl, dbl, fs, ls, r, ir in rows]


def _refdomains_small(store: Store, ctx: Ctx, rows: list[small.Row], order_by: str,
                      limit: int) -> list[RefDomain]:
    """list_refdomains() from fetched rows: groups in Python, ranks from the run in memory."""
    groups = sorted(small.groups(rows, small.DOM))
    doms = [g[0] for g in groups]
    dr: dict[str, int] = {}
    ir: dict[str, int] = {}
    if ctx.run_id is not None and doms:
        dr = {d: r for d, (r, _) in rankcache.domain_ranks(store, ctx.run_id, doms).items()}
        ir = rankcache.home_ranks(store, ctx.run_id, doms)
    out = [RefDomain(d, bl, df, fs, ls, dr.get(d, 0), ir.get(d, 0))
           for d, bl, _, _, df, fs, ls in groups]
    if order_by == "first_seen":
        out.sort(key=lambda x: x.first_seen, reverse=True)  # stable: domain order kept
    elif order_by == "domain_inlink_rank":
        out.sort(key=lambda x: x.domain_inlink_rank, reverse=True)
    else:
        out.sort(key=lambda x: x.inlink_rank, reverse=True)
    return out[:limit]


def refdomain_rank_distribution(store: Store, target: Target, *,
                                per: Literal["domain", "host"] = "domain") -> list[tuple[int,
                                                                                         int]]:
    """(domain_inlink_rank, referring domains or hosts) ascending by rank (seed 001
    /authority/domain/distribution, histogramMode); a host counts with its domain's rank."""
    if per not in ("domain", "host"):
        raise InvalidInput("histogram_mode", f"{per!r} is not one of domain, host")
    ctx = context(store)
    who = "dom" if per == "domain" else "host"
    base, params = backlinks_sql([target], _BASE_COLS + ", l.source_host AS host")
    join, dr = domain_rank_join(ctx, "b.dom")
    rows = store.query(f"SELECT {dr} AS rank, count(DISTINCT b.{who}) FROM ({base}) b {join} "
                       "GROUP BY 1 ORDER BY 1", params)
    return [(int(r), int(c)) for r, c in rows]
