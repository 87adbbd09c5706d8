"""Spam score: a hand-made link farm scores high, an ordinary site low; signals explain it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from rank_helpers import Web, day, link, page

from inlink.index.store import Store
from inlink.rank import SIGNALS, run_rank, spam_score
from inlink.settings import Settings

MONEY = "https://money.example/"
FARM = [f"https://deals{i}.xyz/" for i in range(12)]


def farm_web(web: Web) -> None:
    at = day(1)
    # Link farm: 12 hosts on one /24, risky TLD, thin pages, each page links to every other
    # farm host (reciprocal ring) and to the money site with exact-match anchors.
    for i, home in enumerate(FARM):
        for p in range(4):
            url = home if p == 0 else f"{home}p{p}"
            links = [link(other, "best payday loans") for other in FARM if other != home]
            links += [link(MONEY, "cheap payday loans online"),
                      link(MONEY + f"offer{p}", "instant loans"),
                      link(f"{home}p{(p % 3) + 1}", "more")]
            links += [link(f"https://dir{i}-{k}.example/", "buy now") for k in range(40)]
            web.add(page(url, links, at, ip=f"203.0.113.{10 + i}", size=900))
    # Ordinary sites: different networks, editorial anchors, real pages, a few outlinks.
    for i in range(12):
        home = f"https://site{i}.example/"
        outs = [link(f"https://site{(i + k) % 12}.example/", f"article about topic {k}")
                for k in (1, 2, 5)]
        for p in range(4):
            url = home if p == 0 else f"{home}post{p}"
            web.add(page(url, [*outs, link(f"{home}post{(p % 3) + 1}", "next", location="nav")],
                         at, ip=f"10.{i}.{p}.5", size=40_000, internal=10))
    web.commit()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "index.duckdb")
    farm_web(Web(s))
    yield s
    s.close()


def test_farm_scores_high_and_ordinary_low(store: Store) -> None:
    farm = spam_score(store, "deals3.xyz")            # computed live (no run yet)
    ordinary = spam_score(store, "site3.example")
    assert farm.kind == "domain" and farm.score >= 60, farm
    assert ordinary.score <= 10, ordinary
    names = {s.name for s in farm.signals if s.contribution > 0}
    assert {"referrer_subnet", "risky_tld", "thin_pages", "reciprocal",
            "outbound_links", "anchor_commercial"} <= names
    assert [s.contribution for s in farm.signals] == sorted(
        (s.contribution for s in farm.signals), reverse=True)
    assert sum(s.contribution for s in farm.signals) == pytest.approx(farm.score, abs=1)
    assert all(s.explanation for s in farm.signals)

    money = spam_score(store, "money.example")        # the target of the farm
    assert money.score >= 40
    assert {s.name for s in money.signals if s.contribution > 0} >= {
        "referrer_subnet", "anchor_commercial"}


def test_page_spam(store: Store) -> None:
    farm_home = spam_score(store, FARM[0])            # linked from the other farm hosts
    farm_page = spam_score(store, FARM[0] + "p1")     # no external referrers of its own
    ordinary_page = spam_score(store, "https://site2.example/post1")
    ordinary_home = spam_score(store, "https://site2.example/")
    assert farm_home.kind == "page" and farm_home.score >= 70, farm_home
    assert farm_page.score >= 45, farm_page
    assert ordinary_page.score < 15 and ordinary_home.score < 15


def test_stored_with_the_run_matches_live(store: Store) -> None:
    live = {t: spam_score(store, t) for t in ("deals1.xyz", "site1.example",
                                               "money.example", FARM[2] + "p2")}
    run_rank(store, Settings(as_of=dt.date(2026, 3, 1)))
    for t, want in live.items():
        got = spam_score(store, t)
        assert got == want
    n = store.query("SELECT count(*) FROM rank_spam WHERE kind = 'domain'")[0][0]
    assert n == store.query("SELECT count(*) FROM rank_domains")[0][0]


def test_signal_weights_documented() -> None:
    assert sum(s.weight for s in SIGNALS) >= 100
    assert len({s.name for s in SIGNALS}) == 8
