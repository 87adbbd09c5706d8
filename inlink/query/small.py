"""The small-target path of the aggregates: fetch a few rows, aggregate them in Python.

Most targets have a handful of backlinks. For them, one DuckDB statement that fetches the
rows (pruned to one row group by the target sort) costs about a millisecond, while the SQL
aggregates cost ten times that: DuckDB plans several DISTINCT aggregates as a shared CTE with
one hash aggregate each, a fixed cost that dominates on a hundred rows. So the aggregate
functions in `aggregates.py` first fetch up to `SMALL_ROWS` rows of the batch; when the
batch fits, they aggregate here, otherwise they run their SQL over the same rows.

The rows are those of `aggregates.backlinks_sql` (every derived column computed by the same
SQL expressions), and the functions below reproduce the SQL aggregates' semantics exactly —
NULLs are not counted by DISTINCT counts, ties break on the value ascending in code-point
order (DuckDB compares VARCHAR by UTF-8 bytes: the same order). tests/query checks that both
paths give identical answers on every target of the synthetic web.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from inlink.index.store import Store

#: Largest batch (rows over all targets of a call) aggregated in Python.
SMALL_ROWS = 2_000

Row = tuple[Any, ...]

# Column positions in the rows of backlinks_sql with aggregates._BASE_COLS.
T, DOM, IP, SUBNET, NF, KIND, HOME, EDU, GOV, ANCHOR, PAGE, TLD, COUNTRY, FIRST, LAST = range(15)


def fetch(store: Store, base: str, params: list[object], limit: int | None = None
          ) -> dict[int, list[Row]] | None:
    """The batch's rows by target index, or None when there are more than `limit` (default
    SMALL_ROWS, read at call time so tests can force either path)."""
    limit = SMALL_ROWS if limit is None else limit
    rows = store.query(f"{base} LIMIT ?", [*params, limit + 1])
    if len(rows) > limit:
        return None
    out: dict[int, list[Row]] = {}
    for r in rows:
        out.setdefault(int(r[T]), []).append(r)
    return out


def _distinct(rows: Sequence[Row], col: int, keep: Callable[[Row], bool] | None = None) -> int:
    return len({r[col] for r in rows if r[col] is not None and (keep is None or keep(r))})


def metric_values(rows: Sequence[Row]) -> list[int]:
    """aggregates._METRIC_SQL: backlinks, refdomains, subnets, ips, nofollow, dofollow, edu,
    gov."""
    nf = sum(1 for r in rows if r[NF])
    return [len(rows), _distinct(rows, DOM), _distinct(rows, SUBNET), _distinct(rows, IP),
            nf, len(rows) - nf, sum(1 for r in rows if r[EDU]),
            sum(1 for r in rows if r[GOV])]


def summary_values(rows: Sequence[Row]) -> list[int]:
    """The 20 scalars of summarize()'s SQL, in its order."""
    def do(r: Row) -> bool:
        return not r[NF]

    return [*metric_values(rows),
            sum(1 for r in rows if r[HOME]), sum(1 for r in rows if r[HOME] and not r[NF]),
            sum(1 for r in rows if r[KIND] == "anchor"),
            sum(1 for r in rows if r[KIND] == "image"),
            sum(1 for r in rows if r[KIND] in ("redirect", "meta")),
            _distinct(rows, DOM, do), _distinct(rows, DOM, lambda r: bool(r[HOME])),
            _distinct(rows, DOM, lambda r: bool(r[EDU])),
            _distinct(rows, DOM, lambda r: bool(r[GOV])),
            _distinct(rows, ANCHOR), _distinct(rows, ANCHOR, do), _distinct(rows, PAGE)]


def count_value(rows: Sequence[Row], what: str) -> int:
    """One of aggregates' count expressions: count(*) or a DISTINCT count of a column."""
    if what == "count(*)":
        return len(rows)
    return _distinct(rows, _DISTINCT_COLS[what])


_DISTINCT_COLS = {"count(DISTINCT dom)": DOM, "count(DISTINCT ip)": IP,
                  "count(DISTINCT subnet)": SUBNET}


def groups(rows: Sequence[Row], col: int, keep: Callable[[Row], bool] | None = None
           ) -> list[tuple[str, int, int, int, int, dt.datetime, dt.datetime]]:
    """(value, backlinks, refdomains, nofollow, dofollow, first seen, last seen) per value."""
    acc: dict[str, list[Any]] = {}
    doms: dict[str, set[str]] = {}
    for r in rows:
        if keep is not None and not keep(r):
            continue
        v = r[col]
        a = acc.get(v)
        if a is None:
            acc[v] = [1, 1 if r[NF] else 0, r[FIRST], r[LAST]]
            doms[v] = {r[DOM]}
            continue
        a[0] += 1
        a[1] += 1 if r[NF] else 0
        if r[FIRST] < a[2]:
            a[2] = r[FIRST]
        if r[LAST] > a[3]:
            a[3] = r[LAST]
        doms[v].add(r[DOM])
    return [(v, a[0], len(doms[v]), a[1], a[0] - a[1], a[2], a[3]) for v, a in acc.items()]


def top(rows: Sequence[Row], col: int, n: int, keep: Callable[[Row], bool] | None = None
        ) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    """(value, backlinks, refdomains) of the n best values by backlinks and by refdomains,
    ties on the value ascending (summarize()'s row_number windows)."""
    g = [(v, bl, rd) for v, bl, rd, *_ in groups(rows, col, keep)]
    by_bl = sorted(g, key=lambda x: (-x[1], x[0]))[:n]
    by_rd = sorted(g, key=lambda x: (-x[2], x[0]))[:n]
    return by_bl, by_rd


def group_rows(rows: Sequence[Row], col: int, keep: Callable[[Row], bool] | None,
               order_by: str, limit: int
               ) -> list[tuple[str, int, int, int, int, dt.datetime, dt.datetime]]:
    """aggregates._group_rows: ordered by the chosen count, the other, then the value."""
    g = groups(rows, col, keep)
    if order_by == "backlinks":
        g.sort(key=lambda x: (-x[1], -x[2], x[0]))
    else:
        g.sort(key=lambda x: (-x[2], -x[1], x[0]))
    return g[:limit]
