"""SQL building blocks of the query layer: target scope, the field whitelist, filter compiling.

Identifiers only ever come from the FIELDS whitelist below; every value is a parameter.
"""

from __future__ import annotations

import datetime as dt
import weakref
from dataclasses import dataclass
from typing import Any

from inlink.errors import InvalidInput
from inlink.index.store import Store
from inlink.query.models import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    Filter,
    FilterExpr,
    FilterGroup,
    Mode,
    Op,
    Target,
)
from inlink.rank.store import load_run

# -- fields --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """A queryable field: its SQL over `l` (links), `sp` (source page), `rp`/`rd` (rank of
    the source page / domain); `join` names the extra relation it needs, if any."""

    sql: str
    type: str            # str | int | bool | ts
    join: str | None = None
    nullable: bool = False


# Seed 001: "from the home page of the referring domain" — the root URL of the source host.
HOME_PAGE_RE = "^https?://[^/]+/$"
HOME_PAGE_SQL = f"regexp_matches(l.source_key, '{HOME_PAGE_RE}')"
# urls.tld: the last label of a name; IP hosts have none. Read from the source domain, which
# ends with the host's last label (an IP host is its own domain): the summary then reads one
# string column less.
SOURCE_TLD_SQL = (r"CASE WHEN regexp_matches(l.source_domain, '^[0-9.]+$|^\[') THEN '' "
                  r"ELSE regexp_extract(l.source_domain, '[^.]+$') END")
# Seed 001: "anchor: Link anchor text for text links. Image alt text for image links."
ANCHOR_TEXT_SQL = ("CASE WHEN l.kind = 'image' AND l.anchor = '' THEN coalesce(l.alt, '') "
                   "ELSE l.anchor END")


def label_sql(label: str) -> str:
    """A source domain under a public suffix with this label (.edu, .edu.au, .gov.uk):
    every label of a registrable domain after the first belongs to its public suffix."""
    return f"list_contains(string_split(l.source_domain, '.')[2:], '{label}')"


FIELDS: dict[str, Field] = {
    "link_id": Field("l.link_id", "int"),
    # NULL in the table when the URL is its key (schema 4, docs/data-model.md)
    "source_url": Field("coalesce(l.source_url, l.source_key)", "str"),
    "source_key": Field("l.source_key", "str"),
    "source_host": Field("l.source_host", "str"),
    "source_domain": Field("l.source_domain", "str"),
    "source_tld": Field(SOURCE_TLD_SQL, "str"),
    "source_ip": Field("l.source_ip", "str", nullable=True),
    "source_subnet": Field("l.source_subnet", "str", nullable=True),
    "source_country": Field("l.source_country", "str", nullable=True),
    "source_title": Field("l.source_title", "str", nullable=True),
    "source_status": Field("sp.status", "int", "sp", True),
    "source_language": Field("sp.language", "str", "sp", True),
    "source_encoding": Field("sp.encoding", "str", "sp", True),
    "source_size": Field("sp.size", "int", "sp", True),
    "source_internal_links": Field("sp.internal_links", "int", "sp", True),
    "source_external_links": Field("sp.external_links", "int", "sp", True),
    "source_inlink_rank": Field("coalesce(rp.inlink_rank, 0)", "int", "rp"),
    "source_rank_1000": Field("coalesce(rp.rank_1000, 0)", "int", "rp"),
    "source_domain_inlink_rank": Field("coalesce(rd.inlink_rank, 0)", "int", "rd"),
    "source_domain_rank_1000": Field("coalesce(rd.rank_1000, 0)", "int", "rd"),
    "link_rank_1000": Field("", "int", "rp"),   # filled from BACKLINK_RANK_SQL below
    "from_home_page": Field(HOME_PAGE_SQL, "bool"),
    "edu": Field(label_sql("edu"), "bool"),
    "gov": Field(label_sql("gov"), "bool"),
    "target_url": Field("coalesce(l.target_url, l.target_key)", "str"),
    "target_key": Field("l.target_key", "str"),
    "target_host": Field("l.target_host", "str"),
    "target_domain": Field("l.target_domain", "str"),
    "kind": Field("l.kind", "str"),
    "anchor": Field("l.anchor", "str"),
    "anchor_text": Field(ANCHOR_TEXT_SQL, "str"),
    "alt": Field("l.alt", "str", nullable=True),
    "image_url": Field("l.image_url", "str", nullable=True),
    "text_pre": Field("l.text_pre", "str"),
    "text_post": Field("l.text_post", "str"),
    "location": Field("l.location", "str", nullable=True),
    "links_count": Field("l.links_count", "int"),
    "hreflang": Field("l.hreflang", "str", nullable=True),
    "nofollow": Field("l.nofollow", "bool"),
    "dofollow": Field("(NOT l.nofollow)", "bool"),
    "ugc": Field("l.ugc", "bool"),
    "sponsored": Field("l.sponsored", "bool"),
    "internal": Field("l.internal", "bool"),
    "live": Field("l.live", "bool"),
    "first_seen": Field("l.first_seen", "ts"),
    "last_seen": Field("l.last_seen", "ts"),
    "lost_at": Field("l.lost_at", "ts", nullable=True),
    "lost_reason": Field("l.lost_reason", "str", nullable=True),
}


def _backlink_rank_sql() -> str:
    from inlink.rank.store import BACKLINK_RANK_SQL

    return BACKLINK_RANK_SQL.replace("p.", "rp.")


FIELDS["link_rank_1000"] = Field(_backlink_rank_sql(), "int", "rp")

#: Fields a GroupBy may partition on (seed 001 per_domain, seed 004 custom_mode fields).
GROUP_FIELDS = frozenset({"source_domain", "source_host", "source_key", "anchor",
                          "anchor_text", "source_country", "source_tld", "source_language",
                          "source_encoding", "kind", "source_status", "location",
                          "target_key"})

_SORT_DEFAULT = {"str": "''", "int": "-1", "bool": "false", "ts": "TIMESTAMP '1970-01-01'"}


def field(name: str, *, where: str = "filters") -> Field:
    f = FIELDS.get(name)
    if f is None:
        raise InvalidInput(where, f"unknown field {name!r}; fields: {', '.join(sorted(FIELDS))}")
    return f


def sort_sql(name: str) -> str:
    """The field as a sort key that is never NULL (key-set cursors compare with `=`)."""
    f = field(name, where="order_by")
    return f"coalesce({f.sql}, {_SORT_DEFAULT[f.type]})" if f.nullable else f.sql


# -- rank context --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ctx:
    """What a statement needs besides the query: the rank run to read ranks from."""

    run_id: int | None

    def joins(self, needed: set[str]) -> str:
        out = []
        if "sp" in needed:
            out.append("LEFT JOIN pages sp ON sp.url_key = l.source_key")
        if "rp" in needed and self.run_id is not None:
            out.append(f"LEFT JOIN rank_pages rp ON rp.run_id = {int(self.run_id)} "
                       "AND rp.url_key = l.source_key")
        if "rd" in needed and self.run_id is not None:
            out.append(f"LEFT JOIN rank_domains rd ON rd.run_id = {int(self.run_id)} "
                       "AND rd.domain = l.source_domain")
        return " ".join(out)

    def expr(self, sql: str) -> str:
        """Rank columns read 0 when no rank run exists yet (no tables to join)."""
        if self.run_id is None:
            for col in ("rp.inlink_rank", "rp.rank_1000", "rd.inlink_rank", "rd.rank_1000",
                        "rp.link_rank_1000"):
                sql = sql.replace(col, "NULL")
        return sql


def context(store: Store, run_id: int | None = None) -> Ctx:
    """The rank run a query reads: `run_id`, or the current run. The current run is cached
    per store until its next committed write (`Store.generation`), so a request does not
    pay two catalog queries for it."""
    if run_id is None:
        cached = _CURRENT.get(store)
        if cached is not None and cached[0] == store.generation:
            return cached[1]
        generation = store.generation
        run = load_run(store)
        ctx = Ctx(run.run_id if run else None)
        if not store.read_only:  # a read-only store cannot see another process's writes
            _CURRENT[store] = (generation, ctx)
        return ctx
    run = load_run(store, run_id)
    if run is None:
        raise InvalidInput("cursor", f"rank run {run_id} no longer exists; start over")
    return Ctx(run.run_id)


_CURRENT: weakref.WeakKeyDictionary[Store, tuple[int, Ctx]] = weakref.WeakKeyDictionary()


# -- scope ---------------------------------------------------------------------------------


def scope_sql(target: Target, alias: str = "l") -> tuple[str, list[object]]:
    """WHERE terms selecting a target's rows. The domain column comes first in every mode:
    links (and events) are sorted by target_domain, so DuckDB's zone maps skip the rest."""
    if target.mode is Mode.DOMAIN:
        return f"{alias}.target_domain = ?", [target.domain]
    if target.mode is Mode.HOST:
        return f"{alias}.target_domain = ? AND {alias}.target_host = ?", [target.domain,
                                                                          target.host]
    return (f"{alias}.target_domain = ? AND {alias}.target_host = ? AND {alias}.target_key = ?",
            [target.domain, target.host, target.key])


def kinds_sql(kinds: frozenset[str], alias: str = "l") -> tuple[str, list[object]]:
    from inlink.query.models import ALL_KINDS

    unknown = kinds - ALL_KINDS
    if unknown or not kinds:
        raise InvalidInput("kinds", f"unknown or no link kinds: {sorted(unknown)}; "
                                    f"use {sorted(ALL_KINDS)}")
    if kinds == ALL_KINDS:
        return "true", []
    params: list[object] = list(sorted(kinds))
    return f"{alias}.kind IN ({', '.join('?' for _ in kinds)})", params


# -- filters -------------------------------------------------------------------------------


def _coerce(name: str, f: Field, value: object) -> object:
    """A filter value as the field's type (dialects pass JSON, so numbers may be strings)."""
    if value is None:
        return None
    if f.type == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif f.type == "int":
        if isinstance(value, bool):
            pass
        elif isinstance(value, int):
            return value
        elif isinstance(value, float) and value.is_integer():
            return int(value)
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value.strip())
    elif f.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif f.type == "ts":
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
        if isinstance(value, dt.date):
            return dt.datetime.combine(value, dt.time())
        if isinstance(value, str):
            try:
                return _coerce(name, f, dt.datetime.fromisoformat(value.strip()))
            except ValueError:
                pass
    raise InvalidInput("filters", f"{name}: {value!r} is not a valid {f.type} value")


_CMP = {Op.EQ: "=", Op.NE: "IS DISTINCT FROM", Op.LT: "<", Op.LE: "<=", Op.GT: ">",
        Op.GE: ">="}
_TEXT_OPS = {Op.LIKE, Op.NOT_LIKE, Op.ILIKE, Op.NOT_ILIKE, Op.CONTAINS, Op.NOT_CONTAINS,
             Op.STARTS, Op.ENDS, Op.REGEX, Op.NOT_REGEX}


def _condition(flt: Filter, ctx: Ctx, joins: set[str]) -> tuple[str, list[object]]:
    f = field(flt.field)
    if f.join:
        joins.add(f.join)
    col = ctx.expr(f.sql)
    op = flt.op
    if op in (Op.IN, Op.NOT_IN):
        if not isinstance(flt.value, tuple) or not flt.value:
            raise InvalidInput("filters", f"{flt.field} {op.value}: needs a non-empty list")
        values = [_coerce(flt.field, f, v) for v in flt.value]
        marks = ", ".join("?" for _ in values)
        if op is Op.IN:
            return f"({col} IN ({marks}))", values
        return f"({col} IS NULL OR {col} NOT IN ({marks}))", values
    if isinstance(flt.value, tuple):
        raise InvalidInput("filters", f"{flt.field} {op.value}: a list needs in / not_in")
    if op in _TEXT_OPS:
        if f.type != "str":
            raise InvalidInput("filters", f"{flt.field} is not text: {op.value} does not apply")
        if not isinstance(flt.value, str):
            raise InvalidInput("filters", f"{flt.field} {op.value}: the value must be text")
        text = f"coalesce({col}, '')"
        value: object = flt.value
        if op in (Op.CONTAINS, Op.NOT_CONTAINS):
            sql = f"contains(lower({text}), lower(?))"
            return (sql if op is Op.CONTAINS else f"NOT {sql}"), [value]
        if op is Op.STARTS:
            return f"starts_with({text}, ?)", [value]
        if op is Op.ENDS:
            return f"ends_with({text}, ?)", [value]
        if op in (Op.REGEX, Op.NOT_REGEX):
            sql = f"regexp_matches({text}, ?)"
            return (sql if op is Op.REGEX else f"NOT {sql}"), [value]
        keyword = {Op.LIKE: "LIKE", Op.NOT_LIKE: "NOT LIKE", Op.ILIKE: "ILIKE",
                   Op.NOT_ILIKE: "NOT ILIKE"}[op]
        return f"({text} {keyword} ?)", [value]
    value = _coerce(flt.field, f, flt.value)
    if value is None:
        if op is Op.EQ:
            return f"({col} IS NULL)", []
        if op is Op.NE:
            return f"({col} IS NOT NULL)", []
        raise InvalidInput("filters", f"{flt.field} {op.value}: null only compares with eq/ne")
    if f.type == "bool" and op not in (Op.EQ, Op.NE):
        raise InvalidInput("filters", f"{flt.field} is boolean: use eq or ne")
    return f"({col} {_CMP[op]} ?)", [value]


def compile_filter(expr: FilterExpr | None, ctx: Ctx,
                   max_conditions: int = MAX_CONDITIONS) -> tuple[str, list[object], set[str]]:
    """(SQL predicate, params, joins needed). Raises InvalidInput naming the problem."""
    joins: set[str] = set()
    if expr is None:
        return "true", [], joins
    count = 0

    def walk(e: FilterExpr, depth: int) -> tuple[str, list[object]]:
        nonlocal count
        if depth > MAX_DEPTH:
            raise InvalidInput("filters", f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(e, Filter):
            count += 1
            if count > max_conditions:
                raise InvalidInput("filters", f"more than {max_conditions} conditions")
            return _condition(e, ctx, joins)
        if not isinstance(e, FilterGroup):
            raise InvalidInput("filters", f"not a filter: {e!r}")
        if not e.items:
            raise InvalidInput("filters", "an empty and/or group")
        parts: list[str] = []
        params: list[object] = []
        for item in e.items:
            sql, p = walk(item, depth + 1)
            parts.append(sql)
            params.extend(p)
        return "(" + f" {e.logic.upper()} ".join(parts) + ")", params

    sql, params = walk(expr, 1)
    return sql, params, joins


def cell(value: Any) -> Any:
    """A DuckDB cell typed as Any (Store.query types rows as tuples of object)."""
    return value
