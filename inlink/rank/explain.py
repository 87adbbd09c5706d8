"""Why a page or domain has its rank: who passes it how much, and what changed since the
previous run. Contributors of a run are rebuilt from link events up to the run's snapshot.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from inlink.index.store import Store
from inlink.rank.graph import followed_link
from inlink.rank.spam import target_kind
from inlink.rank.store import RankRun, load_run, previous_run


@dataclass(frozen=True, slots=True)
class Contributor:
    """A referring page (or domain) and what it passes in the run."""

    key: str
    passed: float           # score it passes: damping * its score * weight / its out-weight
    share: float            # passed / the target's score
    rank: int               # its own InLink Rank (Domain InLink Rank for domains)
    links: int              # linking pages behind it (1 for a page)


@dataclass(frozen=True, slots=True)
class Explanation:
    target: str
    kind: str               # "page" | "domain"
    run_id: int
    day: dt.date
    score: float
    rank: int
    rank_1000: int
    base_share: float       # share every node gets regardless of links (teleport, dangling)
    contributors: list[Contributor]         # biggest first, at most `limit`
    contributor_count: int
    previous_run_id: int | None = None
    previous_rank: int | None = None
    rank_delta: int | None = None
    gained: list[Contributor] = field(default_factory=list)
    lost: list[Contributor] = field(default_factory=list)

    @property
    def shares_total(self) -> float:
        return self.base_share + sum(c.share for c in self.contributors)


_FOLLOWED = followed_link("l.")

# A link counts in a run when its last event up to the run's snapshot batch is 'new'.
_PAGE_SQL = f"""
WITH ev AS (
    SELECT link_id, arg_max(event, seen_at) AS last FROM link_events
    WHERE target_key = ? AND batch_id <= ? GROUP BY link_id
)
SELECT l.source_key, p.score, p.out_links, p.inlink_rank, count(*) AS links
FROM ev JOIN links l USING (link_id)
JOIN rank_pages p ON p.run_id = ? AND p.url_key = l.source_key
WHERE ev.last = 'new' AND {_FOLLOWED} AND l.source_key <> l.target_key AND p.out_links > 0
GROUP BY ALL
"""
_DOMAIN_SQL = f"""
WITH ev AS (
    SELECT link_id, arg_max(event, seen_at) AS last FROM link_events
    WHERE target_domain = ? AND batch_id <= ? AND NOT internal GROUP BY link_id
)
SELECT l.source_domain, d.score, d.out_weight, d.inlink_rank,
       count(DISTINCT l.source_key) AS links
FROM ev JOIN links l USING (link_id)
JOIN rank_domains d ON d.run_id = ? AND d.domain = l.source_domain
WHERE ev.last = 'new' AND {_FOLLOWED} AND l.source_domain <> l.target_domain
  AND d.out_weight > 0
GROUP BY ALL
"""


def _own(store: Store, kind: str, key: str, r: RankRun) -> tuple[float, int, int] | None:
    table, col = ("rank_pages", "url_key") if kind == "page" else ("rank_domains", "domain")
    rows = store.query(f"SELECT score, inlink_rank, rank_1000 FROM {table} "
                       f"WHERE run_id = ? AND {col} = ?", [r.run_id, key])
    if not rows:
        return None
    score, rank, r1000 = rows[0]
    return float(score), int(rank), int(r1000)


def contributors(store: Store, kind: str, key: str, r: RankRun,
                 score: float) -> list[Contributor]:
    """Everything that passed rank to the target in run r, biggest first."""
    sql = _PAGE_SQL if kind == "page" else _DOMAIN_SQL
    rows = store.query(sql, [key, r.max_batch_id, r.run_id])
    out = []
    for src, s_score, s_out, s_rank, links in rows:
        # Pages: one vote per linking page; domains: weighted by the linking pages.
        weight = 1.0 if kind == "page" else float(links)
        passed = r.damping * float(s_score) * weight / float(s_out)
        out.append(Contributor(str(src), passed, passed / score if score > 0 else 0.0,
                               int(s_rank), int(links)))
    out.sort(key=lambda c: (-c.passed, c.key))
    return out


def explain(store: Store, target: str, run: int | None = None,
            limit: int = 10) -> Explanation | None:
    """Explain a page URL's InLink Rank or a domain's Domain InLink Rank in a run."""
    kind, key = target_kind(target)
    r = load_run(store, run)
    if r is None:
        return None
    own = _own(store, kind, key, r)
    if own is None:
        return None
    score, rank, r1000 = own
    found = contributors(store, kind, key, r, score)
    floor = r.page_floor if kind == "page" else r.domain_floor
    # Teleport and dangling mass reach every node alike: that is the floor score.
    base = min(1.0, floor / score) if score > 0 else 0.0
    expl = Explanation(key, kind, r.run_id, r.day, score, rank, r1000, base, found[:limit],
                       len(found))
    prev = previous_run(store, r.run_id)
    if prev is None:
        return expl
    prev_own = _own(store, kind, key, prev)
    prev_found = (contributors(store, kind, key, prev, prev_own[0]) if prev_own else [])
    now_keys = {c.key for c in found}
    then_keys = {c.key for c in prev_found}
    prev_rank = prev_own[1] if prev_own else 0
    return Explanation(
        key, kind, r.run_id, r.day, score, rank, r1000, base, found[:limit], len(found),
        previous_run_id=prev.run_id, previous_rank=prev_rank, rank_delta=rank - prev_rank,
        gained=[c for c in found if c.key not in then_keys][:limit],
        lost=[c for c in prev_found if c.key not in now_keys][:limit])
