"""Fetch records as columns: each fetch's outcome, and its live links as Arrow rows.

Built once where the extraction happened (an ingest worker process, or the crawl's writer
thread), so the index writer only diffs link ids and hands whole columns to DuckDB.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from inlink import urls
from inlink.extract import extract
from inlink.index.state import classify
from inlink.sources.record import FetchRecord

if TYPE_CHECKING:   # not at run time: ingest workers need not import the crawler (aiohttp)
    from inlink.sources.crawl import Discovered, Extracted, ExtractJob

#: The columns of a link row that depend only on the fetch that saw it (its identity and
#: attributes); the writer adds the history columns (live, first_seen, ... last_fetch_id).
LINK_COLUMNS = ("link_id", "target_domain", "target_host", "target_key", "target_url",
                "source_key", "source_url", "source_host", "source_domain", "source_ip",
                "source_subnet", "source_country", "internal", "kind", "anchor", "alt",
                "image_url", "nofollow", "ugc", "sponsored", "text_pre", "text_post",
                "location", "links_count", "hreflang", "attr_hash", "source_title")
LINK_SCHEMA = pa.schema([
    ("link_id", pa.int64()), ("target_domain", pa.string()), ("target_host", pa.string()),
    ("target_key", pa.string()), ("target_url", pa.string()), ("source_key", pa.string()),
    ("source_url", pa.string()), ("source_host", pa.string()), ("source_domain", pa.string()),
    ("source_ip", pa.string()), ("source_subnet", pa.string()),
    ("source_country", pa.string()), ("internal", pa.bool_()), ("kind", pa.string()),
    ("anchor", pa.string()), ("alt", pa.string()), ("image_url", pa.string()),
    ("nofollow", pa.bool_()), ("ugc", pa.bool_()), ("sponsored", pa.bool_()),
    ("text_pre", pa.string()), ("text_post", pa.string()), ("location", pa.string()),
    ("links_count", pa.int32()), ("hreflang", pa.string()), ("attr_hash", pa.int64()),
    ("source_title", pa.string()),
])
assert tuple(LINK_SCHEMA.names) == LINK_COLUMNS


@dataclass(slots=True)
class PackedFetch:
    """One fetch, classified; `links` holds the rows of the links it keeps live.

    `link_ids[i]` / `link_hashes[i]` are the id and attribute hash of `links` row i
    (index.state.link_id / link_attr_hash).
    """

    url: str
    url_key: str
    host: str                        # of url_key, and its registrable domain: computed
    domain: str                      # where the record was packed (the PSL is loaded there)
    fetched_at: dt.datetime          # naive UTC
    status: int | None
    error: str | None
    ip: str | None
    country: str | None
    content_type: str | None         # the response's, else the extractor's
    redirect_to: str | None
    source: str
    evidence_path: str | None
    evidence_offset: int | None
    evidence_digest: str | None
    state: str                       # index.state.PageState value
    lost_reason: str                 # why links this fetch does not keep live are lost
    facts: tuple[Any, ...] | None    # title, language, encoding, size, internal_links,
    #                                  external_links, noindex, nofollow, canonical
    link_ids: list[int]
    link_hashes: list[int]
    links: pa.RecordBatch


#: A packed group of fetches as plain data (what an ingest worker sends back): the fetch
#: fields in PackedFetch order without `links`, and all their link rows in one batch.
Packed = tuple[list[tuple[Any, ...]], pa.RecordBatch]


def naive_utc(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at


_D = ("0", "1")
# Link fields copied as they are (kind is a StrEnum: Arrow stores its value).
_LINK_ATTR_NAMES = ("target_key", "target_url", "kind", "anchor", "alt", "image_url",
                    "nofollow", "ugc", "sponsored", "text_pre", "text_post", "location",
                    "links_count", "hreflang")
_LINK_ATTRS = attrgetter(*_LINK_ATTR_NAMES)


@lru_cache(maxsize=1 << 16)
def registrable_domain(host: str) -> str:
    return urls.registrable_domain(host)


@lru_cache(maxsize=1 << 16)
def host_and_domain(key: str) -> tuple[str, str]:
    """(host, registrable domain) of an index key; page keys repeat a lot within a crawl."""
    host = urls.key_host(key)
    return host, registrable_domain(host)


@lru_cache(maxsize=1 << 14)
def subnet(ip: str | None) -> str | None:
    return urls.subnet24(ip) if ip else None


def pack_fetches(records: Sequence[FetchRecord]) -> Packed:
    """Classify records and turn their live links into one Arrow batch of LINK_COLUMNS.

    The ids and hashes are exactly index.state.link_id / link_attr_hash (tests check it).
    """
    metas: list[tuple[Any, ...]] = []
    col: dict[str, Any] = {name: [] for name in LINK_COLUMNS}
    attrs: list[tuple[Any, ...]] = []
    key_host = urls.key_host
    blake2b = hashlib.blake2b
    from_bytes = int.from_bytes
    for record in records:
        outcome = classify(record)
        live = outcome.live_links
        key = record.url_key
        n = len(live)
        # state.link_id and state.link_attr_hash, inlined: two hashes per link are most of
        # the packing time ("0"/"1" indexed by a bool is `{flag:d}`).
        ids = [from_bytes(blake2b(
            f"{key}\x1f{link.kind}\x1f{link.target_key}\x1f{link.anchor}"
            f"\x1f{link.image_url or ''}".encode("utf-8", "surrogatepass"),
            digest_size=8).digest(), "little", signed=True) for link in live]
        hashes = [from_bytes(blake2b(
            f"{link.target_url}\x1f{_D[link.nofollow]}{_D[link.ugc]}{_D[link.sponsored]}"
            f"\x1f{link.alt}\x1f{link.text_pre}\x1f{link.text_post}\x1f{link.location}"
            f"\x1f{link.links_count}\x1f{link.hreflang}".encode("utf-8", "surrogatepass"),
            digest_size=8).digest(), "little", signed=True) for link in live]
        ex = record.extraction
        facts = ex.facts if ex is not None else None
        ev = record.evidence
        source_host, source_domain = host_and_domain(key)
        metas.append((
            record.url, key, source_host, source_domain, naive_utc(record.fetched_at),
            record.status, record.error,
            record.ip, record.country,
            record.content_type or (facts.content_type if facts else None),
            record.redirect_to, record.source,
            ev.path if ev else None, ev.offset if ev else None, ev.digest if ev else None,
            outcome.state.value, outcome.lost_reason,
            (facts.title, facts.language, facts.encoding, facts.size, facts.internal_links,
             facts.external_links, facts.noindex, facts.nofollow, facts.canonical)
            if facts is not None else None,
            ids, hashes))
        if not n:
            continue
        attrs += map(_LINK_ATTRS, live)         # one tuple per link, transposed per group
        target_keys = [link.target_key for link in live]
        # The authority of a key is its third '/'-separated field ("scheme:", "", host...):
        # urls.key_host only for the rare one with a port or an IPv6 literal.
        authorities = [k.split("/", 3)[2] for k in target_keys]
        target_hosts = [a if ":" not in a else key_host(k)
                        for a, k in zip(authorities, target_keys, strict=True)]
        target_domains = [registrable_domain(h) for h in target_hosts]
        col["link_id"] += ids
        col["attr_hash"] += hashes
        col["target_domain"] += target_domains
        col["target_host"] += target_hosts
        col["source_key"] += [key] * n
        col["source_url"] += [record.url] * n
        col["source_host"] += [source_host] * n
        col["source_domain"] += [source_domain] * n
        col["source_ip"] += [record.ip] * n
        col["source_subnet"] += [subnet(record.ip)] * n
        col["source_country"] += [record.country] * n
        col["source_title"] += [facts.title if facts is not None else None] * n
        col["internal"] += [d == source_domain for d in target_domains]
    transposed = list(zip(*attrs, strict=True)) if attrs else [()] * len(_LINK_ATTR_NAMES)
    col.update(zip(_LINK_ATTR_NAMES, transposed, strict=True))
    try:
        arrays = [pa.array(col[f.name], f.type) for f in LINK_SCHEMA]
    except UnicodeEncodeError:
        # A lone surrogate (hashed with surrogatepass above) cannot be UTF-8 in Arrow or
        # DuckDB: stored with U+FFFD in its place, the id and hash unchanged.
        arrays = [pa.array([_clean(v) for v in col[f.name]] if f.type == pa.string()
                           else col[f.name], f.type) for f in LINK_SCHEMA]
    return metas, pa.record_batch(arrays, schema=LINK_SCHEMA)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


_make: Any = PackedFetch   # built from a meta tuple of the fields in order


def unpack_fetches(packed: Packed) -> list[PackedFetch]:
    """PackedFetch values over the rows of one packed group (zero-copy slices)."""
    metas, batch = packed
    out: list[PackedFetch] = []
    start = 0
    for meta in metas:
        n = len(meta[-2])
        out.append(_make(*meta, batch.slice(start, n)))
        start += n
    return out


def to_packed(records: Sequence[FetchRecord]) -> list[PackedFetch]:
    """Records as PackedFetch, in order: the packed form a record carries (the crawl's
    extraction made it), else packed here."""
    todo = [r for r in records if not isinstance(r.packed, PackedFetch)]
    made = iter(unpack_fetches(pack_fetches(todo)) if todo else ())
    return [r.packed if isinstance(r.packed, PackedFetch) else next(made) for r in records]


def extract_and_pack(jobs: list[ExtractJob]) -> tuple[list[tuple[int, Discovered] | str],
                                                      Packed]:
    """The crawl's extraction work (sources.crawl.ExtractPool `work`): extract each 2xx page
    and pack its fetch record, so the crawl's process only unpickles columns.

    Returns, per job, (index in the packed group, links to discover) or an error string.
    """
    out: list[tuple[int, Discovered] | str] = []
    records: list[FetchRecord] = []
    for body, url, headers, status, limits, key, at, ip, country, ctype in jobs:
        try:
            ex = extract(body, url, headers, status=status, limits=limits)
        except Exception as exc:  # noqa: BLE001 - one bad page must not stop a crawl
            out.append(f"extract: {type(exc).__name__}: {exc}")
            continue
        out.append((len(records), [(k.target_url, k.target_key, k.nofollow) for k in ex.links]))
        records.append(FetchRecord(url=url, url_key=key, fetched_at=at, status=status, ip=ip,
                                   country=country, content_type=ctype, extraction=ex))
    return out, pack_fetches(records)


def unpack_extracted(raw: tuple[list[tuple[int, Discovered] | str], Packed]
                     ) -> list[Extracted | str]:
    """extract_and_pack's result, back in the crawl's process: (None, links, PackedFetch)."""
    outcomes, packed = raw
    fetches = unpack_fetches(packed)
    return [o if isinstance(o, str) else (None, o[1], fetches[o[0]]) for o in outcomes]
