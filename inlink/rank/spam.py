"""Spam score 0-100 for pages and domains: eight documented signals, each with its share.

Signals are read from the index with SQL (in bulk for a rank run, or for one target), then
scored in numpy by `SIGNALS`; docs/rank.md lists the thresholds and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from inlink import urls
from inlink.index.store import Store
from inlink.rank.graph import PASSING_LINK

#: TLDs with the highest shares of abuse in public reports (Spamhaus "most abused TLDs",
#: Interisle phishing studies); a weak signal alone, strong together with others.
RISKY_TLDS = frozenset({
    "xyz", "top", "click", "loan", "work", "gq", "ml", "cf", "tk", "ga", "buzz", "icu",
    "cyou", "rest", "fit", "bid", "win", "review", "date", "racing", "party", "stream",
    "download", "men", "kim", "country", "cricket", "science", "accountant", "faith", "zip",
    "mov", "sbs", "cfd", "lol", "monster", "quest",
})

#: Words of money keywords link sellers repeat as exact-match anchors (RE2 syntax).
COMMERCIAL_ANCHOR = (
    r"\b(loans?|payday|casinos?|poker|slots?|betting|bet|viagra|cialis|pharmacy|pills|"
    r"cheap|buy|discount|bonus|deposit|crypto|forex|replica|essays?|porn|xxx|escort|"
    r"dating|seo services|backlinks)\b"
)
#: A page is thin below this many bytes, or when it is mostly markup of links
#: (fewer than THIN_BYTES_PER_LINK bytes per link it carries).
THIN_BYTES = 1500
THIN_BYTES_PER_LINK = 80
#: Referrer-based signals need this many referring domains for full weight.
FULL_CONFIDENCE_REFERRERS = 5
SITEWIDE_SHARE = 0.8       # a footer link on >= 80% of a domain's pages is sitewide
SITEWIDE_MIN_PAGES = 3


@dataclass(frozen=True, slots=True)
class Signal:
    """How one raw value becomes points: weight * clamp((value - low) / (high - low))."""

    name: str
    weight: float
    low: float
    high: float
    by_referrers: bool      # scaled by min(1, referrers / FULL_CONFIDENCE_REFERRERS)
    explain: str            # format string with {value}


SIGNALS: tuple[Signal, ...] = (
    Signal("outbound_links", 10, 20, 60, False,
           "{value:.0f} external links per page (ordinary pages carry < 20)"),
    Signal("referrer_subnet", 20, 0.3, 0.8, True,
           "{value:.0%} of referring domains sit on one /24 network"),
    Signal("anchor_commercial", 20, 0.1, 0.5, True,
           "{value:.0%} of inbound anchors are exact-match money keywords"),
    Signal("thin_pages", 10, 0.2, 0.8, False,
           "{value:.0%} of pages are thin (< 1500 bytes or mostly links)"),
    Signal("risky_tld", 15, 0, 1, False, "top-level domain is on the risky list: {value:.0f}"),
    Signal("out_degree", 10, 100, 400, False,
           "{value:.0f} distinct external targets on one page"),
    Signal("sitewide_footer", 5, 2, 6, False,
           "{value:.0f} external targets linked from the footer of most pages"),
    Signal("reciprocal", 15, 0.2, 0.6, True,
           "{value:.0%} of referring domains are linked back (link exchange)"),
)
SIGNAL_NAMES = tuple(s.name for s in SIGNALS)
SPAM_MODEL = "spam-1"      # stored with each run: bump when weights or thresholds change


@dataclass(frozen=True, slots=True)
class SpamSignal:
    name: str
    value: float
    contribution: float     # points out of 100
    explanation: str


@dataclass(frozen=True, slots=True)
class SpamScore:
    """A 0-100 spam score and the signals that raised it (largest contribution first)."""

    target: str
    kind: str               # "page" | "domain"
    score: int
    signals: list[SpamSignal]


#: Site-level signals a page inherits from its domain, already confidence-scaled there.
INHERITED = frozenset({"sitewide_footer", "reciprocal"})


def score_signals(values: dict[str, npt.NDArray[np.float64]],
                  referrers: npt.NDArray[np.float64], kind: str = "domain",
                  ) -> tuple[npt.NDArray[np.int16], dict[str, npt.NDArray[np.float64]]]:
    """Vectorised: raw signal columns -> total score and per-signal contributions."""
    confidence = np.minimum(1.0, referrers / FULL_CONFIDENCE_REFERRERS)
    parts: dict[str, npt.NDArray[np.float64]] = {}
    total = np.zeros(len(referrers))
    for sig in SIGNALS:
        v = values[sig.name]
        part = sig.weight * np.clip((v - sig.low) / (sig.high - sig.low), 0.0, 1.0)
        if sig.by_referrers and not (kind == "page" and sig.name in INHERITED):
            part = part * confidence
        parts[sig.name] = part
        total += part
    return np.minimum(100, np.rint(total)).astype(np.int16), parts


def explain_row(target: str, kind: str, row: dict[str, float]) -> SpamScore:
    """One stored or computed row of signal values -> SpamScore with explanations."""
    values = {n: np.asarray([float(row[n])]) for n in SIGNAL_NAMES}
    score, parts = score_signals(values, np.asarray([float(row["referrers"])]), kind)
    signals = [SpamSignal(s.name, float(row[s.name]), round(float(parts[s.name][0]), 2),
                          s.explain.format(value=float(row[s.name])))
               for s in SIGNALS]
    signals.sort(key=lambda s: -s.contribution)
    return SpamScore(target=target, kind=kind, score=int(score[0]), signals=signals)


def _risky(domains: npt.NDArray[np.object_]) -> npt.NDArray[np.float64]:
    return np.fromiter((1.0 if urls.tld(str(d)) in RISKY_TLDS else 0.0 for d in domains),
                       dtype=np.float64, count=len(domains))


_DOMAIN_SQL = f"""
WITH dom AS (
    SELECT domain FROM pages WHERE $one IS NULL OR domain = $one
    UNION SELECT target_domain FROM links
        WHERE live AND ($one IS NULL OR target_domain = $one)
), html AS (
    SELECT domain, avg(external_links) AS outbound_links, count(*) AS n_pages,
           avg(CASE WHEN size < {THIN_BYTES}
                      OR size < {THIN_BYTES_PER_LINK} * (internal_links + external_links)
                    THEN 1.0 ELSE 0.0 END) AS thin_pages
    FROM pages WHERE external_links IS NOT NULL AND ($one IS NULL OR domain = $one)
    GROUP BY domain
), inbound AS (
    SELECT target_domain AS domain, source_domain, source_subnet, anchor, kind
    FROM links WHERE live AND NOT internal AND kind IN ('anchor', 'image')
      AND ($one IS NULL OR target_domain = $one)
), refs AS (
    SELECT domain, count(DISTINCT source_domain) AS referrers,
           avg(CASE WHEN regexp_matches(lower(anchor), '{COMMERCIAL_ANCHOR}')
                    THEN 1.0 ELSE 0.0 END) AS anchor_commercial
    FROM inbound GROUP BY domain
), subnet AS (
    SELECT domain, max(n) AS top FROM (
        SELECT domain, source_subnet, count(DISTINCT source_domain) AS n FROM inbound
        WHERE source_subnet IS NOT NULL GROUP BY ALL) GROUP BY domain
), outbound AS (
    SELECT source_domain AS domain, source_key, target_domain, target_key, location,
           ({PASSING_LINK}) AS passing
    FROM links WHERE live AND NOT internal AND ($one IS NULL OR source_domain = $one)
), degree AS (
    SELECT domain, max(n) AS out_degree FROM (
        SELECT domain, source_key, count(DISTINCT target_key) AS n FROM outbound GROUP BY ALL)
    GROUP BY domain
), footer AS (
    SELECT f.domain, count(*) AS sitewide FROM (
        SELECT domain, target_key, count(DISTINCT source_key) AS n FROM outbound
        WHERE location = 'footer' GROUP BY ALL) f
    JOIN html h ON h.domain = f.domain
    WHERE h.n_pages >= {SITEWIDE_MIN_PAGES} AND f.n >= {SITEWIDE_SHARE} * h.n_pages
    GROUP BY f.domain
), recip AS (
    SELECT r.domain, count(*) AS n
    FROM (SELECT DISTINCT domain, source_domain FROM inbound) r
    JOIN (SELECT DISTINCT domain, target_domain FROM outbound WHERE passing) o
      ON o.domain = r.domain AND o.target_domain = r.source_domain
    GROUP BY r.domain
)
SELECT dom.domain AS target,
       coalesce(html.outbound_links, 0)::DOUBLE AS outbound_links,
       coalesce(subnet.top / refs.referrers, 0)::DOUBLE AS referrer_subnet,
       coalesce(refs.referrers, 0)::INTEGER AS referrers,
       coalesce(refs.anchor_commercial, 0)::DOUBLE AS anchor_commercial,
       coalesce(html.thin_pages, 0)::DOUBLE AS thin_pages,
       coalesce(degree.out_degree, 0)::DOUBLE AS out_degree,
       coalesce(footer.sitewide, 0)::DOUBLE AS sitewide_footer,
       coalesce(recip.n / refs.referrers, 0)::DOUBLE AS reciprocal
FROM dom
LEFT JOIN html USING (domain) LEFT JOIN refs USING (domain) LEFT JOIN subnet USING (domain)
LEFT JOIN degree USING (domain) LEFT JOIN footer USING (domain) LEFT JOIN recip USING (domain)
"""

# Page signals: the page's own facts and referrers; sitewide footer and reciprocity are
# properties of the site that hosts it, taken from the domain rows (`dspam`).
_PAGE_SQL = f"""
WITH pg AS (
    SELECT url_key, domain FROM pages WHERE $one IS NULL OR url_key = $one
    UNION SELECT target_key, target_domain FROM links
        WHERE live AND ($one IS NULL OR target_key = $one)
), facts AS (
    SELECT url_key, external_links::DOUBLE AS outbound_links,
           CASE WHEN size < {THIN_BYTES}
                  OR size < {THIN_BYTES_PER_LINK} * (internal_links + external_links)
                THEN 1.0 ELSE 0.0 END AS thin_pages
    FROM pages WHERE external_links IS NOT NULL AND ($one IS NULL OR url_key = $one)
), inbound AS (
    SELECT target_key AS url_key, source_domain, source_subnet, anchor
    FROM links WHERE live AND NOT internal AND kind IN ('anchor', 'image')
      AND ($one IS NULL OR target_key = $one)
), refs AS (
    SELECT url_key, count(DISTINCT source_domain) AS referrers,
           avg(CASE WHEN regexp_matches(lower(anchor), '{COMMERCIAL_ANCHOR}')
                    THEN 1.0 ELSE 0.0 END) AS anchor_commercial
    FROM inbound GROUP BY url_key
), subnet AS (
    SELECT url_key, max(n) AS top FROM (
        SELECT url_key, source_subnet, count(DISTINCT source_domain) AS n FROM inbound
        WHERE source_subnet IS NOT NULL GROUP BY ALL) GROUP BY url_key
), degree AS (
    SELECT source_key AS url_key, count(DISTINCT target_key) AS out_degree
    FROM links WHERE live AND NOT internal AND ($one IS NULL OR source_key = $one)
    GROUP BY source_key
)
SELECT pg.url_key AS target, pg.domain,
       coalesce(facts.outbound_links, 0)::DOUBLE AS outbound_links,
       coalesce(subnet.top / refs.referrers, 0)::DOUBLE AS referrer_subnet,
       coalesce(refs.referrers, 0)::INTEGER AS referrers,
       coalesce(refs.anchor_commercial, 0)::DOUBLE AS anchor_commercial,
       coalesce(facts.thin_pages, 0)::DOUBLE AS thin_pages,
       coalesce(degree.out_degree, 0)::DOUBLE AS out_degree,
       coalesce(d.sitewide_footer, 0)::DOUBLE AS sitewide_footer,
       coalesce(d.reciprocal, 0)::DOUBLE AS reciprocal
FROM pg
LEFT JOIN facts USING (url_key) LEFT JOIN refs USING (url_key)
LEFT JOIN subnet USING (url_key) LEFT JOIN degree USING (url_key)
LEFT JOIN dspam d ON d.target = pg.domain
"""


def compute_signals(cur: duckdb.DuckDBPyConnection, kind: str,
                    one: str | None = None) -> dict[str, Any]:
    """Raw signal columns (numpy) for every domain/page, or only `one` of them.

    For pages, the domain signals must be registered first as `dspam` (see
    `compute_all`); `compute_one` does that for the page's own domain.
    """
    sql = _DOMAIN_SQL if kind == "domain" else _PAGE_SQL
    cols: dict[str, Any] = cur.execute(sql, {"one": one}).fetchnumpy()
    targets = np.asarray(cols["target"], dtype=object)
    if kind == "domain":
        cols["risky_tld"] = _risky(targets)
    else:
        cols["risky_tld"] = _risky(np.asarray(cols["domain"], dtype=object))
    return cols


def scored_table(cols: dict[str, Any], kind: str) -> tuple[npt.NDArray[np.int16],
                                                          dict[str, Any]]:
    values = {n: np.asarray(cols[n], dtype=np.float64) for n in SIGNAL_NAMES}
    score, _ = score_signals(values, np.asarray(cols["referrers"], dtype=np.float64), kind)
    return score, values


def compute_all(cur: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """Signals and scores of every domain and page (for a rank run)."""
    out: dict[str, dict[str, Any]] = {}
    dom = compute_signals(cur, "domain")
    dom["score"], _ = scored_table(dom, "domain")
    out["domain"] = dom
    _register_domains(cur, dom)
    try:
        page = compute_signals(cur, "page")
    finally:
        cur.unregister("dspam")
    page["score"], _ = scored_table(page, "page")
    out["page"] = page
    return out


def _register_domains(cur: duckdb.DuckDBPyConnection, dom: dict[str, Any]) -> None:
    import pyarrow as pa

    cur.register("dspam", pa.table({
        "target": pa.array([str(t) for t in dom["target"]], pa.string()),
        "sitewide_footer": pa.array(np.asarray(dom["sitewide_footer"], dtype=np.float64)),
        # Pages inherit reciprocity with the domain's confidence (its referrers, not theirs).
        "reciprocal": pa.array(np.asarray(dom["reciprocal"], dtype=np.float64) * np.minimum(
            1.0, np.asarray(dom["referrers"], dtype=np.float64) / FULL_CONFIDENCE_REFERRERS)),
    }))


def compute_one(cur: duckdb.DuckDBPyConnection, target: str, kind: str) -> SpamScore:
    """The spam score of one page (url_key) or domain, read live from the index."""
    if kind == "domain":
        cols = compute_signals(cur, "domain", target)
    else:
        domain = urls.registrable_domain(urls.host_of(target))
        dom = compute_signals(cur, "domain", domain)
        _register_domains(cur, dom)
        try:
            cols = compute_signals(cur, "page", target)
        finally:
            cur.unregister("dspam")
    if len(cols["target"]) == 0:
        row = {n: 0.0 for n in (*SIGNAL_NAMES, "referrers")}
        row["risky_tld"] = float(urls.tld(urls.host_of(target) if kind == "page" else target)
                                 in RISKY_TLDS)
    else:
        row = {n: float(cols[n][0]) for n in (*SIGNAL_NAMES, "referrers")}
    return explain_row(target, kind, row)


def target_kind(target: str) -> tuple[str, str]:
    """("page", url_key) for a URL, ("domain", registrable domain) for anything else."""
    from inlink.rank.store import _domain_key

    if "://" in target:
        return "page", urls.normalize_url(target)
    return "domain", _domain_key(target)


def spam_score(store: Store, target: str, run: int | None = None) -> SpamScore:
    """Spam score of a page URL or a domain: as stored with the run (default: current),
    or computed from the index now when the run does not have it."""
    from inlink.rank.store import load_run

    kind, key = target_kind(target)
    r = load_run(store, run)
    if r is not None:
        cols = ", ".join((*SIGNAL_NAMES, "referrers"))
        cur = store.cursor()
        found = cur.execute(f"SELECT {cols} FROM rank_spam WHERE run_id = ? AND kind = ? "
                            "AND target = ?", [r.run_id, kind, key]).fetchall()
        if found:
            return explain_row(key, kind, dict(zip((*SIGNAL_NAMES, "referrers"), found[0],
                                                   strict=True)))
    return compute_one(store.cursor(), key, kind)
