"""SE Ranking Data API (seed 001): referring-domain history, the authority endpoints and the
asynchronous export, checked against the world's ground truth, the stored rank runs and the
query layer; exports are private to their key and never overspend."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import threading
from typing import TYPE_CHECKING, Any

import pytest

from inlink import query as q
from inlink import urls
from inlink.api.app import COST_HEADER, REMAINING_HEADER
from inlink.api.exports import CSV_COLUMNS
from inlink.rank import page_rank

if TYPE_CHECKING:
    from conftest import Api  # tests/api/conftest.py

V1 = "/v1/backlinks"
DAYS = 3


@pytest.fixture(scope="module")
def top(api: Api) -> str:
    """The host with the most live backlinks in the crawled world."""
    return str(api.store.query(
        "SELECT target_host FROM links WHERE live AND NOT internal "
        "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")[0][0])


def get(api: Api, path: str, key: str | None = None, **params: Any) -> Any:
    r = api.client.get(V1 + path, params={"apikey": key or api.key, **params})
    assert r.status_code == 200, r.text
    return r.json()


def truth_backlinks(api: Api, host: str, day: int) -> list[tuple[str, str, str]]:
    """(source_key, target_key, source_domain) of the world's live backlinks into `host`
    after the crawl of `day`: the generator's own record, not the index."""
    out = []
    for t in api.world.live_links(day):
        if t.kind.value not in q.BACKLINK_KINDS:
            continue
        thost = urls.key_host(t.target_key)
        sdom = urls.registrable_domain(urls.key_host(t.source_key))
        if thost == host and sdom != urls.registrable_domain(thost):
            out.append((t.source_key, t.target_key, sdom))
    return out


# ---------------------------------------------------------------- referring-domain history

def test_refdomains_history_matches_truth(api: Api, top: str) -> None:
    d1 = api.world.date_of(1)
    live = {0: set[str]()} | {d: {s for *_, s in truth_backlinks(api, top, d)}
                              for d in range(1, DAYS + 1)}
    want = {(api.world.date_of(d).isoformat(), ev, dom) for d in range(1, DAYS + 1)
            for ev, doms in (("new", live[d] - live[d - 1]), ("lost", live[d - 1] - live[d]))
            for dom in doms}
    rows = get(api, "/refdomains/history", target=top, date_from=d1.isoformat(),
               date_to=api.today.isoformat(), limit=10_000)["new_lost_refdomains"]
    assert want and {(r["new_lost_date"], r["new_lost_type"], r["refdomain"])
                     for r in rows} == want
    assert len(rows) == len(want)
    assert set(rows[0]) == {"new_lost_date", "new_lost_type", "refdomain", "backlinks",
                            "dofollow_backlinks", "first_seen", "domain_inlink_rank"}
    dates = [r["new_lost_date"] for r in rows]
    assert dates == sorted(dates, reverse=True)  # default order: most recent first
    now = {}
    for _, _, dom in truth_backlinks(api, top, DAYS):
        now[dom] = now.get(dom, 0) + 1
    for r in rows:
        assert r["backlinks"] == now.get(r["refdomain"], 0)
    only_lost = get(api, "/refdomains/history", target=top, date_from=d1.isoformat(),
                    new_lost_type="lost", limit=10_000)["new_lost_refdomains"]
    assert {r["refdomain"] for r in only_lost} == {w[2] for w in want if w[1] == "lost"}

    counts = get(api, "/refdomains/history/count", target=top, date_from=d1.isoformat(),
                 date_to=api.today.isoformat())["new_lost_refdomains_count"]
    assert [c["date"] for c in counts] == [api.world.date_of(d).isoformat()
                                           for d in range(DAYS, 0, -1)]
    for c in counts:
        assert c["new"] == sum(1 for w in want if w[0] == c["date"] and w[1] == "new")
        assert c["lost"] == sum(1 for w in want if w[0] == c["date"] and w[1] == "lost")
    new_only = get(api, "/refdomains/history/count", target=top, date_from=d1.isoformat(),
                   new_lost_type="new")["new_lost_refdomains_count"]
    assert all(c["lost"] == 0 for c in new_only)


def test_refdomains_history_costs(api: Api, top: str) -> None:
    key = api.new_key(1000)
    r = api.client.get(V1 + "/refdomains/history/count", params={"apikey": key, "target": top})
    assert r.headers[COST_HEADER] == "100" and r.headers[REMAINING_HEADER] == "900"
    r = api.client.get(V1 + "/refdomains/history", params={"apikey": key, "target": top})
    assert r.headers[COST_HEADER] == "1"


# ---------------------------------------------------------------- authority

def test_authority_endpoints_report_the_current_run(api: Api, top: str) -> None:
    url = str(api.store.query(
        "SELECT target_key FROM links WHERE live AND NOT internal "
        "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")[0][0])
    stored = page_rank(api.store, url)
    assert stored is not None and stored.inlink_rank > 0
    body = api.client.post(V1 + "/authority", params={"apikey": api.key},
                           json={"target": [url, "https://nobody-links-here.com/"]})
    assert body.status_code == 200 and body.headers[COST_HEADER] == "200"
    (page, nobody) = body.json()["pages"]
    assert page == {"url": url, "inlink_rank": stored.inlink_rank,
                    "domain_inlink_rank": stored.domain_inlink_rank}
    assert nobody["inlink_rank"] == 0 and nobody["domain_inlink_rank"] == 0

    (p,) = get(api, "/authority/page", target=url)["pages"]
    assert p == {"url": url, "inlink_rank": stored.inlink_rank}
    site = url.split("/")[0] + "//" + urls.key_host(url)
    (d,) = get(api, "/authority/domain", target=url)["pages"]
    assert d == {"url": site, "domain_inlink_rank": stored.domain_inlink_rank}
    # a bare host (no scheme) is its best root page, as the seed's examples use
    (h,) = get(api, "/authority", target=top)["pages"]
    assert h["url"].endswith("://" + top + "/")
    assert h["domain_inlink_rank"] == get(api, "/authority/domain", target=top
                                          )["pages"][0]["domain_inlink_rank"]


def test_domain_rank_distribution_matches_truth(api: Api, top: str) -> None:
    refdomains = {s for *_, s in truth_backlinks(api, top, DAYS)}
    hist = get(api, "/authority/domain/distribution", target=top, histogramMode="domain"
               )["histogram"]
    assert sum(h["refdomains"] for h in hist) == len(refdomains)
    ranks = [h["domain_inlink_rank"] for h in hist]
    assert ranks == sorted(ranks) and all(0 <= r <= 100 for r in ranks)
    want: dict[int, int] = {}
    for dom in refdomains:
        rows = api.store.query("SELECT inlink_rank FROM rank_domains WHERE domain = ? AND "
                               "run_id = (SELECT max(run_id) FROM rank_runs)", [dom])
        r = int(rows[0][0]) if rows else 0
        want[r] = want.get(r, 0) + 1
    assert {h["domain_inlink_rank"]: h["refdomains"] for h in hist} == want
    by_host = get(api, "/authority/domain/distribution", target=top)["histogram"]  # host
    assert sum(h["refdomains"] for h in by_host) >= len(refdomains)
    r = api.client.get(V1 + "/authority/domain/distribution",
                       params={"apikey": api.key, "target": top, "histogramMode": "tld"})
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "histogramMode"


def test_authority_history_has_one_point_per_rank_run(api: Api) -> None:
    url = str(api.store.query(
        "SELECT target_key FROM links WHERE live AND NOT internal "
        "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")[0][0])
    runs = api.store.query(
        "SELECT r.day, p.inlink_rank FROM rank_runs r JOIN rank_pages p USING (run_id) "
        "WHERE p.url_key = ? ORDER BY r.day DESC", [url])
    assert len(runs) == DAYS  # the fixture ranks after every day's crawl
    d1 = api.world.date_of(1)
    ranks = get(api, "/authority/page/history", target=url, date_from=d1.isoformat(),
                date_to=api.today.isoformat())["ranks"]
    assert [(r["date"], r["inlink_rank"]) for r in ranks] == [
        (day.isoformat(), int(rank)) for day, rank in runs]
    # by_month: one bucket, the latest value, dated by the range's first day
    (month,) = get(api, "/authority/page/history", target=url, date_from=d1.isoformat(),
                   granularity="by_month")["ranks"]
    assert month == {"date": max(d1, d1.replace(day=1)).isoformat(),
                     "inlink_rank": int(runs[0][1])}
    # the default range is the month before today
    assert len(get(api, "/authority/page/history", target=url)["ranks"]) == DAYS
    domain = urls.registrable_domain(urls.key_host(url))
    dom_runs = api.store.query(
        "SELECT r.day, d.inlink_rank FROM rank_runs r JOIN rank_domains d USING (run_id) "
        "WHERE d.domain = ? ORDER BY r.day DESC", [domain])
    got = get(api, "/authority/domain/history", target=domain, date_from=d1.isoformat()
              )["ranks"]
    assert [(r["date"], r["domain_inlink_rank"]) for r in got] == [
        (day.isoformat(), int(rank)) for day, rank in dom_runs]
    r = api.client.get(V1 + "/authority/page/history",
                       params={"apikey": api.key, "target": url, "granularity": "by_year"})
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "granularity"
    r = api.client.post(V1 + "/authority/page/history", params={"apikey": api.key},
                        json={"target": url})
    assert r.status_code == 405


# ---------------------------------------------------------------- export

def _wait_status(api: Api, key: str, task_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
    while dt.datetime.now() < deadline:
        body = get(api, "/export/status", key=key, task_id=task_id)
        if body["task_status"] not in ("queued_for_processing", "processing"):
            return dict(body)
        threading.Event().wait(0.05)
    raise AssertionError(f"export {task_id} did not finish in {timeout} s")


def test_export_flow_gives_every_backlink(api: Api, top: str) -> None:
    key = api.new_key(10)
    r = api.client.get(V1 + "/export", params={"apikey": key, "target": top, "mode": "host"})
    assert r.status_code == 200 and r.headers[COST_HEADER] == "1"
    assert r.headers[REMAINING_HEADER] == "9"
    started = r.json()
    assert started["task_status"] == "queued_for_processing"
    done = _wait_status(api, key, started["task_id"])
    assert done["task_status"] == "complete" and done["task_id"] == started["task_id"]
    url = done["download_file"]
    assert url.startswith("http://testserver/export/") and url.endswith(".csv.gz")
    path = url.removeprefix("http://testserver")
    # the seed's step 3: a plain GET of the location returned
    f = api.client.get(path)
    assert f.status_code == 200 and f.headers["content-type"] == "application/gzip"
    rows = list(csv.reader(io.StringIO(gzip.decompress(f.content).decode("utf-8"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    got = sorted((urls.normalize_url(r[0]), urls.normalize_url(r[1])) for r in rows[1:])
    want = sorted((s, t) for s, t, _ in truth_backlinks(api, top, DAYS))
    assert got == want
    # what the listing endpoint says about the same rows
    listed = get(api, "/all", target=top, limit=10_000)["backlinks"]
    assert len(listed) == len(rows) - 1
    # status calls cost nothing
    r = api.client.get(V1 + "/export/status", params={"apikey": key,
                                                       "task_id": started["task_id"]})
    assert r.headers[COST_HEADER] == "0" and r.headers[REMAINING_HEADER] == "9"


def test_export_is_private_to_its_key(api: Api, top: str) -> None:
    owner, other = api.new_key(10), api.new_key(10)
    task_id = get(api, "/export", key=owner, target=top)["task_id"]
    done = _wait_status(api, owner, task_id)
    assert get(api, "/export/status", key=other, task_id=task_id) == {
        "task_status": "unknown", "task_id": task_id}
    path = done["download_file"].removeprefix("http://testserver")
    assert api.client.get(path, params={"apikey": other}).status_code == 404
    assert api.client.get(path, headers={"Authorization": f"Token {owner}"}
                          ).status_code == 200
    token, name = path.split("/")[2:4]
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    r = api.client.get(f"/export/{forged}/{name}")
    assert r.status_code == 404 and "error" in r.json()
    assert api.client.get(f"/export/{token}/other.csv.gz").status_code == 404
    assert get(api, "/export/status", key=owner, task_id="not-a-task")["task_status"] == \
        "unknown"
    r = api.client.get(V1 + "/export/status", params={"apikey": owner})
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "task_id"


def test_export_rejected_while_one_runs_and_never_overspent(api: Api, top: str) -> None:
    key = api.new_key(3)
    statuses: list[str] = []
    lock = threading.Lock()
    api.exports.pause()
    try:
        def call() -> None:
            r = api.client.get(V1 + "/export", params={"apikey": key, "target": top})
            with lock:
                statuses.append(r.json().get("task_status", str(r.status_code)))

        threads = [threading.Thread(target=call) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        api.exports.resume()
    # one task starts; the others are refused while it is queued, and cost nothing
    assert statuses.count("queued_for_processing") == 1
    assert statuses.count("rejected") == 7
    assert api.balance_in_index(key) == 2
    assert api.exports.wait_idle(60)
    # finished: the next request starts; a key without credits gets 402, nothing queued
    get(api, "/export", key=key, target=top)
    assert api.exports.wait_idle(60)
    get(api, "/export", key=key, target=top)
    assert api.exports.wait_idle(60)
    r = api.client.get(V1 + "/export", params={"apikey": key, "target": top})
    assert r.status_code == 402
    assert api.balance_in_index(key) == 0


def test_export_and_authority_bad_input(api: Api, top: str) -> None:
    for path, params, name in (
        ("/export", {}, "target"),
        ("/export", {"target": top, "mode": "site"}, "mode"),
        ("/authority", {}, "target"),
        ("/authority/page", {"target": ["a.com"] * 101}, "target"),
        ("/authority/page/history", {"target": "a.com", "date_from": "2024-02-30"},
         "date_from"),
        ("/authority/page/history", {"target": ["a.com", "b.com"]}, "target"),
        ("/authority/page/history", {"target": "a.com", "date_from": "2024-05-02",
                                     "date_to": "2024-05-01"}, "date_from"),
        ("/refdomains/history", {"target": top, "order_by": "refdomain"}, "order_by"),
        ("/refdomains/history/count", {"target": top, "new_lost_type": "both"},
         "new_lost_type"),
    ):
        r = api.client.get(V1 + path, params={"apikey": api.key, **params})
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error"]["parameter"] == name, (path, r.text)
    assert api.client.post(V1 + "/export", params={"apikey": api.key},
                           json={"target": top}).status_code == 405


def test_seed_examples_as_written(api: Api) -> None:
    """Seed 001's request examples of these endpoints, the host swapped and XXX our key."""
    k = api.key
    c = api.client
    examples = [
        c.get(f"/v1/backlinks/refdomains/history?apikey={k}&target=https://www.seranking.com"
              "&mode=domain&new_lost_type=new&date_from=2023-01-15&date_to=2023-01-16"
              "&output=json"),
        c.post(f"/v1/backlinks/refdomains/history?apikey={k}&output=json",
               content='{\n  "target": "https://www.seranking.com",\n  "mode": "domain",\n'
                       '  "new_lost_type": "new",\n  "date_from": "2023-01-15",\n'
                       '  "date_to": "2023-01-16"\n}'),
        c.get(f"/v1/backlinks/refdomains/history/count?apikey={k}&target=https://www."
              "seranking.com&mode=domain&new_lost_type=new&date_from=2023-01-15"
              "&date_to=2023-01-16&output=json"),
        c.get(f"/v1/backlinks/authority?apikey={k}&target=https://www.seranking.com"
              "&output=json"),
        c.post(f"/v1/backlinks/authority?apikey={k}&output=json",
               json={"target": ["https://www.seranking.com/",
                                "https://www.seranking.com/rank-tracker/"]}),
        c.get(f"/v1/backlinks/authority/domain?apikey={k}&target=https://seranking.com"
              "&target=https://www.seranking.com&output=json"),
        c.get(f"/v1/backlinks/authority/domain/distribution?apikey={k}&output=json"
              "&target=seranking.com&mode=host&histogramMode=domain"),
        c.get(f"/v1/backlinks/authority/page?apikey={k}&target=https://seranking.com"
              "&target=https://www.us-seranking.com&mode=url&output=json"),
        c.post(f"/v1/backlinks/authority/page?apikey={k}&output=json",
               json={"target": ["https://www.seranking.com/",
                                "https://www.seranking.com/rank-tracker/"]}),
        c.get(f"/v1/backlinks/authority/page/history?apikey={k}&output=json"
              "&target=seranking.com&date_from=2025-02-01&date_to=2025-04-01"
              "&granularity=by_month"),
        c.get(f"/v1/backlinks/export/status?apikey={k}&task_id=d1d2bb44-6c66-4791-a634-"
              "26103551e2da&output=json"),
    ]
    for r in examples:
        assert r.status_code == 200, (r.request.url, r.text)
    assert len(examples[2].json()["new_lost_refdomains_count"]) == 2
    assert [p["url"] for p in examples[5].json()["pages"]] == ["https://seranking.com",
                                                                "https://www.seranking.com"]
    assert examples[10].json()["task_status"] == "unknown"
    assert examples[9].json() == {"ranks": []}  # nothing known of that page then


def test_oversized_post_body_is_413(api: Api) -> None:
    big = b'{"target": "' + b"a" * (2 << 20) + b'"}'
    r = api.client.post(V1 + "/metrics", params={"apikey": api.key}, content=big)
    assert r.status_code == 413 and r.json()["error"]["parameter"] == "body"
    r = api.client.post(V1 + "/metrics", params={"apikey": api.key},
                        json={"target": ["example.com"] * 100})
    assert r.status_code == 200 and len(r.json()["metrics"]) == 100


def test_export_cells_do_not_run_as_formulas() -> None:
    from inlink.api.exports import _cell

    assert _cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert _cell("-50% off") == "'-50% off" and _cell("@me") == "'@me"
    assert _cell("plain anchor") == "plain anchor" and _cell("") == ""
