"""OpenAPI at /docs describes every endpoint's parameters, and the description stays true:
each parameter an endpoint reads is listed, and each listed one is read."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from inlink.api.dialects import seranking_data as data
from inlink.api.dialects.seranking_data_openapi import PARAMETERS
from inlink.api.params import Params
from inlink.errors import InvalidInput

if TYPE_CHECKING:
    from conftest import Api  # tests/api/conftest.py

#: A value of each parameter that lets parsing run to its end (so every read happens).
SAMPLE = {"target": "example.com", "mode": "host", "limit": "5", "order_by": "",
          "per_domain": "2", "next": "x", "date_from": "2024-01-01", "date_to": "2024-01-02",
          "new_lost_type": "new", "link_type": "href", "anchor_type": "text",
          "dofollow": "dofollow", "url_from": "a.example.com", "inlink_rank_from": "1",
          "inlink_rank_to": "99", "domain_inlink_rank_from": "1",
          "domain_inlink_rank_to": "99", "url_from_filter": "a", "url_from_filter_mode":
          "contains", "url_to_filter": "b", "url_to_filter_mode": "contains",
          "anchor_filter": "c", "anchor_filter_mode": "contains", "nofollow_filter":
          "dofollow_only", "histogramMode": "domain", "granularity": "by_week",
          "task_id": "t"}


@pytest.mark.parametrize("ep", data.ENDPOINTS, ids=[e.path for e in data.ENDPOINTS])
def test_documented_parameters_are_the_ones_read(ep: data.Endpoint) -> None:
    documented = set(PARAMETERS[ep.path])
    p = Params([(n, SAMPLE[n]) for n in documented if n in SAMPLE])
    ctx = data.Context(dt.date(2024, 1, 2), b"s" * 32, "k", None, "http://x")
    try:
        ep.parse(p, ctx)
    except InvalidInput as exc:  # export without an export worker: after reading its input
        assert ep.path == "/export" and exc.name == "export", exc
    read = {n for n in p.asked}
    assert read <= documented, f"{ep.path} reads undocumented {sorted(read - documented)}"
    assert documented - {"output"} <= read, \
        f"{ep.path} documents unread {sorted(documented - {'output'} - read)}"


def test_openapi_lists_parameters_and_auth(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    assert set(spec["components"]["securitySchemes"]) == {"apikey", "token"}
    for ep in data.ENDPOINTS:
        for method in ep.methods:
            op = spec["paths"][data.PREFIX + ep.path][method.lower()]
            names = {p["name"] for p in op["parameters"]}
            assert "apikey" in names and op["security"]
            if method == "GET":
                assert names - {"apikey"} == set(PARAMETERS[ep.path])
            else:
                body = op["requestBody"]["content"]["application/json"]["schema"]
                assert set(body["properties"]) == set(PARAMETERS[ep.path]) - {"output"}
    limit = next(p for p in spec["paths"][data.PREFIX + "/raw"]["get"]["parameters"]
                 if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 100_000 and limit["schema"]["default"] == 10_000
