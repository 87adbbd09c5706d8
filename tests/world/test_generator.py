"""The generator: determinism, coverage of every lost reason and link kind, addresses, scale."""

from __future__ import annotations

import collections
import ipaddress
import time

import numpy as np

from inlink.world import World
from inlink.world.model import KIND_NAMES, PageKind
from inlink.world.render import renderer
from inlink.world.truth import LOST_REASONS, world_truth

ARRAYS = ("page_host", "page_kind", "state", "aux", "disallow", "l_src", "l_dst", "l_kind",
          "l_anchor", "l_style", "l_birth", "l_death", "l_reborn")


def test_same_seed_same_world_and_bytes() -> None:
    a, b = World(seed=3, hosts=200), World(seed=3, hosts=200)
    for name in ARRAYS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.hosts.key == b.hosts.key and a.paths == b.paths
    for p in range(0, a.n_pages, 37):
        for d in (1, 3):
            assert renderer(a).render(p, d).body == renderer(b).render(p, d).body
    assert list(a.events(3)) == list(b.events(3))


def test_other_seed_differs() -> None:
    a, b = World(seed=3, hosts=200), World(seed=4, hosts=200)
    assert a.hosts.key != b.hosts.key


def test_every_lost_reason_and_kind_within_days_1_to_3(world: World) -> None:
    t = world_truth(world)
    kind_of = np.concatenate([world.l_kind, t.derived.kind])
    kinds: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    per_day: dict[int, tuple[set[int], set[int]]] = {}
    for d, new, lost, _codes in t.iter_event_arrays(3):
        per_day[d] = (set(new.tolist()), set(lost.tolist()))
        kinds.update(KIND_NAMES[k] for k in kind_of[new].tolist())
    # Materialize only days 2..3 as Event records; day 1 is every live link.
    for e in world.events(3):
        if e.date > world.date_of(1) and e.event == "lost":
            assert e.reason is not None
            reasons[e.reason] += 1
    for reason in LOST_REASONS:
        assert reasons[reason] >= 3, (reason, reasons)
    for day in (2, 3):
        assert len(per_day[day][0]) >= 3
    for kind in ("anchor", "image", "meta", "redirect", "canonical", "alternate"):
        assert kinds[kind] >= 3, (kind, kinds)
    # A link lost on day 2 comes back as new on day 3.
    assert len(per_day[2][1] & per_day[3][0]) >= 3


def test_page_level_changes_on_day_2_and_3(world: World) -> None:
    for day in (2, 3):
        changed = world.state[:, day] != world.state[:, day - 1]
        states = collections.Counter(world.state[changed, day].tolist())
        assert len(states) >= 12, states
        assert (world.disallow[:, day] & ~world.disallow[:, day - 1]).sum() >= 3


def test_addresses_are_private_loopback_and_spread(world: World) -> None:
    ips = [world.ip_of_host(h) for h in range(world.n_hosts)]
    for ip in ips:
        assert ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("127.0.0.0/8")
        assert ip != "127.0.0.1" and not ip.startswith("127.0.0.")
    subnets = {ip.rsplit(".", 1)[0] for ip in ips}
    assert len(subnets) >= 100
    assert len(set(ips)) < len(ips)  # shared hosting exists
    farm = {world.ip_of_host(h).rsplit(".", 1)[0]
            for h in range(world.n_hosts) if world.hosts.is_farm[h]}
    assert len(farm) == 1


def test_hosts_cover_tlds_idn_and_subdomains(world: World) -> None:
    tlds = set(world.hosts.tld)
    assert {"com", "org", "edu", "gov", "co.uk", "com.au", "de", "ru", "jp", "xyz"} <= tlds
    idn = [(n, k) for n, k in zip(world.hosts.name, world.hosts.key, strict=True) if n != k]
    assert idn and all(k.isascii() and "xn--" in k for _, k in idn)
    prefixes = collections.Counter(k.split(".")[0] for k in world.hosts.key)
    assert all(prefixes[p] > 0 for p in ("www", "blog", "shop", "docs"))
    assert set(world.hosts.encoding) == {"utf-8", "windows-1251", "windows-1252", "shift_jis"}


def test_power_law_and_farm(world: World) -> None:
    top = world.top_targets(20)
    counts = np.bincount(world.l_dst, minlength=world.n_pages)
    assert top[0][1] > 50 * max(1.0, float(np.median(counts)))
    money_home = world.url_of(world.home_of(world.money_host))
    farm_pages = [p for p in range(world.n_pages)
                  if world.hosts.is_farm[world.page_host[p]]]
    assert len(farm_pages) >= 12 * 12
    links = world.page_links(world.url_of(farm_pages[0]), 1)
    assert len(links) >= 40
    assert any(t.target_key == money_home for p in farm_pages[:20]
               for t in world.page_links(world.url_of(p), 1))
    assert world.page_truth(world.url_of(farm_pages[0]), 1).is_farm


def test_sizes_are_realistic(world: World) -> None:
    r = renderer(world)
    sizes = [len(r.render(p, 1).body) for p in range(0, world.n_pages, 50)
             if world.state[p, 1] == 0 and world.page_kind[p] != PageKind.THIN]
    big = sum(50_000 <= s <= 160_000 for s in sizes)
    assert 0.15 < big / len(sizes) < 0.5


def test_every_page_reachable_from_its_home(world: World) -> None:
    t = world_truth(world)
    for h in range(0, world.n_hosts, 97):
        home = world.home_of(h)
        linked = {int(world.l_dst[i]) for i in t.page_rows(home, 1)}
        for p in world.host_pages(h):
            if world.page_kind[p] not in (PageKind.HOME, PageKind.DEAD):
                assert p in linked


def test_truth_keys_match_normalize_url(world: World) -> None:
    urls = __import__("inlink.urls", fromlist=["normalize_url"])
    bad = []
    for p in range(0, world.n_pages, 29):
        for link in world.page_links(world.url_of(p), 1):
            if urls.normalize_url(link.target_url) != link.target_key:
                bad.append((link.target_url, link.target_key))
    assert not bad, bad[:10]


def test_large_world_builds_quickly() -> None:
    t0 = time.perf_counter()
    w = World(seed=5, hosts=20_000)
    elapsed = time.perf_counter() - t0
    assert w.n_pages > 150_000 and w.n_links > 2_000_000
    assert elapsed < 20, elapsed
