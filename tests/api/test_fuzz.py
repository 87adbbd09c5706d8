"""Hostile parameters on every Data API endpoint: whatever the values, the answer is a 200 or
an error in the dialect's envelope naming a parameter — never a 500, never a stack trace."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inlink.api.dialects import seranking_data as data

if TYPE_CHECKING:
    from conftest import Api  # tests/api/conftest.py

NAMES = ["target", "mode", "limit", "order_by", "per_domain", "next", "date_from", "date_to",
         "new_lost_type", "link_type", "anchor_type", "dofollow", "url_from",
         "inlink_rank_from", "inlink_rank_to", "domain_inlink_rank_from",
         "domain_inlink_rank_to", "url_from_filter", "url_to_filter", "anchor_filter",
         "anchor_filter_mode", "nofollow_filter", "histogramMode", "granularity", "task_id",
         "output"]
SAMPLES = ["", "0", "-1", "10001", "1e9", "domain", "host", "url", "new", "lost", "xml",
           "json", "2024-02-30", "2024-01-01", "http://", "https://[::1]/", "example.com",
           "co.uk", "\x00", "%00", "' OR 1=1 --", "<a>", "é" * 3, "a" * 3000, "by_month",
           "inlink_rank", "backlinks", "undefined", "nofollow_only"]

values = st.one_of(st.sampled_from(SAMPLES), st.text(max_size=40),
                   st.integers(-10**12, 10**12).map(str))
params = st.lists(st.tuples(st.sampled_from(NAMES), values), max_size=6)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(),
              st.floats(allow_nan=False, allow_infinity=False), values),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                  max_size=3),
    max_leaves=8)
bodies = st.dictionaries(st.sampled_from(NAMES), json_values, max_size=6)


def _check(r: Any) -> None:
    assert r.status_code in (200, 400, 402, 404, 405, 413), (r.status_code, r.text[:300])
    assert "Traceback" not in r.text
    if r.status_code != 200:
        body = r.json() if "json" in r.headers.get("content-type", "") else None
        if body is not None:
            assert set(body["error"]) == {"code", "message", "parameter"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(ep=st.sampled_from(data.ENDPOINTS), query=params, body=bodies, post=st.booleans())
def test_no_parameter_values_make_a_500(api: Api, ep: data.Endpoint,
                                        query: list[tuple[str, str]], body: dict[str, Any],
                                        post: bool) -> None:
    url = data.PREFIX + ep.path
    qs = [("apikey", api.key), *[(k, v) for k, v in query if k != "output"]]
    if post and "POST" in ep.methods:
        _check(api.client.post(url, params=[("apikey", api.key)], json=body))
    else:
        _check(api.client.get(url, params=qs))


def test_non_standard_json_is_refused(api: Api) -> None:
    for raw in (b'{"target": NaN}', b'{"limit": Infinity}', b'{"target": "\xff"}', b"[1]",
                b'{"target": "a.com"', b"\x00"):
        r = api.client.post(data.PREFIX + "/metrics", params={"apikey": api.key}, content=raw)
        assert r.status_code == 400 and r.json()["error"]["parameter"] == "body", raw
