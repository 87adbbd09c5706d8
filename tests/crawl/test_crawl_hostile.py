"""Hostile servers: every fetch ends within its caps and deadlines and the crawl goes on."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
import zlib
from typing import Any

import pytest
from loopweb import Host, html, page_with_links, serve

from inlink.sources.fetcher import Fetcher, FetchLimits, load_resolve_file, parse_override

MiB = 1024 * 1024


def gzip_bomb(size: int) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * MiB
    parts = [comp.compress(zeros) for _ in range(size // MiB)]
    return b"".join(parts) + comp.flush()


BOMB = gzip_bomb(256 * MiB)     # ~250 KiB on the wire, 256 MiB inflated


async def bomb(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
                 + f"Content-Length: {len(BOMB)}\r\n\r\n".encode() + BOMB)
    await writer.drain()


async def trickle(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n")
    while True:                      # one byte every 10 s
        writer.write(b"<")
        await writer.drain()
        await asyncio.sleep(10)


async def drip(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n")
    while True:                      # fast enough for the read timeout, never finishing
        writer.write(b"<")
        await writer.drain()
        await asyncio.sleep(0.2)


async def endless_headers(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\n")
    for i in range(100_000):
        writer.write(f"X-Header-{i}: {'v' * 50}\r\n".encode())
        if i % 100 == 0:
            await writer.drain()


async def reset(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Len")
    await writer.drain()
    writer.transport.abort()


def many_links() -> tuple[int, list[tuple[str, str]], bytes]:
    body = b"<html><body>" + b"".join(b'<a href="/l%d">x</a>' % i for i in range(1_000_000))
    return 200, [("Content-Type", "text/html")], body


def hostile_hosts() -> list[Host]:
    none = (404, [], b"")
    return [
        Host("bomb.test", {"/robots.txt": none, "/": bomb}),
        Host("trickle.test", {"/robots.txt": none, "/": trickle}),
        Host("drip.test", {"/robots.txt": none, "/": drip}),
        Host("headers.test", {"/robots.txt": none, "/": endless_headers}),
        Host("reset.test", {"/robots.txt": none, "/": reset}),
        Host("links.test", {"/robots.txt": none, "/": many_links}),
        Host("charset.test", {"/robots.txt": none, "/": (
            200, [("Content-Type", "text/html; charset=utf-8")],
            "<html><title>Привет мир</title><a href='/ok'>да</a></html>".encode("cp1251"))}),
        Host("loop.test", {"/robots.txt": (302, [("Location", "/robots.txt")], b""),
                           "/": (301, [("Location", "/")], b"")}),
        Host("good.test", {"/robots.txt": none, "/": page_with_links("/a", "/b"),
                           "/a": html("a"), "/b": html("b")}),
    ]


def test_hostile_servers_stay_within_caps(run_crawl: Any) -> None:
    hosts = hostile_hosts()
    seeds = [f"http://{h.name}/" for h in hosts]
    started = time.monotonic()
    with serve(hosts) as web:
        # 4 s total per fetch: loop.test's five robots.txt redirects must end (unavailable:
        # allow all) before the deadline even on a loaded machine, or the host is disallowed.
        store, summary = run_crawl(web, seeds, scope="host", timeout=4.0, read_timeout=1.0,
                                   max_bytes=2 * MiB)
    elapsed = time.monotonic() - started
    assert elapsed < 15, elapsed
    rows = {str(r[0]): r[1:] for r in store.query(
        "SELECT url_key, status, error, size, state FROM pages")}
    assert rows["http://bomb.test/"][0] == 200 and rows["http://bomb.test/"][2] <= 2 * MiB
    assert rows["http://trickle.test/"][0] is None and "timeout" in rows["http://trickle.test/"][1]
    assert rows["http://drip.test/"][0] is None and "timeout" in rows["http://drip.test/"][1]
    assert rows["http://headers.test/"][0] is None
    assert rows["http://reset.test/"][0] is None
    assert rows["http://loop.test/"][3] == "broken_redirect"
    assert rows["http://links.test/"][0] == 200
    n_links = store.query("SELECT count(*) FROM links WHERE source_key = 'http://links.test/'")
    assert 0 < n_links[0][0] <= 10_000                          # extract's max_links
    assert rows["http://charset.test/"][3] == "indexable"
    assert {"http://good.test/a", "http://good.test/b"} <= set(rows)   # the crawl went on
    assert summary.pages_failed.get("timeout", 0) == 2


def test_gzip_bomb_memory_is_bounded() -> None:
    host = Host("bomb.test", {"/": bomb})

    async def fetch(resolve: dict[str, tuple[str, int | None]]) -> int:
        async with Fetcher(overrides=resolve, dns=False,
                           limits=FetchLimits(max_bytes=MiB)) as f:
            resp = await f.get("http://bomb.test/")
            assert resp.truncated and len(resp.body) == MiB
            return resp.wire_bytes

    with serve([host]) as web:
        tracemalloc.start()
        wire = asyncio.run(fetch(web.resolve))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert wire < len(BOMB)
    assert peak < 12 * MiB, peak


def test_overrides_and_no_dns(tmp_path: Any) -> None:
    assert parse_override("Ex.Test=127.0.0.5:8080") == ("ex.test", ("127.0.0.5", 8080))
    assert parse_override("v6.test=[::1]:81") == ("v6.test", ("::1", 81))
    assert parse_override("a.test=127.0.0.9") == ("a.test", ("127.0.0.9", None))
    path = tmp_path / "resolve.txt"
    path.write_text("# world\na.test=127.0.9.1:1234\n\nb.test=127.0.9.2  # comment\n")
    assert load_resolve_file(path) == {"a.test": ("127.0.9.1", 1234), "b.test": ("127.0.9.2", None)}
    with pytest.raises(ValueError):
        parse_override("nohost")

    async def unknown() -> str | None:
        async with Fetcher(overrides={}, dns=False) as f:
            return (await f.get("http://not-mapped.test/")).error

    error = asyncio.run(unknown())
    assert error is not None and error.startswith("dns:") and "--no-dns" in error


def test_records_connected_ip() -> None:
    host = Host("ip.test", {"/": html("x")})

    async def fetch(resolve: dict[str, tuple[str, int | None]]) -> str | None:
        async with Fetcher(overrides=resolve, dns=False) as f:
            return (await f.get("http://ip.test/")).ip

    with serve([host]) as web:
        assert asyncio.run(fetch(web.resolve)) == host.ip
