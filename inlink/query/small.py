"""The small-target path of the aggregates: fetch a few rows, aggregate them in Python.

Most targets have a handful of backlinks. For them, one DuckDB statement that fetches the
rows (pruned to one row group by the target sort) costs about a millisecond, while the SQL
aggregates cost ten times that: DuckDB plans several DISTINCT aggregates as a shared CTE with
one hash aggregate each, a fixed cost that dominates on a hundred rows. So the aggregate
functions in `aggregates.py` first fetch up to `SMALL_ROWS` rows of the batch; when the
batch fits, they aggregate here, otherwise they run their SQL over the same rows.

The rows are those of `aggregates.backlinks_sql`, in the layout of `aggregates._BASE`. The
fetch reads the stored columns only; the columns `_BASE` derives in SQL (home page, .edu,
.gov, TLD, anchor text) are derived here by `derive`, whose functions reproduce those SQL
expressions (a hypothesis test compares them with DuckDB's). Measured on the bench index:
a 100-row summary 3.7 -> 3.0 ms, a 1,839-row one 7.6 -> 8.6 ms (Python pays per row what
DuckDB pays per statement); most targets are the small kind. The functions below reproduce
the SQL aggregates' semantics exactly — NULLs are not counted by DISTINCT counts, ties break
on the value ascending in code-point order (DuckDB compares VARCHAR by UTF-8 bytes: the same
order). tests/query checks that both
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


#: The stored columns a small fetch reads, in order after `_t`, and what each derived column
#: of `aggregates._BASE` is computed from.
RAW = (("dom", "l.source_domain"), ("ip", "l.source_ip"), ("subnet", "l.source_subnet"),
       ("nf", "l.nofollow"), ("kind", "l.kind"), ("key", "l.source_key"),
       ("anchor", "l.anchor"), ("alt", "l.alt"), ("page", "l.target_key"),
       ("country", "l.source_country"), ("first_seen", "l.first_seen"),
       ("last_seen", "l.last_seen"))
SOURCES = {"home": ("key",), "edu": ("dom",), "gov": ("dom",), "tld": ("dom",),
           "anchor": ("kind", "anchor", "alt")}


def home_page(key: str) -> bool:
    """sql.HOME_PAGE_SQL (`^https?://[^/]+/$`): the root URL of its host."""
    for prefix in ("http://", "https://"):
        if key.startswith(prefix):
            rest = key[len(prefix):]
            return len(rest) > 1 and rest[-1] == "/" and "/" not in rest[:-1]
    return False


def has_label(domain: str, label: str) -> bool:
    """sql.label_sql: a label of the domain after the first."""
    return label in domain.split(".")[1:]


def source_tld(domain: str) -> str:
    """sql.SOURCE_TLD_SQL: the domain's last label (`[^.]+$`); "" for an IP (`^[0-9.]+$` or
    a leading `[`)."""
    if domain.startswith("[") or (domain and not domain.strip("0123456789.")):
        return ""
    return "" if domain.endswith(".") else domain.rpartition(".")[2]


def domain_facts(domain: str) -> tuple[bool, bool, str]:
    """(has_label edu, has_label gov, source_tld): derive() computes them once per domain."""
    return has_label(domain, "edu"), has_label(domain, "gov"), source_tld(domain)


def anchor_text(kind: str, anchor: str, alt: str | None) -> str:
    """sql.ANCHOR_TEXT_SQL: the anchor, or an image's alt when it has no text."""
    return (alt or "") if kind == "image" and anchor == "" else anchor


def raw_cols(names: frozenset[str] | None) -> str:
    """The SELECT list (after `_t`) of a fetch for the `_BASE` names (None: all), NULL for
    stored columns none of them needs."""
    need = ({name for name, _ in RAW} if names is None
            else {s for name in names for s in SOURCES.get(name, (name,))})
    return ", ".join(f"{sql if name in need else 'NULL'} AS {name}" for name, sql in RAW)


def derive(rows: list[Row], names: frozenset[str] | None) -> list[Row]:
    """Fetched rows (`_t` then RAW) in the `_BASE` layout (T, DOM, ... LAST), the derived
    columns in `names` (None: all) computed, the others None. The domain's facts are
    computed once per distinct domain."""
    def want(n: str) -> bool:
        return names is None or n in names

    home, anchor = want("home"), want("anchor")
    by_domain = want("edu") or want("gov") or want("tld")
    facts: dict[str, tuple[bool, bool, str]] = {}
    out: list[Row] = []
    for (t, dom, ip, sn, nf, kind, key, text, alt, page, country, first,
         last) in rows:
        f = None
        if by_domain:
            f = facts.get(dom)
            if f is None:
                f = facts[dom] = domain_facts(dom)
        out.append((t, dom, ip, sn, nf, kind, home_page(key) if home else None,
                    f[0] if f else None, f[1] if f else None,
                    anchor_text(kind, text, alt) if anchor else None, page,
                    f[2] if f else None, country, first, last))
    return out


def fetch(store: Store, base: str, params: list[object], limit: int | None = None,
          names: frozenset[str] | None = None) -> dict[int, list[Row]] | None:
    """The batch's rows by target index, in the `_BASE` layout with the derived columns in
    `names` (None: all), or None when there are more than `limit` (default SMALL_ROWS,
    read at call time so tests can force either path). `base` selects `_t` and
    `raw_cols(names)`."""
    limit = SMALL_ROWS if limit is None else limit
    rows = store.query(f"{base} LIMIT ?", [*params, limit + 1])
    if len(rows) > limit:
        return None
    out: dict[int, list[Row]] = {}
    for r in derive(rows, names):
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
