"""SE Ranking Data API dialect (seed 001): responses equal the query layer's answers under the
seed's field names; auth, credits, parameter errors, xml, and the seed's own examples."""

from __future__ import annotations

import datetime as dt
import threading
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

import pytest

from inlink import query as q
from inlink.api.app import COST_HEADER, REMAINING_HEADER

if TYPE_CHECKING:
    from conftest import Api  # tests/api/conftest.py

V1 = "/v1/backlinks"


@pytest.fixture(scope="module")
def top(api: Api) -> str:
    """The host with the most live backlinks in the crawled world."""
    return str(api.store.query(
        "SELECT target_host FROM links WHERE live AND NOT internal "
        "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")[0][0])


def get(api: Api, path: str, **params: Any) -> Any:
    r = api.client.get(V1 + path, params={"apikey": api.key, **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_healthz_and_openapi(api: Api) -> None:
    assert api.client.get("/healthz").json()["status"] == "ok"
    head = api.client.head("/healthz")
    assert head.status_code == 200 and head.content == b""
    spec = api.client.get("/openapi.json").json()
    assert V1 + "/summary" in spec["paths"] and V1 + "/raw" in spec["paths"]
    assert api.client.get("/docs").status_code == 200


def test_summary_matches_query_layer(api: Api, top: str) -> None:
    body = get(api, "/summary", target=top, mode="host")
    (s,) = q.summarize(api.store, [q.resolve_target(top, "host")])
    (row,) = body["summary"]
    assert row["target"] == top
    for name in ("backlinks", "refdomains", "subnets", "ips", "nofollow_backlinks",
                 "dofollow_backlinks", "edu_backlinks", "gov_backlinks", "inlink_rank",
                 "domain_inlink_rank", "from_home_page_backlinks",
                 "dofollow_from_home_page_backlinks", "text_backlinks", "dofollow_refdomains",
                 "from_home_page_refdomains", "edu_refdomains", "gov_refdomains", "anchors",
                 "dofollow_anchors", "pages_with_backlinks"):
        assert row[name] == getattr(s, name), name
    assert s.backlinks > 0
    assert row["top_anchors_by_backlinks"] == [
        {"anchor": c.value, "backlinks": c.backlinks} for c in s.top_anchors_by_backlinks]
    assert row["top_pages_by_refdomains"] == [
        {"url": c.value, "refdomains": c.refdomains} for c in s.top_pages_by_refdomains]
    assert set(row["top_tlds"][0]) == {"tld", "count"}


def test_batch_endpoints_get_and_post(api: Api, top: str) -> None:
    targets = [top, api.world.seeds()[0], top]
    resolved = [q.resolve_target(t, "domain") for t in targets]
    want = q.metrics(api.store, resolved)
    body = get(api, "/metrics", target=targets, mode="domain")
    assert [m["backlinks"] for m in body["metrics"]] == [m.backlinks for m in want]
    assert [m["target"] for m in body["metrics"]] == targets
    r = api.client.post(V1 + "/metrics", params={"apikey": api.key},
                        json={"target": targets, "mode": "domain"})
    assert r.json() == body
    assert r.headers[COST_HEADER] == "300"
    for path, fn, name in (("/count", q.count_backlinks, "backlinks"),
                           ("/refdomains/count", q.count_refdomains, "refdomains"),
                           ("/referring-ips/count", q.count_ips, "ips"),
                           ("/referring-subnets/count", q.count_subnets, "subnets")):
        got = get(api, path, target=targets, mode="domain")["metrics"]
        assert got == [{"target": t, name: n}
                       for t, n in zip(targets, fn(api.store, resolved), strict=True)]


def test_all_and_filters(api: Api, top: str) -> None:
    t = q.resolve_target(top, "host")
    rows = get(api, "/all", target=top, limit=5)["backlinks"]
    page = q.find_backlinks(api.store, q.BacklinkQuery(t, limit=5))
    assert [r["url_from"] for r in rows] == [b.source_url for b in page.rows]
    assert set(rows[0]) == {"url_from", "url_to", "title", "anchor", "alt", "nofollow", "image",
                            "image_source", "inlink_rank", "domain_inlink_rank", "first_seen",
                            "last_visited"}
    nf = get(api, "/all", target=top, limit=10000, nofollow_filter="nofollow_only")["backlinks"]
    assert all(r["nofollow"] for r in nf)
    (m,) = q.metrics(api.store, [t])
    assert len(nf) == m.nofollow_backlinks
    one = get(api, "/all", target=top, limit=10000, per_domain=1)["backlinks"]
    assert len(one) == q.count_refdomains(api.store, [t])[0]
    ranked = get(api, "/all", target=top, order_by="first.inlink_rank")["backlinks"]
    ranks = [r["inlink_rank"] for r in ranked]
    assert ranks == sorted(ranks, reverse=True)


def test_raw_cursor_walks_every_backlink(api: Api, top: str) -> None:
    t = q.resolve_target(top, "domain")
    total = q.count_backlinks(api.store, [t])[0]
    seen: list[tuple[str, str]] = []
    params: dict[str, Any] = {"target": top, "mode": "domain", "limit": 7}
    for _ in range(1000):
        body = get(api, "/raw", **params)
        seen += [(r["url_from"], r["url_to"]) for r in body["backlinks"]]
        if "next" not in body:
            break
        params["next"] = body["next"]
    assert len(seen) == total
    r = api.client.get(V1 + "/raw", params={"apikey": api.key, "target": top, "next": ""})
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "next"
    r = api.client.get(V1 + "/raw", params={"apikey": api.key, "target": top, "next": "abc.def"})
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "next"
    assert api.client.post(V1 + "/raw", params={"apikey": api.key},
                           json={"target": top}).status_code == 405


def test_grouped_lists(api: Api, top: str) -> None:
    t = q.resolve_target(top, "host")
    anchors = get(api, "/anchors", target=top, order_by="refdomains", limit=3)["anchors"]
    want = q.list_anchors(api.store, t, order_by="refdomains", limit=3)
    assert [(a["anchor"], a["backlinks"], a["refdomains"]) for a in anchors] == [
        (g.value, g.backlinks, g.refdomains) for g in want]
    ips = get(api, "/referring-ips", target=top)["ips"]
    assert [i["ip"] for i in ips] == [g.value for g in q.list_referring_ips(api.store, t)]
    pages = get(api, "/indexed-pages", target=top)["pages"]
    assert [p["url"] for p in pages] == [g.value for g in q.indexed_pages(api.store, t)]
    refd = get(api, "/refdomains", target=top, order_by="domain_inlink_rank")["refdomains"]
    want_rd = q.list_refdomains(api.store, t, order_by="domain_inlink_rank")
    assert [(r["refdomain"], r["backlinks"]) for r in refd] == [
        (r.domain, r.backlinks) for r in want_rd]
    assert set(refd[0]) == {"refdomain", "backlinks", "dofollow_backlinks", "first_seen",
                            "domain_inlink_rank"}


def test_history(api: Api, top: str) -> None:
    t = q.resolve_target(top, "domain")
    start = api.today - dt.timedelta(days=2)
    hq = q.HistoryQuery(t, start, api.today)
    rows = get(api, "/history", target=top, mode="domain", date_from=start.isoformat(),
               limit=10000)["new_lost_backlinks"]
    want = q.list_history(api.store, hq, limit=10000)
    assert len(rows) == len(want) > 0
    assert {r["new_lost_type"] for r in rows} <= {"new", "lost"}
    assert all((r["reason_lost"] is None) == (r["new_lost_type"] == "new") for r in rows)
    counts = get(api, "/history/count", target=top, mode="domain",
                 date_from=start.isoformat())["new_lost_backlinks_count"]
    assert counts == [{"date": d.day.isoformat(), "new": d.new, "lost": d.lost}
                      for d in reversed(q.history_counts(api.store, hq))]
    cum = get(api, "/history/cumulative", target=top, mode="domain")["backlinks_count"]
    # default range: yesterday and today by the server's clock, newest first
    assert [c["date"] for c in cum] == [api.today.isoformat(),
                                        (api.today - dt.timedelta(days=1)).isoformat()]
    assert cum[0]["backlinks"] == q.count_backlinks(api.store, [t])[0]
    new_only = get(api, "/history/count", target=top, mode="domain", new_lost_type="new",
                   date_from=start.isoformat())["new_lost_backlinks_count"]
    assert all(c["lost"] == 0 for c in new_only)


# ---------------------------------------------------------------- auth, credits, errors

def test_auth(api: Api, top: str) -> None:
    r = api.client.get(V1 + "/count", params={"target": top})
    assert r.status_code == 401 and r.json()["error"]["parameter"] == "apikey"
    r = api.client.get(V1 + "/count", params={"target": top, "apikey": "nope"})
    assert r.status_code == 401 and set(r.json()["error"]) == {"code", "message", "parameter"}
    project = api.new_key(100, dialect="project")
    assert api.client.get(V1 + "/count", params={"target": top, "apikey": project}
                          ).status_code == 401
    r = api.client.get(V1 + "/count", params={"target": top},
                       headers={"Authorization": f"Token {api.key}"})
    assert r.status_code == 200
    r = api.client.get(V1 + "/count", params={"target": top, "apiKey": api.key})
    assert r.status_code == 200


def test_credits_charged_and_refused(api: Api, top: str) -> None:
    key = api.new_key(25)
    r = api.client.get(V1 + "/count", params={"apikey": key, "target": [top, top]})
    assert r.headers[COST_HEADER] == "20" and r.headers[REMAINING_HEADER] == "5"
    r = api.client.get(V1 + "/count", params={"apikey": key, "target": top})
    assert r.status_code == 402
    assert r.json()["error"]["code"] == 402 and "credits" in r.json()["error"]["message"]
    r = api.client.get(V1 + "/all", params={"apikey": key, "target": top, "limit": 1})
    assert r.status_code == 200 and r.headers[REMAINING_HEADER] == "4"
    # a refused or invalid call costs nothing
    r = api.client.get(V1 + "/all", params={"apikey": key, "target": top, "limit": 0})
    assert r.status_code == 400
    r = api.client.get(V1 + "/all", params={"apikey": key, "target": top, "limit": 1})
    assert r.headers[REMAINING_HEADER] == "3"


def test_credits_never_overspent_under_concurrency(api: Api, top: str) -> None:
    key = api.new_key(50)  # five /count calls of 10
    statuses: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        r = api.client.get(V1 + "/count", params={"apikey": key, "target": top})
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert statuses.count(200) == 5 and statuses.count(402) == 11
    assert api.balance_in_index(key) == 0


@pytest.mark.parametrize(("path", "params", "name"), [
    ("/all", {"limit": "0"}, "limit"),
    ("/all", {"limit": "10001"}, "limit"),
    ("/all", {"limit": "ten"}, "limit"),
    ("/raw", {"limit": "100001"}, "limit"),
    ("/all", {"per_domain": "101"}, "per_domain"),
    ("/all", {"inlink_rank_from": "-1"}, "inlink_rank_from"),
    ("/all", {"domain_inlink_rank_to": "101"}, "domain_inlink_rank_to"),
    ("/all", {"order_by": "bogus"}, "order_by"),
    ("/all", {"url_from_filter": "x" * 2064}, "url_from_filter"),
    ("/all", {"anchor_filter": "caf\u00e9"}, "anchor_filter"),
    ("/all", {"nofollow_filter": "maybe"}, "nofollow_filter"),
    ("/count", {"mode": "site"}, "mode"),
    ("/count", {"output": "csv"}, "output"),
    ("/history", {"date_from": "2024-13-01"}, "date_from"),
    ("/history", {"new_lost_type": "gone"}, "new_lost_type"),
    ("/history", {"link_type": "img"}, "link_type"),
    ("/anchors", {"order_by": "rank"}, "order_by"),
])
def test_bad_parameters_are_400_naming_them(api: Api, top: str, path: str,
                                            params: dict[str, str], name: str) -> None:
    r = api.client.get(V1 + path, params={"apikey": api.key, "target": top, **params})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["parameter"] == name


def test_target_errors(api: Api, top: str) -> None:
    for params, name in (({}, "target"), ({"target": [top, top]}, "target"),
                         ({"target": "co.uk"}, "target"), ({"target": "ftp://x.com/"}, "target")):
        r = api.client.get(V1 + "/all", params={"apikey": api.key, **params})
        assert r.status_code == 400 and r.json()["error"]["parameter"] == name, r.text
    r = api.client.get(V1 + "/count", params={"apikey": api.key, "target": [top] * 101})
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "target"
    r = api.client.post(V1 + "/count", params={"apikey": api.key}, content=b"[not json")
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "body"
    r = api.client.get(V1 + "/nope", params={"apikey": api.key})
    assert r.status_code == 404 and "error" in r.json()


def test_xml_output(api: Api, top: str) -> None:
    r = api.client.get(V1 + "/metrics", params={"apikey": api.key, "target": top,
                                               "output": "xml"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(r.content)
    item = root.find("metrics/item")
    assert item is not None
    assert int(item.findtext("backlinks") or -1) == get(api, "/metrics", target=top
                                                         )["metrics"][0]["backlinks"]
    r = api.client.get(V1 + "/all", params={"apikey": api.key, "target": top, "limit": 0,
                                           "output": "xml"})
    assert r.status_code == 400
    assert ET.fromstring(r.content).findtext("error/parameter") == "limit"


def test_seed_examples_as_written(api: Api) -> None:
    """Seed 001's request examples with the host swapped and XXX as our key; targets the
    crawled world does not know answer with zeros and empty lists."""
    k = api.key
    auth = {"Authorization": f"Token {k}"}
    c = api.client
    examples = [
        c.get("/v1/backlinks/summary?target=rubyonrails.org&mode=host&output=json",
              headers=auth),
        c.get("/v1/backlinks/summary?target=https://www.seranking.com&target="
              "https://www.seranking.com&mode=url&output=json", headers=auth),
        c.post("/v1/backlinks/summary?output=json", headers=auth,
               content='{\n"target": [\n"https://www.seranking.com/",\n'
                       '"https://www.seranking.com/"\n],\n"mode": "host"\n}'),
        c.get(f"/v1/backlinks/metrics?apikey={k}&target=https://www.seranking.com&target="
              "https://www.seranking.com&mode=url&output=json"),
        c.get(f"/v1/backlinks/all?apikey={k}&target= seranking.com&mode=domain&limit=100"
              "&order_by=inlink_rank&per_domain=1&output=json"),
        c.post(f"/v1/backlinks/all?apikey={k}&output=json",
               json={"target": "https://www.seranking.com/", "order_by": "date_found",
                     "mode": "domain", "limit": 10, "per_domain": 1}),
        c.get(f"/v1/backlinks/raw?apiKey={k}&target=seranking.com&mode=domain&limit=2"
              "&output=json"),
        c.get(f"/v1/backlinks/count?apikey={k}&target=seranking.com&target=seranking.com"
              "&mode=host&output=json"),
        c.get(f"/v1/backlinks/history?apikey={k}&target=https://www.seranking.com&mode=domain"
              "&new_lost_type=new&date_from=2023-01-15&date_to=2023-01-15&link_type=href"
              "&anchor_type=text&dofollow=dofollow&output=json"),
        c.get(f"/v1/backlinks/history/count?apikey={k}&target=https://www.seranking.com"
              "&mode=domain&new_lost_type=new&date_from=2019-01-14&date_to=2019-01-16"
              "&link_type=href&anchor_type=text&dofollow=dofollow&output=json"),
        c.get(f"/v1/backlinks/history/cumulative?apikey={k}&target=https://www.seopowersuite"
              ".com&mode=domain&date_from=2019-01-14&date_to=2019-01-16&output=json"),
        c.get(f"/v1/backlinks/anchors?apikey={k}&target=https://seranking.com&mode=domain"
              "&limit=2&order_by=backlinks&output=json"),
        c.get(f"/v1/backlinks/refdomains?apikey={k}&target=seranking.com&mode=domain&limit=2"
              "&order_by=inlink_rank&output=json"),
        c.get(f"/v1/backlinks/refdomains/count?apikey={k}&target=https://www.seranking.com"
              "&target=https://www.seranking.com&mode=url&output=json"),
        c.get(f"/v1/backlinks/referring-ips?apikey={k}&target=https://seranking.com"
              "&mode=domain&limit=100&order_by=backlinks&output=json"),
        c.post(f"/v1/backlinks/referring-ips/count?apikey={k}&output=json",
               json={"target": ["https://www.seranking.com/", "https://www.us-seranking.com/"],
                     "mode": "host"}),
        c.get(f"/v1/backlinks/indexed-pages?apikey={k}&target=https://seranking.com"
              "&mode=domain&limit=100&order_by=backlinks&output=json"),
    ]
    for r in examples:
        assert r.status_code == 200, (r.request.url, r.text)
    assert examples[0].json()["summary"][0]["backlinks"] == 0
    assert len(examples[9].json()["new_lost_backlinks_count"]) == 3
    assert "next" not in examples[6].json()
