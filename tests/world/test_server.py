"""The loopback server: real HTTP per truth, day switching, robots, misbehaving hosts, cleanup."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from inlink.world import RunningWorld, World, read_resolve_file, serve_in_thread, write_resolve_file
from inlink.world.model import HostBroken, HostRobots, PageKind, State
from inlink.world.render import renderer

TIMEOUT = aiohttp.ClientTimeout(total=6)


@pytest.fixture(scope="module")
def served(world: World) -> Iterator[RunningWorld]:
    with serve_in_thread(world, day=1, slow_delay=0.4, trickle_max=1.0, idle_timeout=3.0,
                         timeout=30) as run:
        yield run


async def _get(run: RunningWorld, host: str, path: str, *, ip: str | None = None,
               timeout: aiohttp.ClientTimeout = TIMEOUT) -> tuple[int, dict[str, str], bytes]:
    addr, port = run.resolve[host]
    async with aiohttp.ClientSession(timeout=timeout) as s, s.get(
            f"http://{ip or addr}:{port}{path}", headers={"Host": host},
            allow_redirects=False) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read()


def _fetch(run: RunningWorld, host: str, path: str, **kw: object,
           ) -> tuple[int, dict[str, str], bytes]:
    return asyncio.run(_get(run, host, path, **kw))  # type: ignore[arg-type]


def _plain_hosts(world: World) -> list[int]:
    hs = world.hosts
    return [h for h in range(world.n_hosts)
            if not hs.broken[h] and not hs.slow[h]]


def test_serves_pages_and_robots_per_truth(world: World, served: RunningWorld) -> None:
    r = renderer(world)
    hs = world.hosts
    for h in _plain_hosts(world)[::150]:
        host = hs.key[h]
        for p in list(world.host_pages(h))[:3]:
            url = world.url_of(p)
            truth = world.page_truth(url, 1)
            if truth.error:
                continue
            status, headers, body = _fetch(served, host, world.paths[p])
            assert status == truth.status, url
            assert body == r.render(p, 1).body
            assert headers.get("content-type") == truth.content_type
        status, _, body = _fetch(served, host, "/robots.txt")
        want = r.robots(h, 1)
        assert status == want.status and body == want.body
        if hs.robots[h] == HostRobots.UNAVAILABLE:
            assert status == 503


def test_status_follows_the_served_day(world: World, served: RunningWorld) -> None:
    changed = [p for p in range(world.n_pages)
               if world.state[p, 1] == State.OK and world.state[p, 3] in (
                   State.NOT_FOUND, State.R301, State.ERR_500, State.GONE)]
    assert len(changed) >= 5
    sample = changed[:8]
    hs = world.hosts
    try:
        for p in sample:
            h = int(world.page_host[p])
            assert _fetch(served, hs.key[h], world.paths[p])[0] == 200
        served.set_day(3)
        for p in sample:
            h = int(world.page_host[p])
            status, headers, _ = _fetch(served, hs.key[h], world.paths[p])
            assert status == world.page_truth(world.url_of(p), 3).status
            if status == 301:
                assert headers["location"] == world.url_of(int(world.aux[p]))
        robots_day = next(p for p in range(world.n_pages)
                          if world.disallow[p, 3] and not world.disallow[p, 1])
        h = int(world.page_host[robots_day])
        body = _fetch(served, hs.key[h], "/robots.txt")[2].decode()
        assert f"Disallow: {world.paths[robots_day]}" in body
    finally:
        served.set_day(1)


def test_bound_only_to_loopback(world: World, served: RunningWorld) -> None:
    addrs = served.server.bound_addresses()
    assert len(addrs) == len({world.ip_of_host(h) for h in range(world.n_hosts)})
    for ip, port in addrs:
        assert port == served.port
        assert ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("127.0.0.0/8")
        assert ip != "127.0.0.1"
    # The kernel's view: every listener on our port is a 127/8 address.
    listeners = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        ip_hex, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == served.port:
            listeners.append(socket.inet_ntoa(bytes.fromhex(ip_hex)[::-1]))
    assert listeners and all(ip.startswith("127.") and ip != "127.0.0.1" for ip in listeners)
    assert not any(line.split()[1].split(":")[1] == f"{served.port:04X}"
                   for line in Path("/proc/net/tcp6").read_text().splitlines()[1:])


def test_misdirected_and_unknown_host(world: World, served: RunningWorld) -> None:
    hosts = _plain_hosts(world)
    a = world.hosts.key[hosts[0]]
    other_ip = next(world.ip_of_host(h) for h in hosts
                    if world.ip_of_host(h) != world.ip_of_host(hosts[0]))
    assert _fetch(served, a, "/", ip=other_ip)[0] == 421
    assert _fetch(served, a, "/no/such/page.html")[0] == 404


def test_session_ids_and_percent_encoding_reach_the_page(world: World,
                                                         served: RunningWorld) -> None:
    p = next(p for p in range(world.n_pages) if world.page_kind[p] == PageKind.NORMAL
             and world.state[p, 1] == State.OK and not world.page_query[p]
             and _plain(world, p))
    host = world.hosts.key[int(world.page_host[p])]
    path = world.paths[p]
    want = _fetch(served, host, path)
    assert _fetch(served, host, path + "?PHPSESSID=abc")[2] == want[2]
    assert _fetch(served, host, "/%" + format(ord(path[1]), "02x") + path[2:])[2] == want[2]


def _plain(world: World, p: int) -> bool:
    h = int(world.page_host[p])
    return not world.hosts.broken[h] and not world.hosts.slow[h] and \
        world.hosts.robots[h] != HostRobots.UNAVAILABLE


def test_slow_host_waits_within_its_bound(world: World, served: RunningWorld) -> None:
    h = next(h for h in range(world.n_hosts) if world.hosts.slow[h])
    t0 = time.perf_counter()
    status = _fetch(served, world.hosts.key[h], "/")[0]
    elapsed = time.perf_counter() - t0
    assert status == 200 and 0.35 <= elapsed < 2.5


@pytest.mark.parametrize("mode", [HostBroken.RESET, HostBroken.TRUNCATED, HostBroken.TRICKLE])
def test_broken_hosts_misbehave(world: World, served: RunningWorld, mode: int) -> None:
    h = next(h for h in range(world.n_hosts) if world.hosts.broken[h] == mode)
    host = world.hosts.key[h]
    assert _fetch(served, host, "/robots.txt")[0] == 404  # robots answers; pages fail
    t0 = time.perf_counter()
    with pytest.raises((aiohttp.ClientError, asyncio.TimeoutError)):
        _fetch(served, host, "/", timeout=aiohttp.ClientTimeout(total=5))
    assert time.perf_counter() - t0 < 4.5
    assert world.page_truth(world.url_of(world.home_of(h)), 1).outcome == "crawl_error"


def test_page_level_reset_and_truncation(world: World, served: RunningWorld) -> None:
    served.set_day(2)
    try:
        for state in (State.RESET, State.TRUNCATED):
            p = next(p for p in range(world.n_pages)
                     if world.state[p, 2] == state and _plain(world, p))
            host = world.hosts.key[int(world.page_host[p])]
            with pytest.raises(aiohttp.ClientError):
                _fetch(served, host, world.paths[p])
            assert world.page_links(world.url_of(p), 2) == []
    finally:
        served.set_day(1)


def test_stop_frees_the_port(small: World) -> None:
    with serve_in_thread(small, timeout=30) as run:
        ip, port = next(iter(run.resolve.values()))
        assert _fetch(run, next(iter(run.resolve)), "/")[0] in (200, 301, 302, 308)
    s = socket.socket()
    try:
        s.bind((ip, port))  # would fail with EADDRINUSE if a listener survived
    finally:
        s.close()


def test_resolve_file_round_trip(tmp_path: Path, served: RunningWorld) -> None:
    path = tmp_path / "resolve.txt"
    write_resolve_file(path, served.resolve)
    assert path.read_text().startswith("#")
    back = read_resolve_file(path)
    assert back == {k: (ip, port) for k, (ip, port) in served.resolve.items()}
    (tmp_path / "r2.txt").write_text("# c\nA.example=127.9.9.9  # x\n\nb.example=127.9.9.8:81\n")
    assert read_resolve_file(tmp_path / "r2.txt") == {"a.example": ("127.9.9.9", None),
                                                       "b.example": ("127.9.9.8", 81)}
