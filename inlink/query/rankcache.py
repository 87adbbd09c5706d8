"""The current rank run in memory, for keyed rank reads of small answers.

A page of backlinks needs the ranks of its source pages and domains; reading them from
`rank_pages` (a million rows per run) costs a few milliseconds per request even through an
ART index. Per store and run, this keeps:

- domains: a dict of registrable domain -> (Domain InLink Rank, 0-1000 rank);
- homes: a dict of name -> the best InLink Rank of its home pages (http/https, with and
  without www.: aggregates.home_rank_sql), for every name with a ranked home page;
- pages: the first 64 bits of each url_key's MD5 (DuckDB's `md5_number_upper`), sorted,
  with the page's InLink Rank, 0-1000 rank and the rank one of its links passes: 14 bytes
  a page (17 MB for 1.25M pages) instead of a dict of strings. A lookup hashes the keys
  with hashlib (the same 64 bits, no DuckDB statement: that cost a millisecond a request)
  and binary-searches. Two different keys sharing a 64-bit hash is a ~1e-13 event per
  lookup at this size; it would show one page the other's rank.

Loaded on first use after a rank run (about 0.3 s for 1.25M pages) under a lock; a new run
(`context().run_id`) or a reloaded store starts over.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from inlink.index.store import Store
from inlink.query.sql import HOME_PAGE_RE


@dataclass(frozen=True, slots=True)
class _Run:
    run_id: int
    domains: dict[str, tuple[int, int]]
    homes: dict[str, int]
    hashes: npt.NDArray[np.uint64]
    ranks: npt.NDArray[np.int16]          # (n, 3): inlink_rank, rank_1000, link_rank_1000


_RUNS: weakref.WeakKeyDictionary[Store, _Run] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _load(store: Store, run_id: int) -> _Run:
    cur = store.cursor()
    domains = {str(d): (int(r), int(r1)) for d, r, r1 in cur.execute(
        "SELECT domain, inlink_rank, rank_1000 FROM rank_domains WHERE run_id = ?",
        [run_id]).fetchall()}
    # A home page http(s)://H/ counts for the name H and, when H is www.D, for D too: the
    # keys home_rank_sql tries for a domain D are http(s)://D/ and http(s)://www.D/.
    homes = {str(d): int(r) for d, r in cur.execute(
        "WITH h AS (SELECT split_part(url_key, '/', 3) AS host, inlink_rank FROM rank_pages "
        f"WHERE run_id = ? AND regexp_matches(url_key, '{HOME_PAGE_RE}')) "
        "SELECT name, max(inlink_rank) FROM (SELECT host AS name, inlink_rank FROM h "
        "UNION ALL SELECT host[5:], inlink_rank FROM h WHERE starts_with(host, 'www.')) "
        "GROUP BY name", [run_id]).fetchall()}
    arr = cur.execute("SELECT md5_number_upper(url_key) AS h, inlink_rank, rank_1000, "
                      "link_rank_1000 FROM rank_pages WHERE run_id = ? ORDER BY h",
                      [run_id]).fetchnumpy()
    ranks = np.stack([np.asarray(arr["inlink_rank"], dtype=np.int16),
                      np.asarray(arr["rank_1000"], dtype=np.int16),
                      np.asarray(arr["link_rank_1000"], dtype=np.int16)], axis=1)
    return _Run(run_id, domains, homes, np.asarray(arr["h"], dtype=np.uint64), ranks)


def _run(store: Store, run_id: int) -> _Run:
    r = _RUNS.get(store)
    if r is not None and r.run_id == run_id:
        return r
    with _LOCK:
        r = _RUNS.get(store)
        if r is None or r.run_id != run_id:
            r = _load(store, run_id)
            _RUNS[store] = r
        return r


def domain_ranks(store: Store, run_id: int, domains: list[str]) -> dict[str, tuple[int, int]]:
    """(Domain InLink Rank, 0-1000) of the domains the run knows."""
    known = _run(store, run_id).domains
    return {d: known[d] for d in domains if d in known}


def domain_rank_columns(store: Store, run_id: int, domains: Sequence[str]
                        ) -> npt.NDArray[np.int64]:
    """domain_ranks for a column of domains (repeats allowed): an (n, 2) array, zeros for a
    domain the run does not know."""
    get = _run(store, run_id).domains.get
    none = (0, 0)
    return np.array([get(d, none) for d in domains], dtype=np.int64).reshape(-1, 2)


def home_ranks(store: Store, run_id: int, domains: list[str]) -> dict[str, int]:
    """The best InLink Rank of each domain's home pages (http/https, with and without
    www.), for the domains that have a ranked one."""
    known = _run(store, run_id).homes
    return {d: known[d] for d in domains if d in known}


def page_ranks(store: Store, run_id: int, keys: list[str]
               ) -> dict[str, tuple[int, int, int]]:
    """(InLink Rank, 0-1000, link rank 0-1000) of the page keys the run knows."""
    ranks, found = _lookup(_run(store, run_id), keys)
    return {keys[i]: (int(a), int(b), int(c))
            for i, (a, b, c) in zip(np.flatnonzero(found), ranks[found], strict=True)}


def page_rank_columns(store: Store, run_id: int, keys: Sequence[str]
                      ) -> npt.NDArray[np.int16]:
    """page_ranks for a column of keys (repeats allowed): an (n, 3) array, row i the ranks of
    keys[i] and zeros for a page the run does not know."""
    ranks, found = _lookup(_run(store, run_id), keys)
    ranks[~found] = 0
    return ranks


def _lookup(r: _Run, keys: Sequence[str]
            ) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.bool_]]:
    """Each key's row of `r.ranks` (any row where not found) and whether it was found; a
    key that repeats is hashed once."""
    if not len(keys) or not len(r.hashes):
        return np.zeros((len(keys), 3), dtype=np.int16), np.zeros(len(keys), dtype=bool)
    memo: dict[str, int] = {}
    for k in keys:
        if k not in memo:
            memo[k] = key_hash(k)
    h = np.fromiter(map(memo.__getitem__, keys), dtype=np.uint64, count=len(keys))
    pos = np.minimum(np.searchsorted(r.hashes, h), len(r.hashes) - 1)
    return r.ranks[pos], r.hashes[pos] == h


def key_hash(key: str) -> int:
    """DuckDB's `md5_number_upper(key)`: the first 8 bytes of the MD5, little-endian."""
    return int.from_bytes(hashlib.md5(key.encode(), usedforsecurity=False).digest()[:8],
                          "little")
