"""The native link packing (inlink/_linkpack.c) against the Python packing it replaces:
identical fetch tuples and Arrow batches on the synthetic web, generated links and the
inputs the C code must decline; ids and hashes equal index.state's.

Skipped when the extension is not built, unless INLINK_REQUIRE_NATIVE is set (.ci/run sets
it: CI builds the extension and installs libxxhash, so there a skip would hide a regression).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inlink.extract import Extraction, Link, LinkKind, PageFacts
from inlink.index import rows
from inlink.index.state import classify, link_attr_hash, link_id
from inlink.sources.record import FetchRecord
from inlink.sources.warc import WarcItem, iter_records, to_fetch_record
from inlink.world import World
from inlink.world.export import write_warc

REQUIRED = bool(os.environ.get("INLINK_REQUIRE_NATIVE"))


def _module() -> Any:
    rows.use_native_pack(None)
    return rows._native_pack()


def test_the_native_packing_is_there_when_required() -> None:
    if not REQUIRED:
        pytest.skip("INLINK_REQUIRE_NATIVE not set")
    assert _module() is not None, "inlink._linkpack is not built or failed its self-check"
    assert rows.native_hasher() is not None, \
        "libxxhash is not installed: hashes fall back to Python"


pytestmark = pytest.mark.skipif(not REQUIRED and _module() is None,
                                reason="native link packing not built or disabled")


@pytest.fixture(autouse=True)
def _default_packing() -> Iterator[None]:
    yield
    rows.use_native_pack(None)


def both(records: list[FetchRecord], keep: bool = False) -> rows.Packed:
    """pack_fetches through C and through Python; asserts they agree, returns the first
    (`keep`: the native packing as the caller set it up)."""
    if not keep:
        rows.use_native_pack(None)
    saved = list(rows._NATIVE)
    native = rows.pack_fetches(records)
    rows.use_native_pack(False)
    python = rows.pack_fetches(records)
    rows._NATIVE[:] = saved
    assert native[0] == python[0]
    assert tuple(native[1].schema.names) == rows.OWN_COLUMNS
    for name in rows.OWN_COLUMNS:
        assert native[1].column(name).equals(python[1].column(name)), name
    return native


def record(key: str, links: list[Link]) -> FetchRecord:
    facts = PageFacts(url=key, url_key=key, status=200, content_type="text/html",
                      is_html=True, title="T", language="en", encoding="utf-8", size=10,
                      internal_links=0, external_links=len(links), noindex=False,
                      nofollow=False, canonical=None, base_url=key, truncated=False,
                      links_dropped=0)
    return FetchRecord(url=key, url_key=key, fetched_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                       status=200, ip="127.1.2.3", extraction=Extraction(facts, links))


def test_the_synthetic_web_packs_the_same_both_ways(tmp_path: Path) -> None:
    world = World(seed=5, hosts=40, days=2)
    path = tmp_path / "day-1.warc.gz"
    write_warc(world, path, 1)
    records: list[FetchRecord] = []
    for item in iter_records(path):
        assert isinstance(item, WarcItem)
        got = to_fetch_record(item, str(path))
        if isinstance(got, FetchRecord):
            records.append(got)
    assert len(records) > 200
    links = 0
    for start in range(0, len(records), 16):
        chunk = records[start:start + 16]
        metas, batch = both(chunk)
        links += batch.num_rows
        for meta, r in zip(metas, chunk, strict=True):
            live = classify(r).live_links
            assert meta[-2] == [link_id(r.url_key, x) for x in live]
            assert meta[-1] == [link_attr_hash(x) for x in live]
    assert links > 2_000


def _link(**kw: object) -> Link:
    base = dict(target_url="https://t.example/a", target_key="https://t.example/a",
                kind=LinkKind.ANCHOR, anchor="a", nofollow=False, ugc=False, sponsored=False,
                alt=None, image_url=None, text_pre="", text_post="", location=None,
                links_count=1, hreflang=None)
    base.update(kw)
    return Link(**base)  # type: ignore[arg-type]


def test_what_the_c_code_declines_is_packed_in_python() -> None:
    mod = _module()
    assert mod is not None
    key = "https://s.example/p"
    for odd in (_link(anchor="lone \udc80"), _link(alt="\ud800"), _link(nofollow=1),
                _link(links_count=True), _link(anchor=None), _link(text_pre=b"x")):
        assert mod.pack([(key, [_link(), odd])], True) is None
    # ... and the packed chunk is still the Python one: hashes over surrogatepass, text
    # stored with U+FFFD
    metas, batch = both([record(key, [_link(), _link(anchor="lone \udc80")])])
    assert metas[0][-2] == [link_id(key, _link()), link_id(key, _link(anchor="lone \udc80"))]
    assert batch.column("anchor").to_pylist() == ["a", "lone \ufffd"]


def test_ports_ipv6_and_empty_pages() -> None:
    links = [_link(target_url="http://[::1]:8080/x", target_key="http://[::1]:8080/x"),
             _link(target_url="http://h.example:81/", target_key="http://h.example:81/"),
             _link(target_url="https://s.example/q", target_key="https://s.example/q")]
    metas, batch = both([record("https://s.example/p", links), record("https://e.example/", []),
                         record("http://[::2]/", links[:1])])
    batch = rows.complete_links(rows.unpack_fetches((metas, batch)))
    assert batch.column("target_host").to_pylist() == ["[::1]", "h.example", "s.example",
                                                       "[::1]"]
    assert batch.column("internal").to_pylist() == [False, False, True, False]
    assert batch.column("source_key").to_pylist() == ["https://s.example/p"] * 3 + [
        "http://[::2]/"]
    assert [len(m[-2]) for m in metas] == [3, 0, 1]
    assert both([])[1].num_rows == 0
    assert rows.complete_links([]).num_rows == 0
    assert both([record("https://e.example/", [])])[1].num_rows == 0


texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
links = st.builds(
    _link, target_url=texts, anchor=texts, kind=st.sampled_from(list(LinkKind)),
    nofollow=st.booleans(), ugc=st.booleans(), sponsored=st.booleans(),
    alt=st.none() | texts, image_url=st.none() | texts, text_pre=texts, text_post=texts,
    location=st.none() | texts, links_count=st.integers(1, 2**31 - 1),
    hreflang=st.none() | texts,
    target_key=st.sampled_from(["https://t.example/", "http://u.example:8/x", "https://[::1]/"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(links, max_size=6), max_size=4), st.booleans())
def test_generated_links_pack_the_same(groups: list[list[Link]], libxxhash: bool) -> None:
    mod = _module()
    assert mod is not None
    names = tuple(f.name for f in dataclasses.fields(Link))
    try:
        # without libxxhash the C code fills the columns and Python hashes
        mod.configure(Link, names, rows.LIBXXHASH if libxxhash else None)
        both([record(f"https://s{i}.example/", g) for i, g in enumerate(groups)])
    finally:
        mod.configure(Link, names, rows.LIBXXHASH)


def test_the_self_check_catches_a_disagreement(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _module()
    assert rows._native_pack_check(mod) is None
    real = rows._pack_links_py

    def off_by_one(groups: list[tuple[str, list[Link]]]) -> tuple[list[int], list[int], Any]:
        ids, hashes, arrays = real(groups)
        return ids, [h + 1 for h in hashes], arrays

    monkeypatch.setattr(rows, "_pack_links_py", off_by_one)
    assert rows._native_pack_check(mod) == "link ids or attribute hashes differ"


def test_the_bulk_loaders_arrow_hashes_match_python() -> None:
    from inlink.index import bulk
    from inlink.index.state import hash64

    assert rows.native_hasher() is not None, "libxxhash not found"
    values = ["", "a", "caf\u00e9 \U0001f600", "x" * 1000, "\x1f".join("abc")] * 7
    for kind in (pa.string(), pa.large_string()):
        arr = pa.array(values, kind)
        for part in (arr, arr.slice(3), arr.slice(5, 9), arr.slice(0, 0)):
            got = bulk.hash64_arrow(part).tolist()
            assert got == [hash64(v) for v in part.to_pylist()]
            assert got == bulk.hash64_many(part.to_pylist()).tolist()
    # a null makes it the Python path (which raises as it always did: concat() never
    # gives NULL); buffers that do not cover the strings are refused, not read
    with pytest.raises(AttributeError):
        bulk.hash64_arrow(pa.array(["a", None]))
    mod = rows.native_hasher()
    _, offsets, data = pa.array(["abc", "def"]).buffers()
    with pytest.raises(ValueError):
        mod.hash_strings(offsets, data, 1, 5, 4)
    with pytest.raises(ValueError):
        mod.hash_strings(offsets, b"ab", 0, 2, 4)


def test_without_libxxhash_the_c_code_fills_columns_and_python_hashes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rows, "LIBXXHASH", "libinlink-no-such-library.so.1")
    rows.use_native_pack(None)
    try:
        assert rows._native_pack() is not None
        assert rows.native_hasher() is None
        links = [_link(), _link(anchor="b", alt="x", links_count=4)]
        metas, _ = both([record("https://s.example/p", links)], keep=True)
        assert metas[0][-2] == [link_id("https://s.example/p", x) for x in links]
    finally:
        monkeypatch.undo()
        rows.use_native_pack(None)
        assert rows.native_hasher() is not None     # configured with libxxhash again
