"""Backlink listings: filter, order, group and page a target's links (seed 001 /all, /raw;
seed 004 /backlinks/live), with signed key-set cursors that survive rows being added.
"""

from __future__ import annotations

import dataclasses
import operator
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from inlink import urls
from inlink.errors import InvalidInput
from inlink.index.store import Store
from inlink.query import cursor as cursors
from inlink.query import heavy, rankcache
from inlink.query.models import (
    INDIRECT_KINDS,
    MAX_LIMIT,
    MAX_OFFSET,
    MAX_ORDER_RULES,
    Backlink,
    BacklinkColumns,
    BacklinkPage,
    BacklinkQuery,
    IndirectHop,
    Mode,
    Target,
    backlink_rows,
)
from inlink.query.sql import (
    FIELDS,
    GROUP_FIELDS,
    Ctx,
    compile_filter,
    context,
    field,
    kinds_sql,
    scope_sql,
    sort_sql,
)
from inlink.rank.graph import passing_link

#: Backlink's columns in dataclass order (group_count and indirect_path are added after).
ROW_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(Backlink) if f.name not in ("group_count",
                                                                   "indirect_path"))
#: Redirect chains longer than this are broken (docs/data-model.md: more than 5 hops).
MAX_HOPS = 5


def status_sql(status: str) -> str:
    if status == "live":
        return "l.live"
    if status == "lost":
        return "NOT l.live"
    if status == "all":
        return "true"
    raise InvalidInput("status", f"{status!r} is not one of live, lost, all")


@dataclass(frozen=True, slots=True)
class _Via:
    """A page outside the scope that reaches it through redirect/canonical links."""

    final_key: str
    final_url: str
    final_host: str
    final_domain: str
    path: tuple[IndirectHop, ...]


def _in_scope(target: Target, key: str, host: str, domain: str) -> bool:
    if target.mode is Mode.DOMAIN:
        return domain == target.domain
    if target.mode is Mode.HOST:
        return host == target.host
    return key == target.key


def _via_pages(store: Store, target: Target) -> dict[str, _Via]:
    """Pages that redirect (HTTP or meta refresh) or canonicalize into the target, following
    chains up to MAX_HOPS; each with the in-scope page it ends at and the path to it.

    The index keeps only the redirect/canonical link live on such a page
    (docs/data-model.md), so a live link of those kinds is the page's current state.
    """
    kinds = sorted(INDIRECT_KINDS)
    marks = ", ".join("?" for _ in kinds)
    scope, params = scope_sql(target)
    cols = (f"l.source_key, {FIELDS['source_url'].sql}, l.source_host, l.source_domain, "
            f"l.kind, l.target_key, {FIELDS['target_url'].sql}, l.target_host, "
            "l.target_domain, sp.status")
    rows = store.query(
        f"SELECT {cols} FROM links l LEFT JOIN pages sp ON sp.url_key = l.source_key "
        f"WHERE {scope} AND l.live AND l.kind IN ({marks}) AND l.source_key <> l.target_key",
        [*params, *kinds])
    via: dict[str, _Via] = {}
    frontier: dict[str, tuple[str, str]] = {}   # key -> (domain) of pages added last hop
    for skey, surl, shost, sdom, kind, tkey, turl, thost, tdom, status in rows:
        if _in_scope(target, skey, shost, sdom) or skey in via:
            continue
        via[skey] = _Via(tkey, turl, thost, tdom, (IndirectHop(kind, surl, status),))
        frontier[skey] = (sdom, surl)
    for _ in range(MAX_HOPS - 1):
        if not frontier:
            break
        keys = sorted(frontier)
        domains = sorted({d for d, _ in frontier.values()})
        rows = store.query(
            f"SELECT {cols} FROM links l LEFT JOIN pages sp ON sp.url_key = l.source_key "
            "WHERE l.target_domain IN (SELECT unnest(?::VARCHAR[])) "
            "AND l.target_key IN (SELECT unnest(?::VARCHAR[])) "
            f"AND l.live AND l.kind IN ({marks}) AND l.source_key <> l.target_key",
            [domains, keys, *kinds])
        nxt: dict[str, tuple[str, str]] = {}
        for skey, surl, shost, sdom, kind, tkey, _turl, _th, _td, status in sorted(rows):
            if _in_scope(target, skey, shost, sdom) or skey in via:
                continue
            inner = via[tkey]
            via[skey] = _Via(inner.final_key, inner.final_url, inner.final_host,
                             inner.final_domain, (IndirectHop(kind, surl, status), *inner.path))
            nxt[skey] = (sdom, surl)
        frontier = nxt
    return via


def _fingerprint(q: BacklinkQuery) -> str:
    return cursors.fingerprint("backlinks", q.target.mode.value, q.target.value, q.filters,
                               q.order, q.group, q.status, sorted(q.kinds), q.include_internal,
                               q.include_indirect)


def _validate(q: BacklinkQuery) -> None:
    if not isinstance(q.limit, int) or not 1 <= q.limit <= MAX_LIMIT:
        raise InvalidInput("limit", f"must be within 1..{MAX_LIMIT}, got {q.limit!r}")
    if not isinstance(q.offset, int) or not 0 <= q.offset <= MAX_OFFSET:
        raise InvalidInput("offset", f"must be within 0..{MAX_OFFSET}, got {q.offset!r}")
    if q.cursor is not None and q.offset:
        raise InvalidInput("offset", "cannot be combined with a cursor")
    if q.fields is not None and not q.fields <= _ROW_SET:
        raise InvalidInput("fields", "unknown backlink field(s): "
                                     + ", ".join(sorted(q.fields - _ROW_SET)))
    if len(q.order) > MAX_ORDER_RULES:
        raise InvalidInput("order_by", f"at most {MAX_ORDER_RULES} sort rules")
    if q.group is not None:
        if q.group.field not in GROUP_FIELDS:
            raise InvalidInput("group", f"cannot group by {q.group.field!r}; use one of "
                                        f"{', '.join(sorted(GROUP_FIELDS))}")
        if not isinstance(q.group.per, int) or not 1 <= q.group.per <= 1000:
            raise InvalidInput("group", f"per must be within 1..1000, got {q.group.per!r}")


def _after(n_keys: int, desc: list[bool], values: list[Any]) -> tuple[str, list[object]]:
    """Key-set condition: rows strictly after `values` in the order (k0, k1, ..., _id)."""
    ors: list[str] = []
    params: list[object] = []
    for i in range(n_keys):
        terms = [f"_k{j} = ?" for j in range(i)]
        params.extend(values[:i])
        terms.append(f"_k{i} {'<' if desc[i] else '>'} ?")
        params.append(values[i])
        ors.append("(" + " AND ".join(terms) + ")")
    return "(" + " OR ".join(ors) + ")", params


class _Plan:
    """The SQL of a listing: the matching rows with their sort keys (and group numbers), and,
    for a plain listing (`flat`), with `row_cols` (`_link_cols`) as `_c0...`.

    `page(...)` is one page's statement. A plain listing (no group, no indirect links) is one
    flat SELECT with the cursor's condition on the key aliases: each subquery level and each
    selected NULL cost DuckDB ~0.3-1 ms on a 100-row page (docs/query.md). A plain listing of
    a heavy target in the default order reads the ordered copy (`copy_version`, see
    inlink.query.heavy) instead of sorting the target's rows.
    """

    def __init__(self, store: Store, q: BacklinkQuery, ctx: Ctx,
                 row_cols: list[str] | None = None, ranks: Sequence[str] = ()) -> None:
        self.ctx = ctx
        self.keys: list[str] = []
        self.desc: list[bool] = []
        joins: set[str] = set()
        for o in q.order:
            f = field(o.field, where="order_by")
            if f.join:
                joins.add(f.join)
            if o.field != "link_id":
                self.keys.append(ctx.expr(sort_sql(o.field)))
                self.desc.append(o.desc)
        # link_id makes the order total: the key-set cursor needs a unique last key.
        self.keys.append("l.link_id")
        self.desc.append(next((o.desc for o in q.order if o.field == "link_id"), False))
        fsql, fparams, fjoins = compile_filter(q.filters, ctx)
        joins |= fjoins
        group_sql = "NULL"
        if q.group is not None:
            g = field(q.group.field, where="group")
            if g.join:
                joins.add(g.join)
            group_sql = ctx.expr(g.sql)
        self.flat = _is_flat(q)
        keys_sql = ", ".join(f"{k} AS _k{i}" for i, k in enumerate(self.keys))
        # A flat page's tuple: the keys, then the row columns that are not keys already;
        # `row_at[i]` is where row column i is in it.
        extra: list[str] = []
        self.row_at: list[int] = []
        for c in row_cols if self.flat and row_cols else []:
            if c not in self.keys and c not in extra:
                extra.append(c)
            at = self.keys.index(c) if c in self.keys else len(self.keys) + extra.index(c)
            self.row_at.append(at)
        rows_sql = "".join(f", {c} AS _c{i}" for i, c in enumerate(extra))
        base_cols = f"{keys_sql}, l.target_domain AS _td, {group_sql} AS _g"
        kinds, kparams = kinds_sql(q.kinds)
        common = f"{status_sql(q.status)} AND {kinds} AND {fsql}"
        scope, sparams = scope_sql(q.target)
        internal = "" if q.include_internal else " AND NOT l.internal"
        joined = ctx.joins(joins)
        where = f"WHERE {scope}{internal} AND {common}"
        scoped = f"FROM links l {joined} {where}"
        self.via: dict[str, _Via] = {}
        select = f"SELECT {keys_sql}{rows_sql}"
        self.flat_sql = f"{select} {scoped}"
        # (the copy adds the wanted ranks, stored, and the positions at the end)
        self.width = len(self.keys) + len(extra) if self.flat else len(self.keys) + 2
        # The ordered copy holds live, non-internal rows in (first_seen DESC, link_id) order;
        # a join could change the order rows come out in, so joined listings sort.
        self.copy_version = None
        if (self.flat and q.status == "live" and not q.include_internal and not joins
                and self.keys == ["l.first_seen", "l.link_id"] and self.desc == [True, False]):
            self.copy_version = heavy.listing_version(store, q.target, ctx.run_id)
        stored = "".join(f", l.{name}" for name in ranks)
        self.copy_sql = (f"{select}{stored}, l.pos AS _pos "
                         f"FROM {heavy.LISTING_TABLE} l {where} AND l.version = ?")
        parts = [f"SELECT {base_cols} {scoped}"]
        params: list[object] = [*sparams, *kparams, *fparams]
        if q.include_indirect:
            self.via = _via_pages(store, q.target)
        if self.via:
            vkeys = sorted(self.via)
            vdoms = sorted({urls.registrable_domain(urls.key_host(k)) for k in vkeys})
            finals = [self.via[k].final_domain for k in vkeys]
            vinternal = "" if q.include_internal else " AND l.source_domain <> v.final_domain"
            parts.append(
                f"SELECT {base_cols} FROM links l JOIN (SELECT unnest(?::VARCHAR[]) AS via_key, "
                "unnest(?::VARCHAR[]) AS final_domain) v ON l.target_key = v.via_key "
                f"{joined} WHERE l.target_domain IN (SELECT unnest(?::VARCHAR[])){vinternal} "
                f"AND {common}")
            params += [vkeys, finals, vdoms, *kparams, *fparams]
        self.base = " UNION ALL ".join(parts)
        self.params = params
        order_cols = [f"_k{i} {'DESC' if d else 'ASC'}" for i, d in enumerate(self.desc)]
        self.order_sql = ", ".join(order_cols)
        if q.group is not None:
            self.rows_sql = (f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY _g "
                             f"ORDER BY {self.order_sql}) AS _rn, count(*) OVER "
                             f"(PARTITION BY _g) AS _gc FROM ({self.base})) "
                             f"WHERE _rn <= {int(q.group.per)}")
        else:
            self.rows_sql = f"SELECT *, NULL AS _gc FROM ({self.base})"

    def page(self, where: str, wparams: list[Any], limit: int, offset: int, *,
             start: int | None = None, sort: bool = False) -> tuple[str, list[Any]]:
        """A page of rows after the cursor condition `where` (over `_k0...`): the sort keys,
        then the row columns (flat; from the copy also its ranks and `_pos`) or `_td` and
        `_gc`. From the copy, `start` is the cursor row's position; without `sort` the rows
        come in the copy's order."""
        tail = f"LIMIT {int(limit)} OFFSET {int(offset)}"
        order = f"ORDER BY {self.order_sql} {tail}"
        if self.copy_version is not None:
            bound = "" if start is None else f" AND l.pos > {int(start)}"
            sql = f"{self.copy_sql} AND {where}{bound} {'ORDER BY l.pos ' if sort else ''}{tail}"
            return sql, [*self.params, self.copy_version, *wparams]
        if self.flat:
            return f"{self.flat_sql} AND {where} {order}", [*self.params, *wparams]
        return (f"SELECT {', '.join(f'_k{i}' for i in range(len(self.keys)))}, _td, _gc "
                f"FROM ({self.rows_sql}) WHERE {where} {order}", [*self.params, *wparams])


def _is_flat(q: BacklinkQuery) -> bool:
    return q.group is None and not q.include_indirect


def find_backlink_columns(store: Store, q: BacklinkQuery, *, secret: bytes | None = None,
                          with_total: bool = True, now: float | None = None
                          ) -> BacklinkColumns:
    """One page of a target's backlinks, as columns; `next_cursor` continues after its last
    row.

    The cursor is signed with `secret` (a server passes its persisted secret; without one a
    per-process secret is used) and is rejected for any other query; it pins the rank run
    the first page read, so rank orders stay stable across pages.
    """
    _validate(q)
    fp = _fingerprint(q)
    state = cursors.decode(q.cursor, fp, secret, now=now) if q.cursor is not None else None
    ctx = context(store, state.run_id) if state else context(store)
    wanted = _wanted(q.fields, _is_flat(q))
    # A plain listing's statement reads the page's rows with their sort keys; on a heavy
    # target it reads the ordered copy, or, in other orders, DuckDB sorts the keys alone and
    # fetches the other columns of the rows it keeps (late materialization,
    # Store.cursor). Grouped and indirect listings (a window, a union) read keys first, then
    # the rows by id.
    pos, cols = _link_cols(ctx, wanted)
    ranks = [name for name in heavy.RANK_FIELDS if name in wanted]
    plan = _Plan(store, q, ctx, cols, ranks)
    where, wparams = "true", list[Any]()
    if state is not None:
        if len(state.key) != len(plan.keys):
            raise InvalidInput("cursor", "cursor does not match this query's order")
        where, wparams = _after(len(plan.keys), plan.desc, state.key)
    hits = _page_hits(store, q, plan, where, wparams, state.key if state else None)
    more = len(hits) > q.limit
    hits = hits[: q.limit]
    n = len(plan.keys)
    columns = list(zip(*hits, strict=True)) or [()] * (plan.width + 2)
    ids = [int(i) for i in columns[n - 1]]
    if plan.flat:
        stored: dict[str, Sequence[Any]] | None = None
        if plan.copy_version is not None:
            stored = dict(zip(ranks, columns[plan.width:plan.width + len(ranks)], strict=True))
        out = _fill(store, ctx, [columns[i] for i in plan.row_at], pos, wanted, stored)
        out["group_count"] = [None] * len(ids)
        out["indirect_path"] = [()] * len(ids)
    else:
        out = _load_columns(store, ctx, ids, sorted({str(d) for d in columns[n]}), wanted)
        out["group_count"] = [None if g is None else int(g) for g in columns[n + 1]]
        _retarget(q.target, plan.via, out)
    next_cursor = None
    if more and hits:
        last = list(hits[-1][:n])
        next_cursor = cursors.encode(cursors.CursorState(fp, ctx.run_id, last,
                                                         time.time() if now is None else now),
                                     secret)
    total = None
    if with_total:
        total = int(store.query(f"SELECT count(*) FROM ({plan.rows_sql})", plan.params)[0][0])
    return BacklinkColumns(q.target, out, total, next_cursor)


def find_backlinks(store: Store, q: BacklinkQuery, *, secret: bytes | None = None,
                   with_total: bool = True, now: float | None = None) -> BacklinkPage:
    """find_backlink_columns as Backlink rows."""
    return find_backlink_columns(store, q, secret=secret, with_total=with_total,
                                 now=now).page()


def _page_hits(store: Store, q: BacklinkQuery, plan: _Plan, where: str, wparams: list[Any],
               key: list[Any] | None) -> list[tuple[Any, ...]]:
    """The page's rows (limit + 1) of `plan.page`."""
    if plan.copy_version is None:
        sql, params = plan.page(where, wparams, q.limit + 1, q.offset)
        return store.query(sql, params, late=plan.flat and heavy.is_heavy(store, q.target))
    start = None
    if key is not None:
        start = heavy.listing_start(store, plan.copy_version, q.target, key[0], key[1])
    sql, params = plan.page(where, wparams, q.limit + 1, q.offset, start=start)
    hits = store.query(sql, params)
    at = [h[-1] for h in hits]
    if not all(map(operator.lt, at, at[1:])):
        # DuckDB keeps insertion order in a plain scan (preserve_insertion_order): should
        # a plan ever not, the copy is sorted instead.
        sql, params = plan.page(where, wparams, q.limit + 1, q.offset, start=start, sort=True)
        hits = store.query(sql, params)
    return hits


def _retarget(target: Target, via: dict[str, _Via], out: dict[str, list[Any]]) -> None:
    """Rows linking to a page that redirects or canonicalizes into the target: shown with
    the in-scope page as their target and the path to it."""
    paths: list[tuple[IndirectHop, ...]] = [()] * len(out["link_id"])
    if via:
        for i, key in enumerate(out["target_key"]):
            v = via.get(key)
            if v is None or _in_scope(target, key, out["target_host"][i],
                                      out["target_domain"][i]):
                continue
            out["target_key"][i], out["target_url"][i] = v.final_key, v.final_url
            out["target_host"][i], out["target_domain"][i] = v.final_host, v.final_domain
            out["internal"][i] = out["source_domain"][i] == v.final_domain
            paths[i] = v.path
    out["indirect_path"] = paths


#: Backlink fields read from the source page (sp), by column.
_PAGE_COLS = {"source_status": "status",
              "source_language": "language", "source_encoding": "encoding",
              "source_size": "size", "source_internal_links": "internal_links",
              "source_external_links": "external_links"}
_POS = {name: i for i, name in enumerate(ROW_FIELDS)}
_ROW_SET = frozenset(ROW_FIELDS)
#: Read for every row whatever `BacklinkQuery.fields` asks: its identity and the keys its
#: page's attributes and ranks are looked up by ...
KEY_FIELDS = frozenset({"link_id", "source_key", "source_domain"})
#: ... and, in grouped and indirect listings, the target (indirect links are re-targeted).
TARGET_FIELDS = frozenset({"target_key", "target_url", "target_host", "target_domain",
                           "internal"})


def sql_list(values: list[str] | list[int]) -> str:
    """A literal SQL list (DuckDB uses its ART indexes for literal IN lists, not for lists
    passed as one parameter); strings quoted with '' escaping, integers as integers."""
    return ", ".join(str(int(v)) if isinstance(v, int) else "'" + v.replace("'", "''") + "'"
                     for v in values)


#: Longest literal IN list: index lookups pay per key, and DuckDB plans a long literal list
#: slowly; past this a semi-join over the list (one scan) is cheaper.
MAX_LITERAL_KEYS = 1_000


def _in(column: str, values: list[str] | list[int]) -> str:
    """`column IN (...)`: a literal list up to MAX_LITERAL_KEYS (index lookups), else a
    semi-join over a list literal (one scan, planned once)."""
    if len(values) <= MAX_LITERAL_KEYS:
        return f"{column} IN ({sql_list(values)})"
    kind = "BIGINT" if values and isinstance(values[0], int) else "VARCHAR"
    return f"{column} IN (SELECT unnest([{sql_list(values)}]::{kind}[]))"


def _wanted(fields: frozenset[str] | None, flat: bool) -> frozenset[str]:
    if fields is None:
        return _ROW_SET
    return fields | KEY_FIELDS if flat else fields | KEY_FIELDS | TARGET_FIELDS


def _link_cols(ctx: Ctx, wanted: frozenset[str]) -> tuple[list[int], list[str]]:
    """The wanted link-table fields of a row: their positions in ROW_FIELDS, and their SQL
    followed by one more column, whether the link passes rank (for link_rank_1000)."""
    pos = [i for i, name in enumerate(ROW_FIELDS)
           if name in wanted and not FIELDS[name].join]
    sql = [ctx.expr(FIELDS[ROW_FIELDS[i]].sql) for i in pos]
    passes = passing_link("l.") if "link_rank_1000" in wanted else "false"
    return pos, [*sql, f"({passes})"]


def _load_columns(store: Store, ctx: Ctx, ids: list[int], domains: list[str],
                  wanted: frozenset[str]) -> dict[str, list[Any]]:
    """The `wanted` columns of the rows with these link ids, in the order of `ids` (target
    domains given so zone maps prune)."""
    pos, sql = _link_cols(ctx, wanted)
    links = store.query(
        f"SELECT {', '.join(sql)} FROM links l "
        f"WHERE l.target_domain IN ({sql_list(domains)}) AND {_in('l.link_id', ids)}"
    ) if ids else []
    at = {int(r[0]): r for r in links}      # link_id is the first field of ROW_FIELDS
    ordered = [at[i] for i in ids]
    return _fill(store, ctx, list(zip(*ordered, strict=True)) or [()] * len(sql), pos,
                 wanted)


def load_rows(store: Store, ctx: Ctx, ids: list[int], domains: list[str]
              ) -> dict[int, Backlink]:
    """Whole Backlink rows by link id (target domains given so zone maps prune)."""
    ids = sorted(set(ids))
    return dict(zip(ids, backlink_rows(_load_columns(store, ctx, ids, domains, _ROW_SET)),
                    strict=True))


def _fill(store: Store, ctx: Ctx, cols: Sequence[Sequence[Any]], pos: list[int],
          wanted: frozenset[str], stored: dict[str, Sequence[Any]] | None = None
          ) -> dict[str, list[Any]]:
    """Backlink columns from the columns of `_link_cols` (the fields at positions `pos`, then
    whether each link passes rank), with their source pages' attributes and ranks where
    wanted (`stored`: the rank columns the statement read, from the ordered copy).

    Keyed reads instead of joins: joining `pages` and the rank tables would scan them whole
    for a page of rows. Pages are looked up by literal key lists through their ART index
    (inlink.query.indexes), ranks in the run's in-memory copy (inlink.query.rankcache).
    """
    out: dict[str, list[Any]] = {ROW_FIELDS[p]: list(c)
                                 for p, c in zip(pos, cols, strict=False)}
    keys, doms = out["source_key"], out["source_domain"]
    page_cols = [name for name in _PAGE_COLS if name in wanted]
    if page_cols:
        no_page = (None,) * len(page_cols)
        pages = {str(r[0]): r[1:] for r in store.query(
            f"SELECT url_key, {', '.join(_PAGE_COLS[name] for name in page_cols)} FROM pages "
            f"WHERE {_in('url_key', sorted(set(keys)))}")} if keys else {}
        found = [pages.get(k, no_page) for k in keys]
        for i, name in enumerate(page_cols):
            out[name] = [p[i] for p in found]
    ranks = [name for name in heavy.RANK_FIELDS if name in wanted]
    if stored is not None:
        out.update((name, list(stored[name])) for name in ranks)
    elif ranks:
        n = len(keys)
        page = np.zeros((n, 3), dtype=np.int64)
        domain = np.zeros((n, 2), dtype=np.int64)
        if ctx.run_id is not None and n:
            page[:] = rankcache.page_rank_columns(store, ctx.run_id, keys)
            page[:, 2] *= np.fromiter(cols[len(pos)], dtype=bool, count=n)
            domain[:] = rankcache.domain_rank_columns(store, ctx.run_id, doms)
        values = {"source_inlink_rank": page[:, 0], "source_rank_1000": page[:, 1],
                  "link_rank_1000": page[:, 2], "source_domain_inlink_rank": domain[:, 0],
                  "source_domain_rank_1000": domain[:, 1]}
        for name in ranks:
            out[name] = values[name].tolist()
    return out


def count_backlinks_matching(store: Store, q: BacklinkQuery) -> int:
    """How many rows a listing query matches (after grouping), without fetching any."""
    _validate(q)
    plan = _Plan(store, q, context(store))
    return int(store.query(f"SELECT count(*) FROM ({plan.rows_sql})", plan.params)[0][0])


def iter_backlinks(store: Store, q: BacklinkQuery, *, page_size: int = 10_000,
                   secret: bytes | None = None) -> Iterator[Backlink]:
    """Every row of a listing, page by page through cursors (exports, the CLI)."""
    page = find_backlinks(store, dataclasses.replace(q, limit=page_size, cursor=None),
                          secret=secret, with_total=False)
    while True:
        yield from page.rows
        if page.next_cursor is None:
            return
        page = find_backlinks(store, dataclasses.replace(q, limit=page_size,
                                                         cursor=page.next_cursor),
                              secret=secret, with_total=False)
