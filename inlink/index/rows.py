"""Fetch records as columns: each fetch's outcome, and its live links as Arrow rows.

Built once where the extraction happened (an ingest worker process, or the crawl's writer
thread), so the index writer only diffs link ids and hands whole columns to DuckDB.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from xxhash import xxh3_64_intdigest

from inlink import urls
from inlink.extract import Link, LinkKind, extract
from inlink.index.state import classify, hash64, signed64
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
#: The columns pack_fetches fills (a link's own id, attributes and attribute hash); the
#: others repeat the source page's values or derive from the target key (complete_links).
OWN_COLUMNS = ("link_id", "target_key", "target_url", "kind", "anchor", "alt", "image_url",
               "nofollow", "ugc", "sponsored", "text_pre", "text_post", "location",
               "links_count", "hreflang", "attr_hash")
OWN_SCHEMA = pa.schema([LINK_SCHEMA.field(name) for name in OWN_COLUMNS])

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class PackedFetch:
    """One fetch, classified; `links` holds the OWN_COLUMNS of the links it keeps live
    (complete_links adds the rest of their rows).

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
#: fields in PackedFetch order without `links`, and all their links' OWN_COLUMNS in one
#: batch.
Packed = tuple[list[tuple[Any, ...]], pa.RecordBatch]


def naive_utc(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at


_D = ("0", "1")
# Link fields copied as they are (kind is a StrEnum: Arrow stores its value), in the order
# inlink/_linkpack.c fills them.
_LINK_ATTR_NAMES = ("target_key", "target_url", "kind", "anchor", "alt", "image_url",
                    "nofollow", "ugc", "sponsored", "text_pre", "text_post", "location",
                    "links_count", "hreflang")
_LINK_ATTRS = attrgetter(*_LINK_ATTR_NAMES)
_ATTR_TYPES = tuple(LINK_SCHEMA.field(name).type for name in _LINK_ATTR_NAMES)
# The columns that repeat the source page's values on each of its links.
_SOURCE_NAMES = ("source_key", "source_url", "source_host", "source_domain", "source_ip",
                 "source_subnet", "source_country", "source_title")


@lru_cache(maxsize=1 << 16)
def registrable_domain(host: str) -> str:
    return urls.registrable_domain(host)


@lru_cache(maxsize=1 << 16)
def host_and_domain(key: str) -> tuple[str, str]:
    """(host, registrable domain) of an index key; page keys repeat a lot within a crawl."""
    host = urls.key_host(key)
    return host, registrable_domain(host)


@lru_cache(maxsize=1 << 16)
def _authority_host_domain(authority: str) -> tuple[str, str]:
    host = urls.authority_host(authority)
    return host, registrable_domain(host)


@lru_cache(maxsize=1 << 14)
def subnet(ip: str | None) -> str | None:
    return urls.subnet24(ip) if ip else None


def pack_fetches(records: Sequence[FetchRecord]) -> Packed:
    """Classify records and turn their live links into one Arrow batch of OWN_COLUMNS.

    The ids and hashes are exactly index.state.link_id / link_attr_hash (tests check it).
    The links' own fields go through inlink/_linkpack.c when it is built (`_native_pack`),
    else through `_pack_links_py`. The columns that repeat the source page or derive from
    the target are left to complete_links, which the index writer runs on a whole batch: in
    an ingest that is the writer's thread, while the driver extracts the next pages.
    """
    metas: list[list[Any]] = []
    groups: list[tuple[str, list[Link]]] = []
    for record in records:
        outcome = classify(record)
        key = record.url_key
        ex = record.extraction
        facts = ex.facts if ex is not None else None
        ev = record.evidence
        source_host, source_domain = host_and_domain(key)
        metas.append([
            record.url, key, source_host, source_domain, naive_utc(record.fetched_at),
            record.status, record.error,
            record.ip, record.country,
            record.content_type or (facts.content_type if facts else None),
            record.redirect_to, record.source,
            ev.path if ev else None, ev.offset if ev else None, ev.digest if ev else None,
            outcome.state.value, outcome.lost_reason,
            (facts.title, facts.language, facts.encoding, facts.size, facts.internal_links,
             facts.external_links, facts.noindex, facts.nofollow, facts.canonical)
            if facts is not None else None])
        groups.append((key, outcome.live_links))
    ids, hashes, col = _pack_links(groups)
    start = 0
    for meta, (_, live) in zip(metas, groups, strict=True):
        end = start + len(live)
        meta += (ids[start:end], hashes[start:end])
        start = end
    batch = pa.record_batch([col[name] for name in OWN_COLUMNS], schema=OWN_SCHEMA)
    return [tuple(m) for m in metas], batch


def complete_links(fetches: Sequence[PackedFetch]) -> pa.Table:
    """The LINK_COLUMNS rows of the fetches' links, in order, as one contiguous table.

    To the packed OWN_COLUMNS it adds the source page's values, repeated on each of its
    links (a take over one row per fetch), and the target's host and registrable domain,
    worked out once per distinct authority, with `internal` (same registrable domain)."""
    # One chunk: DuckDB scans an Arrow table of thousands of small chunks (one per page)
    # several times slower than the same rows in one chunk.
    own = pa.Table.from_batches([f.links for f in fetches], schema=OWN_SCHEMA).combine_chunks()
    col: dict[str, Any] = {name: own.column(name) for name in OWN_COLUMNS}
    which = pa.array(np.repeat(np.arange(len(fetches), dtype=np.int32),
                               [len(f.link_ids) for f in fetches]))
    # A URL equal to its key is stored as NULL (schema 4; readers take coalesce(url, key)).
    sources = [(f.url_key, f.url if f.url != f.url_key else None, f.host, f.domain, f.ip,
                subnet(f.ip), f.country, f.facts[0] if f.facts is not None else None)
               for f in fetches]
    for name, values in zip(_SOURCE_NAMES, zip(*sources, strict=True) if sources
                            else [()] * len(_SOURCE_NAMES), strict=True):
        col[name] = _strings(list(values)).take(which)
    # The authority of a key is its third '/'-separated field ("scheme:", "", host...);
    # host and domain are worked out once per distinct authority.
    authority = pc.dictionary_encode(pc.list_element(
        pc.split_pattern(col["target_key"].combine_chunks(), "/", max_splits=3), 2))
    distinct = [_authority_host_domain(a) for a in authority.dictionary.to_pylist()]
    col["target_host"] = _strings([h for h, _ in distinct]).take(authority.indices)
    col["target_domain"] = _strings([d for _, d in distinct]).take(authority.indices)
    col["internal"] = pc.equal(col["target_domain"], col["source_domain"])
    url = col["target_url"]
    col["target_url"] = pc.if_else(pc.equal(url, col["target_key"]),
                                   pa.scalar(None, pa.string()), url)
    return pa.table([col[f.name] for f in LINK_SCHEMA], schema=LINK_SCHEMA)


def _pack_links(groups: list[tuple[str, list[Link]]]
                ) -> tuple[list[int], list[int], dict[str, pa.Array]]:
    """(link ids, attribute hashes, the _LINK_ATTR_NAMES columns with `link_id` and
    `attr_hash`) of the groups' links."""
    native = _native_pack()
    got = native.pack(groups, True) if native is not None else None
    if got is None:
        ids, hashes, attrs = _pack_links_py(groups)
        id_col, hash_col = pa.array(ids, pa.int64()), pa.array(hashes, pa.int64())
    else:
        n, id_bytes, hash_bytes, columns = got
        attrs = [_from_buffers(t, n, c) for t, c in zip(_ATTR_TYPES, columns, strict=True)]
        if id_bytes is None:        # built, but libxxhash is missing: hash in Python
            ids, hashes = _hashes_py(groups)
            id_col, hash_col = pa.array(ids, pa.int64()), pa.array(hashes, pa.int64())
        else:                       # the columns over C's bytes; the lists for the writer
            id_col, hash_col = (_from_buffers(pa.int64(), n, id_bytes),
                                _from_buffers(pa.int64(), n, hash_bytes))
            ids, hashes = array("q", id_bytes).tolist(), array("q", hash_bytes).tolist()
    col = dict(zip(_LINK_ATTR_NAMES, attrs, strict=True))
    col["link_id"], col["attr_hash"] = id_col, hash_col
    return ids, hashes, col


def _hashes_py(groups: list[tuple[str, list[Link]]]) -> tuple[list[int], list[int]]:
    # state.link_id and state.link_attr_hash, inlined: two hashes per link are most of the
    # Python packing time ("0"/"1" indexed by a bool is `{flag:d}`).
    ids = [signed64(xxh3_64_intdigest(
        f"{key}\x1f{link.kind}\x1f{link.target_key}\x1f{link.anchor}"
        f"\x1f{link.image_url or ''}".encode("utf-8", "surrogatepass")))
        for key, live in groups for link in live]
    hashes = [signed64(xxh3_64_intdigest(
        f"{link.target_url}\x1f{_D[link.nofollow]}{_D[link.ugc]}{_D[link.sponsored]}"
        f"\x1f{link.alt}\x1f{link.text_pre}\x1f{link.text_post}\x1f{link.location}"
        f"\x1f{link.links_count}\x1f{link.hreflang}".encode("utf-8", "surrogatepass")))
        for _, live in groups for link in live]
    return ids, hashes


def _pack_links_py(groups: list[tuple[str, list[Link]]]
                   ) -> tuple[list[int], list[int], list[pa.Array]]:
    """_pack_links in Python: the reference, and the path for what the C code declines."""
    ids, hashes = _hashes_py(groups)
    attrs = [_LINK_ATTRS(link) for _, live in groups for link in live]
    transposed = list(zip(*attrs, strict=True)) if attrs else [()] * len(_LINK_ATTR_NAMES)
    return ids, hashes, [_strings(list(v)) if t == pa.string() else pa.array(v, t)
                         for v, t in zip(transposed, _ATTR_TYPES, strict=True)]


def _from_buffers(kind: pa.DataType, n: int, parts: Any) -> pa.Array:
    """An Arrow array over the buffers _linkpack.pack filled (no copy)."""
    if kind == pa.string():
        validity, offsets, data, nulls = parts
        return pa.Array.from_buffers(kind, n, [
            None if validity is None else pa.py_buffer(validity), pa.py_buffer(offsets),
            pa.py_buffer(data)], null_count=nulls)
    return pa.Array.from_buffers(kind, n, [None, pa.py_buffer(parts)], null_count=0)


def _strings(values: list[str | None]) -> pa.Array:
    try:
        return pa.array(values, pa.string())
    except UnicodeEncodeError:
        # A lone surrogate (hashed with surrogatepass above) cannot be UTF-8 in Arrow or
        # DuckDB: stored with U+FFFD in its place, the id and hash unchanged.
        return pa.array([_clean(v) for v in values], pa.string())


#: libxxhash's soname (>= 0.8, the xxHash authors' library; Debian libxxhash0), whose
#: `XXH3_64bits` _linkpack.c calls.
LIBXXHASH = "libxxhash.so.0"
_NATIVE: list[tuple[Any, bool]] = []     # [(module or None, it hashes)] once loaded


def _native_pack() -> Any:
    """inlink._linkpack, configured and checked against the Python packing; None when it is
    not built or disagrees (logged once)."""
    if not _NATIVE:
        _NATIVE.append(_load_native_pack())
    return _NATIVE[0][0]


def native_hasher() -> Any:
    """inlink._linkpack when it is in use and has libxxhash (its `hash_strings` works), else
    None."""
    mod = _native_pack()
    return mod if mod is not None and _NATIVE[0][1] else None


def use_native_pack(flag: bool | None) -> None:
    """Tests and benches: force the C packing on (True: load it), off (False), or back to
    the default (None: loaded on first use)."""
    _NATIVE.clear()
    if flag is False:
        _NATIVE.append((None, False))


def _load_native_pack() -> tuple[Any, bool]:
    try:
        from inlink import _linkpack  # type: ignore[attr-defined]
    except ImportError:
        _log.info("native link packing not built; packing in Python")
        return None, False
    names = tuple(f.name for f in dataclasses.fields(Link))
    try:
        try:
            # by soname, which dlopen finds on the system's library path; not
            # ctypes.util.find_library, which runs ldconfig in a fork of this (large) process
            hashes = bool(_linkpack.configure(Link, names, LIBXXHASH))
        except ImportError as err:
            _log.info("%s: link hashes are computed in Python (install libxxhash0)", err)
            hashes = bool(_linkpack.configure(Link, names, None))
    except (TypeError, ValueError) as err:
        _log.warning("native link packing disabled: %s", err)
        return None, False
    problem = _native_pack_check(_linkpack)
    if problem:
        _log.warning("native link packing disabled, self-check failed: %s", problem)
        return None, False
    return _linkpack, hashes


def _native_pack_check(mod: Any) -> str | None:
    """None when mod.pack gives what _pack_links_py gives on SELF_CHECK_LINKS."""
    groups = [("https://www.example.com/a", list(SELF_CHECK_LINKS[:3])),
              ("http://h\u00e9.example/", []),
              ("https://x.example/p?q=1", list(SELF_CHECK_LINKS[3:]))]
    got = mod.pack(groups, True)
    if got is None:
        return "declined the self-check links"
    n, id_bytes, hash_bytes, columns = got
    ids, hashes, arrays = _pack_links_py(groups)
    if n != len(ids):
        return f"{n} rows for {len(ids)} links"
    if id_bytes is not None and (array("q", id_bytes).tolist() != ids
                                 or array("q", hash_bytes).tolist() != hashes):
        return "link ids or attribute hashes differ"
    for name, t, c, want in zip(_LINK_ATTR_NAMES, _ATTR_TYPES, columns, arrays, strict=True):
        if not _from_buffers(t, n, c).equals(want):
            return f"column {name} differs"
    if id_bytes is not None:
        texts = pa.array(["", "caf\u00e9", "x" * 300], pa.string()).slice(1)
        b = texts.buffers()
        got_hashes = array("q", mod.hash_strings(b[1], b[2], texts.offset, len(texts), 4))
        if got_hashes.tolist() != [hash64(t) for t in texts.to_pylist()]:
            return "hash_strings differs"
    return None


#: Links the native packing must reproduce before it is used: None and empty fields, every
#: kind, non-ASCII text, flags on and off, counts past one digit.
SELF_CHECK_LINKS: tuple[Link, ...] = (
    Link("https://www.example.com/b#f", "https://www.example.com/b", LinkKind.ANCHOR,
         "caf\u00e9 \u2014 menu", True, False, True, None, None, "before", "", "nav", 1),
    Link("https://cdn.example.org/i", "https://cdn.example.org/i", LinkKind.IMAGE, "", False,
         True, False, " A B ", "https://cdn.example.org/i.png", "", "after \U0001f600",
         None, 12),
    Link("https://www.example.com/de", "https://www.example.com/de", LinkKind.ALTERNATE, "",
         False, False, False, None, None, "", "", None, 1, "de"),
    Link("https://r.example/", "https://r.example/", LinkKind.REDIRECT, "", False, False,
         False, None, None, "", "", None, 1),
    Link("http://[::1]:8080/x", "http://[::1]:8080/x", LinkKind.CANONICAL, "None", False,
         False, False, "", "", "None", "None", "footer", 1234567, None),
)


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
