"""The response cache the crawl benchmark serves from answers exactly like rendering does."""

from __future__ import annotations

import pytest

world_mod = pytest.importorskip("inlink.world")


def test_cached_responses_match_rendered_ones() -> None:
    w = world_mod.World(seed=3, hosts=40, days=3)
    plain = world_mod.WorldServer(w, 1, slow_delay=0.3)
    cached = world_mod.WorldServer(w, 1, slow_delay=0.3, cache_bytes=1 << 30, prerender=True)
    assert cached.prerender_day() > w.n_pages
    targets = [(w.hosts.key[h], "/robots.txt", h) for h in range(w.n_hosts)]
    targets += [(w.hosts.key[int(w.page_host[p])], w.paths[p], int(w.page_host[p]))
                for p in range(w.n_pages)]
    targets.append((w.hosts.key[0], "/no-such-page?sid=1", 0))
    for day in (1, 2):
        plain.set_day(day)
        cached.set_day(day)
        for name, path, h in targets:
            ip = w.ip_of_host(h)
            for server in (cached, cached):      # the second time from the cache
                got = server.respond(ip, name, path)
                want = plain.respond(ip, name, path)
                assert (got.status, got.headers, got.body, got.misbehave, got.delay) == (
                    want.status, want.headers, want.body, want.misbehave, want.delay), path


def test_cache_stops_at_its_byte_cap() -> None:
    w = world_mod.World(seed=3, hosts=40, days=3)
    server = world_mod.WorldServer(w, 1, cache_bytes=100_000, prerender=True)
    server.prerender_day()
    assert 0 < server._cached <= 100_000
