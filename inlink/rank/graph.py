"""Read the page graph and the registrable-domain graph out of the index, as numpy arrays.

Which links pass rank is decided here, once, in `passing_link` (see docs/rank.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt

from inlink.index.store import run

#: Link kinds that pass rank. `alternate` (hreflang) names a translation, not a vote.
PASSING_KINDS = ("anchor", "image", "meta", "redirect", "canonical")

# A link passes rank when live, followed and of a voting kind. ugc and sponsored are
# nofollow hints (Google, 2019): treated exactly like nofollow.
def followed_link(alias: str = "") -> str:
    """SQL predicate: a link whose attributes pass rank (`alias` like "l." or "")."""
    a = alias
    return (f"NOT {a}nofollow AND NOT {a}ugc AND NOT {a}sponsored "
            f"AND {a}kind IN ('anchor', 'image', 'meta', 'redirect', 'canonical')")


def passing_link(alias: str = "") -> str:
    """SQL predicate: a live link that passes rank now."""
    return f"{alias}live AND {followed_link(alias)}"


PASSING_LINK = passing_link()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Both graphs of one consistent read of the index."""

    max_batch_id: int
    page_keys: npt.NDArray[np.object_]
    page_domain: npt.NDArray[np.int64]      # index into domain_keys
    page_src: npt.NDArray[np.int64]
    page_dst: npt.NDArray[np.int64]
    domain_keys: npt.NDArray[np.object_]
    domain_src: npt.NDArray[np.int64]
    domain_dst: npt.NDArray[np.int64]
    domain_weight: npt.NDArray[np.float64]  # distinct linking pages per domain pair


def load_snapshot(cur: duckdb.DuckDBPyConnection) -> Snapshot:
    """Read nodes and passing edges in one read transaction (a batch committing meanwhile
    is either wholly in or wholly out)."""
    run(cur, "BEGIN TRANSACTION")
    try:
        max_batch = int(run(cur, "SELECT coalesce(max(batch_id), 0) FROM batches")[0][0])
        # Every page we fetched or saw linked (by a live link of any kind) is a node, so a
        # page that only receives nofollow links still has a rank: the floor.
        run(cur, "DROP TABLE IF EXISTS rank_node")
        run(cur, """
            CREATE TEMP TABLE rank_node AS
            WITH keyed AS (
                SELECT url_key, domain FROM pages
                UNION ALL SELECT source_key, source_domain FROM links WHERE live
                UNION ALL SELECT target_key, target_domain FROM links WHERE live
            ), one AS (
                SELECT url_key, min(domain) AS domain FROM keyed GROUP BY url_key
            ), doms AS (
                SELECT domain, (row_number() OVER (ORDER BY domain) - 1)::BIGINT AS dom
                FROM (SELECT DISTINCT domain FROM one)
            )
            SELECT one.url_key, one.domain, doms.dom,
                   (row_number() OVER (ORDER BY one.url_key) - 1)::BIGINT AS node
            FROM one JOIN doms USING (domain)
        """)
        nodes = cur.execute("SELECT url_key, dom FROM rank_node ORDER BY node").fetchnumpy()
        domains = cur.execute(
            "SELECT domain FROM rank_node GROUP BY domain, dom ORDER BY dom").fetchnumpy()
        edges = cur.execute(f"""
            SELECT s.node AS src, t.node AS dst
            FROM links l
            JOIN rank_node s ON s.url_key = l.source_key
            JOIN rank_node t ON t.url_key = l.target_key
            WHERE {passing_link("l.")} AND l.source_key <> l.target_key
        """).fetchnumpy()
        # Domain edges weigh the distinct pages of the source domain that link (see docs).
        dedges = cur.execute(f"""
            WITH d AS (SELECT DISTINCT domain, dom FROM rank_node)
            SELECT s.dom AS src, t.dom AS dst, count(DISTINCT l.source_key) AS w
            FROM links l
            JOIN d s ON s.domain = l.source_domain
            JOIN d t ON t.domain = l.target_domain
            WHERE {passing_link("l.")} AND l.source_domain <> l.target_domain
            GROUP BY 1, 2
        """).fetchnumpy()
        run(cur, "DROP TABLE rank_node")
    except BaseException:
        run(cur, "ROLLBACK")
        raise
    run(cur, "COMMIT")
    return Snapshot(
        max_batch_id=max_batch,
        page_keys=np.asarray(nodes["url_key"], dtype=object),
        page_domain=np.asarray(nodes["dom"], dtype=np.int64),
        page_src=np.asarray(edges["src"], dtype=np.int64),
        page_dst=np.asarray(edges["dst"], dtype=np.int64),
        domain_keys=np.asarray(domains["domain"], dtype=object),
        domain_src=np.asarray(dedges["src"], dtype=np.int64),
        domain_dst=np.asarray(dedges["dst"], dtype=np.int64),
        domain_weight=np.asarray(dedges["w"], dtype=np.float64),
    )
