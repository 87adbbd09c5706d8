"""OpenAPI parameters of the SE Ranking Data API dialect (seed 001), for `/docs`.

The endpoints read their parameters through `Params` (any case, query string or JSON body),
so FastAPI cannot see them; this table describes each endpoint's parameters as the seed
names them, with their types, allowed values, ranges and defaults. A test reads every
endpoint with the parameters it accepts and checks that each one it reads is listed here.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def _p(description: str, schema: Schema, *, required: bool = False) -> dict[str, Any]:
    return {"description": description, "schema": schema, "required": required}


def _enum(*values: str, default: str | None = None) -> Schema:
    out: Schema = {"type": "string", "enum": list(values)}
    if default is not None:
        out["default"] = default
    return out


def _int(lo: int, hi: int, default: int | None = None) -> Schema:
    out: Schema = {"type": "integer", "minimum": lo, "maximum": hi}
    if default is not None:
        out["default"] = default
    return out


_TEXT_FILTER: Schema = {"type": "string", "maxLength": 2063,
                        "description": "ASCII only"}
_DATE: Schema = {"type": "string", "format": "date"}

COMMON: dict[str, dict[str, Any]] = {
    "target": _p("Root domain, host (subdomain) or URL, e.g. example.com", {"type": "string"},
                 required=True),
    "mode": _p("domain: the domain and its subdomains; host: that host only; url: that page",
               _enum("domain", "host", "url", default="host")),
    "output": _p("Response format", _enum("json", "xml", default="json")),
    "limit": _p("Rows to return", _int(1, 10_000, 100)),
    "date_from": _p("First day of the range, inclusive (default: yesterday)", _DATE),
    "date_to": _p("Last day of the range, inclusive (default: today)", _DATE),
    "new_lost_type": _p("new, lost, or empty for both", _enum("new", "lost")),
}

_BATCH_TARGET = _p("Up to 100 targets: repeat the parameter, or a JSON list in a POST body",
                   {"type": "array", "items": {"type": "string"}, "maxItems": 100},
                   required=True)
_BACKLINK_ORDER = _enum("date_found", "domain_inlink_rank", "first.domain_inlink_rank",
                        "inlink_rank", "first.inlink_rank", default="date_found")
_HISTORY_ORDER = _enum("new_lost_date", "domain_inlink_rank", "inlink_rank",
                       default="new_lost_date")

_FILTERS: dict[str, dict[str, Any]] = {
    "inlink_rank_from": _p("Lowest InLink Rank of the referring page", _int(0, 100, 0)),
    "inlink_rank_to": _p("Highest InLink Rank of the referring page", _int(0, 100, 100)),
    "domain_inlink_rank_from": _p("Lowest Domain InLink Rank of the referring domain",
                                  _int(0, 100, 0)),
    "domain_inlink_rank_to": _p("Highest Domain InLink Rank of the referring domain",
                                _int(0, 100, 100)),
    "url_from_filter": _p("Text the referring URL contains (or not)", _TEXT_FILTER),
    "url_from_filter_mode": _p("", _enum("contains", "does_not_contain", default="contains")),
    "url_to_filter": _p("Text the target URL contains (or not)", _TEXT_FILTER),
    "url_to_filter_mode": _p("", _enum("contains", "does_not_contain", default="contains")),
    "anchor_filter": _p("Text the anchor contains (or not)", _TEXT_FILTER),
    "anchor_filter_mode": _p("", _enum("contains", "does_not_contain", default="contains")),
    "nofollow_filter": _p("Only nofollow or only dofollow backlinks",
                          _enum("nofollow_only", "dofollow_only")),
    "per_domain": _p("At most this many backlinks per referring domain", _int(1, 100)),
}

_HISTORY_FILTERS: dict[str, dict[str, Any]] = {
    "link_type": _p("href (text and image links) or redirect", _enum("href", "redirect")),
    "anchor_type": _p("text, image, or undefined (no anchor: redirects)",
                      _enum("text", "image", "undefined")),
    "dofollow": _p("", _enum("dofollow", "nofollow", "undefined")),
    "url_from": _p("Only backlinks from this host or its subdomains", _TEXT_FILTER),
}

_RANK_HISTORY: dict[str, dict[str, Any]] = {
    "date_from": _p("First day (default: a month before today)", _DATE),
    "date_to": _p("Last day (default: today)", _DATE),
    "granularity": _p("One point per day, week (Monday) or month (the 1st): the latest run "
                      "of each", _enum("by_day", "by_week", "by_month", default="by_day")),
}


def _take(*names: str) -> dict[str, dict[str, Any]]:
    return {n: COMMON[n] for n in names}


_SINGLE = ("target", "mode", "output")
_BATCH = {"target": _BATCH_TARGET, **_take("mode", "output")}
_AUTHORITY = {"target": {**_BATCH_TARGET, "description": "Up to 100 pages or hosts; a target "
                         "with a scheme is a page, without one a host (its root page)"},
              "mode": {**COMMON["mode"], "description": "Optional: overrides the guess from "
                       "the target's form"}, **_take("output")}
_GROUP_ORDER = {"order_by": _p("", _enum("backlinks", "refdomains", default="backlinks"))}

#: endpoint path -> parameter name -> OpenAPI parameter (without `name`/`in`).
PARAMETERS: dict[str, dict[str, dict[str, Any]]] = {
    "/summary": _BATCH,
    "/metrics": _BATCH,
    "/count": _BATCH,
    "/refdomains/count": _BATCH,
    "/referring-ips/count": _BATCH,
    "/referring-subnets/count": _BATCH,
    "/all": {**_take(*_SINGLE, "limit"), "order_by": _p("", _BACKLINK_ORDER), **_FILTERS},
    "/raw": {**_take(*_SINGLE), "limit": _p("Rows per page", _int(1, 100_000, 10_000)),
             "order_by": _p("", _BACKLINK_ORDER),
             "per_domain": _FILTERS["per_domain"],
             "next": _p("The cursor the previous page returned; absent on the first request",
                        {"type": "string"})},
    "/export": _take(*_SINGLE),
    "/export/status": {"task_id": _p("The task_id the export request returned",
                                     {"type": "string"}, required=True),
                       **_take("output")},
    "/history": {**_take(*_SINGLE, "limit", "date_from", "date_to", "new_lost_type"),
                 "order_by": _p("", _HISTORY_ORDER), **_HISTORY_FILTERS},
    "/history/count": {**_take(*_SINGLE, "date_from", "date_to", "new_lost_type"),
                       **_HISTORY_FILTERS},
    "/history/cumulative": _take(*_SINGLE, "date_from", "date_to"),
    "/anchors": {**_take(*_SINGLE, "limit"), **_GROUP_ORDER},
    "/refdomains": {**_take(*_SINGLE, "limit"),
                    "order_by": _p("", _enum("date_found", "domain_inlink_rank", "inlink_rank",
                                             default="date_found"))},
    "/referring-ips": {**_take(*_SINGLE, "limit"), **_GROUP_ORDER},
    "/indexed-pages": {**_take(*_SINGLE, "limit"), **_GROUP_ORDER},
    "/refdomains/history": {**_take(*_SINGLE, "limit", "date_from", "date_to",
                                    "new_lost_type"),
                            "order_by": _p("", _HISTORY_ORDER)},
    "/refdomains/history/count": _take(*_SINGLE, "date_from", "date_to", "new_lost_type"),
    "/authority": _AUTHORITY,
    "/authority/domain": _AUTHORITY,
    "/authority/page": _AUTHORITY,
    "/authority/domain/distribution": {
        **_take(*_SINGLE),
        "histogramMode": _p("Count referring registrable domains or hosts per rank",
                            _enum("domain", "host", default="host"))},
    "/authority/page/history": {**_AUTHORITY, "target": _p(
        "A page URL (a bare host means its root page)", {"type": "string"}, required=True),
        **_RANK_HISTORY},
    "/authority/domain/history": {**_AUTHORITY, "target": _p(
        "A domain, host or URL: its registrable domain's history", {"type": "string"},
        required=True), **_RANK_HISTORY},
}


def openapi_parameters(path: str, method: str) -> list[dict[str, Any]]:
    """The OpenAPI `parameters` of an endpoint: `apikey`, then the endpoint's own (for POST,
    only `output` stays in the query; the others go in the JSON body)."""
    own = PARAMETERS[path]
    out = [{"name": "apikey", "in": "query", "required": False, "schema": {"type": "string"},
            "description": "The API key (or the header `Authorization: Token KEY`)"}]
    for name, spec in own.items():
        if method == "POST" and name != "output":
            continue
        schema = spec["schema"]
        param: dict[str, Any] = {"name": name, "in": "query", "required": spec["required"],
                                 "schema": schema, "description": spec["description"]}
        if schema.get("type") == "array":
            param["style"], param["explode"] = "form", True
        out.append(param)
    return out


def openapi_body(path: str) -> dict[str, Any]:
    """The JSON body of a POST: the endpoint's parameters but `output`."""
    props = {n: {**s["schema"], "description": s["description"]}
             for n, s in PARAMETERS[path].items() if n != "output"}
    required = [n for n, s in PARAMETERS[path].items() if s["required"] and n != "output"]
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": props, "required": required}}}}
