"""Builds a `World`'s arrays: hosts, pages, day-by-day page states and the link table.

Everything is vectorized numpy except per-host naming, so 100k hosts build in seconds.
Each stage draws from its own seeded stream (`World.rng(stage)`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from inlink.world import names
from inlink.world.model import (
    HostBroken,
    HostRobots,
    Hosts,
    Kind,
    PageKind,
    Slot,
    State,
    Style,
)

if TYPE_CHECKING:
    from inlink.world.model import World

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

HREFLANGS = ("de", "fr", "ru", "ja", "en-gb", "x-default")


def build(w: World) -> None:
    _build_hosts(w)
    _build_pages(w)
    _build_tables(w)
    _build_states(w)
    _build_links(w)


# --- hosts ----------------------------------------------------------------------------------

def _pick(rng: np.random.Generator, weights: list[float]) -> int:
    total = sum(weights)
    x = rng.random() * total
    for i, wt in enumerate(weights):
        x -= wt
        if x < 0:
            return i
    return len(weights) - 1


def _build_hosts(w: World) -> None:
    rng = w.rng(1)
    n_farm = w.n_farm
    n_normal = w.n_hosts - n_farm
    tld_w = [t[1] for t in names.TLDS]
    name: list[str] = []
    key: list[str] = []
    domain: list[str] = []
    domain_id: list[int] = []
    tld: list[str] = []
    lang: list[str] = []
    brand: list[str] = []
    used: set[str] = set()
    n_dom = 0
    while len(name) < n_normal:
        t = names.TLDS[_pick(rng, tld_w)]
        lg = t[2]
        if rng.random() < 0.04 and lg in names.IDN_LABELS:
            labels = names.IDN_LABELS[lg]
            label = labels[int(rng.integers(len(labels)))]
        else:
            label = names.syllable_name(rng)
        base, k = label, 2
        while f"{label}.{t[0]}" in used:
            label, k = f"{base}{k}", k + 1
        dom_u = f"{label}.{t[0]}"
        used.add(dom_u)
        k_hosts = 1 + int(rng.random() < 0.3) + int(rng.random() < 0.12) + int(rng.random() < 0.05)
        first = "www" if rng.random() < 0.6 else ""
        others = [s for s in names.SUBDOMAINS if s != first]
        extra = [others[int(i)] for i in rng.permutation(len(others))[: k_hosts - 1]]
        for pre in [first, *extra]:
            if len(name) >= n_normal:
                break
            host_u = f"{pre}.{dom_u}" if pre else dom_u
            name.append(host_u)
            key.append(names.to_ascii_host(host_u))
            domain.append(names.to_ascii_host(dom_u))
            domain_id.append(n_dom)
            tld.append(t[0])
            lang.append(lg)
            brand.append(label[:1].upper() + label[1:])
        n_dom += 1
    for i in range(n_farm):
        t0 = names.RISKY_TLDS[i % len(names.RISKY_TLDS)]
        label = names.syllable_name(rng) + "-deals"
        while f"{label}.{t0}" in used:
            label += "x"
        used.add(f"{label}.{t0}")
        host_u = f"{label}.{t0}"
        name.append(host_u)
        key.append(host_u)
        domain.append(host_u)
        domain_id.append(n_dom)
        n_dom += 1
        tld.append(t0)
        lang.append("en")
        brand.append(label.capitalize())

    h_n = len(name)
    is_farm = np.zeros(h_n, dtype=np.bool_)
    is_farm[n_normal:] = True
    tld_info = {t[0]: t for t in names.TLDS}
    encoding: list[str] = []
    label_out: list[str] = []
    mode = np.zeros(h_n, dtype=np.int8)
    lang_tag: list[str] = []
    for h in range(h_n):
        info = tld_info.get(tld[h])
        enc = "utf-8"
        if info is not None and info[3] > 0 and not is_farm[h] and rng.random() < info[3]:
            enc = info[4]
        encoding.append(enc)
        labels = names.CHARSET_LABELS[enc]
        label_out.append(labels[int(rng.integers(len(labels)))])
        weights = [30.0, 30.0, 35.0, 5.0] if enc == "utf-8" else [30.0, 40.0, 20.0, 10.0]
        mode[h] = _pick(rng, weights)
        tags = names.LANG_TAGS[lang[h]]
        lang_tag.append(tags[int(rng.integers(len(tags)))])

    # Loopback IPs: many /24s, shared hosting (several hosts on one IP), farm on one /24.
    ips = np.zeros(h_n, dtype=np.uint32)
    n_sub = max(32, n_normal // 6)
    sub_a = rng.integers(16, 251, size=n_sub * 2)
    sub_b = rng.integers(0, 256, size=n_sub * 2)
    subnets = np.unique((sub_a.astype(np.uint32) << 8) | sub_b.astype(np.uint32))
    rng.shuffle(subnets)
    farm_subnet = int(subnets[0])
    subnets = subnets[1 : n_sub + 1]
    taken: set[int] = set()
    for h in range(n_normal):
        if h > 0 and rng.random() < 0.15:
            ips[h] = ips[h - 1]
            continue
        while True:
            ip = (127 << 24) | (int(subnets[int(rng.integers(len(subnets)))]) << 8)
            ip |= int(rng.integers(2, 255))
            if ip not in taken:
                taken.add(ip)
                ips[h] = ip
                break
    for i in range(n_farm):
        ips[n_normal + i] = (127 << 24) | (farm_subnet << 8) | (10 + i % 240)

    robots = np.zeros(h_n, dtype=np.int8)
    r = rng.random(h_n)
    robots[r < 0.08] = HostRobots.PRIVATE
    robots[(r >= 0.08) & (r < 0.11)] = HostRobots.DELAY
    robots[(r >= 0.11) & (r < 0.18)] = HostRobots.MISSING
    robots[(r >= 0.18) & (r < 0.20)] = HostRobots.UNAVAILABLE
    broken = np.zeros(h_n, dtype=np.int8)
    rb = rng.random(h_n)
    broken[rb < 0.015] = rng.integers(1, 4, size=int((rb < 0.015).sum())).astype(np.int8)
    slow = (rng.random(h_n) < 0.015) & (broken == 0)
    # A broken host still answers robots.txt (404), so its pages are fetched and fail.
    robots[broken != HostBroken.NONE] = HostRobots.MISSING
    robots[is_farm] = HostRobots.ALLOW
    broken[is_farm] = 0
    slow[is_farm] = False

    money = next(
        h for h in range(n_normal)
        if tld[h] == "com" and robots[h] == HostRobots.ALLOW and broken[h] == 0
        and not slow[h] and encoding[h] == "utf-8" and name[h] == key[h]
    )
    w.money_host = money
    w.hosts = Hosts(
        name=name, key=key, domain=domain, domain_id=np.asarray(domain_id, dtype=np.int32),
        tld=tld, lang=lang, lang_tag=lang_tag, encoding=encoding, charset_label=label_out,
        charset_mode=mode, brand=brand, ip=ips, robots=robots, broken=broken, slow=slow,
        is_farm=is_farm, page_start=np.zeros(h_n + 1, dtype=np.int64),
    )


# --- pages ----------------------------------------------------------------------------------

def _build_pages(w: World) -> None:
    rng = w.rng(2)
    hs = w.hosts
    h_n = len(hs.key)
    mu = math.log(w._pph) - 0.5
    n_norm = np.clip(np.round(rng.lognormal(mu, 1.0, size=h_n)), 2, 400).astype(np.int64)
    small = hs.slow | (hs.robots == HostRobots.DELAY) | (hs.broken != HostBroken.NONE)
    n_norm[small] = np.minimum(n_norm[small], 4)
    n_norm[hs.is_farm] = 12
    n_norm[w.money_host] = 20
    n_private = (hs.robots == HostRobots.PRIVATE).astype(np.int64)
    n_dead = (rng.random(h_n) < 0.3).astype(np.int64) + (rng.random(h_n) < 0.05)
    n_dead[hs.is_farm] = 0
    total = n_norm + n_private + n_dead
    start = np.zeros(h_n + 1, dtype=np.int64)
    np.cumsum(total, out=start[1:])
    hs.page_start[:] = start
    p_n = int(start[-1])
    page_host = np.repeat(np.arange(h_n, dtype=np.int32), total)
    local = (np.arange(p_n, dtype=np.int64) - start[page_host]).astype(np.int32)
    kind = np.full(p_n, PageKind.NORMAL, dtype=np.int8)
    kind[local == 0] = PageKind.HOME
    private = (local >= n_norm[page_host]) & (local < (n_norm + n_private)[page_host])
    kind[private] = PageKind.PRIVATE
    kind[local >= (n_norm + n_private)[page_host]] = PageKind.DEAD
    host_secs = rng.integers(0, len(names.SECTIONS), size=(h_n, 2))
    section = host_secs[page_host, local % 2].astype(np.int8)
    query = (rng.random(p_n) < 0.06) & (kind == PageKind.NORMAL)
    slug = rng.integers(0, len(names.WORDS["en"]) ** 2, size=p_n).astype(np.int32)
    words = names.WORDS["en"]
    nw = len(words)
    paths: list[str] = []
    for p, (k, sec, q, sl, lo) in enumerate(zip(
        kind.tolist(), section.tolist(), query.tolist(), slug.tolist(), local.tolist(),
        strict=True,
    )):
        del p
        s = names.SECTIONS[sec]
        if k == PageKind.HOME:
            paths.append("/")
        elif k == PageKind.PRIVATE:
            paths.append(f"/private/report-{lo}.html")
        elif k == PageKind.DEAD:
            paths.append(f"/{s}/old-{words[sl % nw]}-{lo}.html")
        elif q:
            paths.append(f"/{s}/list.php?page={lo}&sort=new")
        else:
            paths.append(f"/{s}/{words[sl % nw]}-{words[sl // nw]}-{lo}.html")
    w.page_host = page_host
    w.page_local = local
    w.page_kind = kind
    w.page_section = section
    w.page_query = query
    w.page_slug = slug
    w.paths = paths
    w._n_norm = n_norm  # type: ignore[attr-defined]


# --- string tables --------------------------------------------------------------------------

class _Interner:
    def __init__(self) -> None:
        self.strings: list[str] = [""]
        self.index: dict[str, int] = {"": 0}

    def __call__(self, s: str) -> int:
        i = self.index.get(s)
        if i is None:
            i = self.index[s] = len(self.strings)
            self.strings.append(s)
        return i

    def many(self, items: list[str]) -> I32:
        return np.fromiter((self(s) for s in items), dtype=np.int32, count=len(items))


def _build_tables(w: World) -> None:
    rng = w.rng(3)
    hs = w.hosts
    anchors = _Interner()
    phrases = {lg: names.make_phrases(rng, lg, 400) for lg in names.LANGS}
    w._phrase_ids = {lg: anchors.many(v) for lg, v in phrases.items()}  # type: ignore[attr-defined]
    w._generic_ids = {  # type: ignore[attr-defined]
        lg: anchors.many(list(v)) for lg, v in names.GENERIC_ANCHORS.items()}
    w._nav_ids = {  # type: ignore[attr-defined]
        lg: anchors.many(list(v)) for lg, v in names.NAV_LABELS.items()}
    w._farm_ids = anchors.many(list(names.FARM_ANCHORS))  # type: ignore[attr-defined]
    w._brand_ids = anchors.many(hs.brand)  # type: ignore[attr-defined]
    w._urltext_ids = anchors.many(hs.name)  # type: ignore[attr-defined]
    # Short titles double as sitemap anchors; the full <title> appends the brand.
    titles: list[str] = []
    lang_of = [hs.lang[h] for h in w.page_host.tolist()]
    for p, (lo, sl, k) in enumerate(zip(
        w.page_local.tolist(), w.page_slug.tolist(), w.page_kind.tolist(), strict=True,
    )):
        h = int(w.page_host[p]) if k == PageKind.HOME else -1
        if h >= 0:
            titles.append(hs.brand[h])
        else:
            ph = phrases[lang_of[p]][sl % 400]
            titles.append(f"{ph[:1].upper()}{ph[1:]} {lo}")
    w.page_title = titles
    w._title_ids = anchors.many(titles)  # type: ignore[attr-defined]
    w.anchors = anchors.strings
    snippets = _Interner()
    w._snippet_ids = {  # type: ignore[attr-defined]
        lg: snippets.many(names.make_snippets(rng, lg, 300)) for lg in names.LANGS}
    w.snippets = snippets.strings
    w.paragraphs = {lg: names.make_paragraphs(rng, lg, 24, 110) for lg in names.LANGS}


# --- page states ----------------------------------------------------------------------------

def _build_states(w: World) -> None:
    rng = w.rng(4)
    hs = w.hosts
    p_n, d_n = w.n_pages, w.days
    ph = w.page_host
    state = np.zeros((p_n, d_n + 1), dtype=np.int8)
    aux = np.full(p_n, -1, dtype=np.int32)
    disallow = np.zeros((p_n, d_n + 1), dtype=np.bool_)
    kind = w.page_kind
    dead = np.flatnonzero(kind == PageKind.DEAD)
    state[dead, :] = State.NOT_FOUND
    state[dead[rng.random(len(dead)) < 0.2], :] = State.GONE
    disallow[kind == PageKind.PRIVATE, :] = True

    ok_host = (~hs.is_farm) & (hs.broken == HostBroken.NONE) & (
        hs.robots != HostRobots.UNAVAILABLE)
    ok_host[w.money_host] = False
    base = (kind == PageKind.NORMAL) & ok_host[ph]
    stable = (kind == PageKind.HOME) | (base & (rng.random(p_n) < 0.25))
    stable &= ok_host[ph] | (kind == PageKind.HOME)
    w.stable = stable
    stable_pages = np.flatnonzero(stable & (kind == PageKind.NORMAL))
    # Per host: the first stable non-home page, else the home page (canonical targets).
    same_host_target = hs.page_start[:-1].astype(np.int32).copy()
    first = np.full(len(hs.key), np.iinfo(np.int32).max, dtype=np.int64)
    np.minimum.at(first, ph[stable_pages], stable_pages)
    has = first < np.iinfo(np.int32).max
    same_host_target[has] = first[has].astype(np.int32)

    cand = np.flatnonzero(base & ~stable)
    cand = cand[rng.permutation(len(cand))]
    used = np.zeros(p_n, dtype=np.bool_)
    thin = np.zeros(p_n, dtype=np.bool_)
    pos = [0]

    def take(n: int, robots_ok: bool = False) -> I64:
        out: list[int] = []
        while len(out) < n and pos[0] < len(cand):
            p = int(cand[pos[0]])
            pos[0] += 1
            if used[p]:
                continue
            if robots_ok and (w.page_query[p] or hs.robots[ph[p]] == HostRobots.MISSING):
                continue
            used[p] = True
            out.append(p)
        return np.asarray(out, dtype=np.int64)

    def stable_target(n: int) -> I32:
        return stable_pages[rng.integers(0, len(stable_pages), size=n)].astype(np.int32)

    # Static from day 1: redirect chains (2-3 hops), loops, a > 5 hop chain, meta refresh,
    # header canonicals, noindex and plain-text pages.
    for _ in range(max(4, p_n // 1500)):
        chain = take(int(rng.integers(2, 4)))
        if len(chain) == 0:
            break
        codes = rng.choice(np.asarray(State.REDIRECTS, dtype=np.int8), size=len(chain))
        state[chain, :] = codes[:, None]
        aux[chain[:-1]] = chain[1:]
        aux[chain[-1]] = stable_target(1)[0]
        thin[chain] = True
    for _ in range(max(2, p_n // 8000)):
        pair = take(2)
        if len(pair) < 2:
            break
        state[pair, :] = State.R302
        aux[pair[0]], aux[pair[1]] = pair[1], pair[0]
        thin[pair] = True
    long_chain = take(7)
    if len(long_chain) == 7:
        state[long_chain, :] = State.R301
        aux[long_chain[:-1]] = long_chain[1:]
        aux[long_chain[-1]] = stable_target(1)[0]
        thin[long_chain] = True
    meta = take(max(4, p_n // 800))
    state[meta, :] = State.META_REFRESH
    aux[meta] = stable_target(len(meta))
    thin[meta] = True
    hc = take(max(4, p_n // 800))
    state[hc, :] = State.CANON_OTHER_HEADER
    aux[hc] = same_host_target[ph[hc]]
    state[take(max(4, p_n // 800)), :] = State.NOINDEX_META
    state[take(max(2, p_n // 2000)), :] = State.TEXT_PLAIN

    # Day-by-day changes: each kind hits a few pages each day 2..N; some revert later so
    # lost links come back as new.
    per = max(6, round(p_n * 0.0015))
    simple = (State.NOT_FOUND, State.GONE, State.ERR_500, State.ERR_503, State.RESET,
              State.TRUNCATED, State.NOINDEX_META, State.NOINDEX_HEADER, State.TEXT_PLAIN,
              State.PDF)
    for d in range(2, d_n + 1):
        changed: list[I64] = []
        for code in simple:
            pages = take(per)
            state[pages, d:] = code
            changed.append(pages)
        for code in (State.R301, State.R302):
            pages = take(per)
            state[pages, d:] = code
            aux[pages] = np.where(rng.random(len(pages)) < 0.7, same_host_target[ph[pages]],
                                  stable_target(len(pages)))
            changed.append(pages)
        if len(dead):
            pages = take(per)  # redirect to a page that is 404 every day
            state[pages, d:] = State.R301
            aux[pages] = dead[rng.integers(0, len(dead), size=len(pages))]
            changed.append(pages)
        for _ in range(max(3, per // 2)):  # redirect loop between two pages
            pair = take(2)
            if len(pair) < 2:
                break
            state[pair, d:] = State.R302
            aux[pair[0]], aux[pair[1]] = pair[1], pair[0]
            changed.append(pair)
        pages = take(per)
        state[pages, d:] = State.CANON_OTHER
        aux[pages] = same_host_target[ph[pages]]
        changed.append(pages)
        pages = take(per, robots_ok=True)  # rule added to robots.txt that day
        disallow[pages, d:] = True
        changed.append(pages)
        pages = take(max(2, per // 4), robots_ok=True)  # both at once: robots wins
        disallow[pages, d:] = True
        state[pages, d:] = State.NOT_FOUND
        changed.append(pages)
        if d < d_n:
            for pages in changed:
                back = pages[rng.random(len(pages)) < 0.35]
                for p in back.tolist():
                    r = d + 1 if rng.random() < 0.6 else int(rng.integers(d + 1, d_n + 1))
                    state[p, r:] = State.OK
                    disallow[p, r:] = False
    w.state = state
    w.aux = aux
    w.disallow = disallow
    kind = kind.copy()
    kind[thin] = PageKind.THIN
    w.page_kind = kind

    flags = np.zeros(p_n, dtype=np.int8)
    fr = rng.random(p_n)
    flags[fr < 0.40] |= 1
    flags[(fr >= 0.40) & (fr < 0.43)] |= 2
    flags[hc] &= ~np.int8(3)
    nr = rng.random(p_n)
    flags[nr < 0.02] |= 4
    flags[(nr >= 0.02) & (nr < 0.03)] |= 8
    flags[(rng.random(p_n) < 0.04) & (kind == PageKind.NORMAL)] |= 16
    w.page_flags = flags
    big = np.zeros(p_n, dtype=np.int32)
    is_big = (rng.random(p_n) < 0.3) & ((kind == PageKind.NORMAL) | (kind == PageKind.HOME))
    big[is_big] = rng.integers(50_000, 150_000, size=int(is_big.sum()))
    w.page_big = big


# --- links ----------------------------------------------------------------------------------

class _Rows:
    """Column lists collected per link group, concatenated once at the end."""

    COLS = ("src", "dst", "kind", "anchor", "alt", "img", "rel", "slot", "style", "count",
            "pre", "post", "hreflang", "birth")

    def __init__(self) -> None:
        self.cols: dict[str, list[npt.NDArray[np.int32]]] = {c: [] for c in self.COLS}

    def add(self, src: npt.ArrayLike, dst: npt.ArrayLike, **kw: npt.ArrayLike) -> None:
        s = np.asarray(src, dtype=np.int32)
        n = len(s)
        defaults = {"kind": Kind.ANCHOR, "anchor": 0, "alt": -1, "img": -1, "rel": 0,
                    "slot": Slot.ARTICLE, "style": Style.ABS, "count": 1, "pre": 0, "post": 0,
                    "hreflang": -1, "birth": 1}
        self.cols["src"].append(s)
        self.cols["dst"].append(np.broadcast_to(np.asarray(dst, dtype=np.int32), (n,)))
        for c, v in defaults.items():
            self.cols[c].append(np.broadcast_to(np.asarray(kw.get(c, v), dtype=np.int32), (n,)))

    def concat(self) -> dict[str, npt.NDArray[np.int64]]:
        return {c: np.concatenate(v).astype(np.int64) for c, v in self.cols.items()}


def _power_law_ranks(rng: np.random.Generator, n_items: int, size: int, a: float) -> I64:
    ranks = np.arange(1, n_items + 1, dtype=np.float64)
    cdf = np.cumsum(ranks ** -a)
    cdf /= cdf[-1]
    return np.searchsorted(cdf, rng.random(size)).astype(np.int64)


def _by_lang(w: World, table: dict[str, I32], lang_idx: I64, pick: npt.NDArray[np.float64],
             ) -> I64:
    out = np.zeros(len(lang_idx), dtype=np.int64)
    for li, lg in enumerate(names.LANGS):
        m = lang_idx == li
        ids = table[lg]
        out[m] = ids[(pick[m] * len(ids)).astype(np.int64) % len(ids)]
    return out


def _content(w: World, rng: np.random.Generator, rows: _Rows, src: I64, birth: int,
             popular: I64, dead: I64, host_lang: I64) -> None:
    """Editorial links of normal pages: power-law external targets, internal, broken."""
    n = len(src)
    hs = w.hosts
    ph = w.page_host.astype(np.int64)
    start = hs.page_start
    nn = w._n_norm  # type: ignore[attr-defined]
    r = rng.random(n)
    dst = popular[_power_law_ranks(rng, len(popular), n, 1.05)]
    internal = r < 0.3
    sh = ph[src[internal]]
    dst[internal] = start[sh] + (rng.random(int(internal.sum())) * nn[sh]).astype(np.int64)
    broken = (r >= 0.3) & (r < 0.33)
    if len(dead):
        dst[broken] = dead[rng.integers(0, len(dead), size=int(broken.sum()))]
    lg = host_lang[ph[src]]
    a = rng.random(n)
    anchor = _by_lang(w, w._phrase_ids, lg, rng.random(n))  # type: ignore[attr-defined]
    gen = (a >= 0.45) & (a < 0.6)
    anchor[gen] = _by_lang(w, w._generic_ids, lg[gen], rng.random(int(gen.sum())))  # type: ignore[attr-defined]
    br = (a >= 0.6) & (a < 0.75)
    anchor[br] = w._brand_ids[ph[dst[br]]]  # type: ignore[attr-defined]
    ut = (a >= 0.75) & (a < 0.85)
    anchor[ut] = w._urltext_ids[ph[dst[ut]]]  # type: ignore[attr-defined]
    image = a >= 0.85
    kind = np.where(image, Kind.IMAGE, Kind.ANCHOR)
    anchor[image & (rng.random(n) < 0.8)] = 0
    alt = np.full(n, -1, dtype=np.int64)
    alt[image] = _by_lang(w, w._phrase_ids, lg[image], rng.random(int(image.sum())))  # type: ignore[attr-defined]
    alt[image & (rng.random(n) < 0.15)] = 0
    img = np.full(n, -1, dtype=np.int64)
    base = w._img_next  # type: ignore[attr-defined]
    img[image] = base + np.arange(int(image.sum()))
    w._img_next = base + int(image.sum())  # type: ignore[attr-defined]
    text_slots = np.asarray([Slot.ARTICLE, Slot.SECTION, Slot.ASIDE, Slot.BLOCKQUOTE,
                             Slot.TABLE, Slot.DETAILS, Slot.MAIN, Slot.MORE])
    slot = text_slots[rng.choice(len(text_slots), size=n,
                                 p=np.asarray([40, 14, 10, 6, 6, 5, 9, 10]) / 100.0)]
    img_slots = np.asarray([Slot.FIGURE, Slot.ARTICLE, Slot.ASIDE])
    slot[image] = img_slots[rng.choice(3, size=int(image.sum()), p=[0.65, 0.25, 0.1])]
    rr = rng.random(n)
    rel = np.zeros(n, dtype=np.int64)
    rel[rr < 0.08] = 1
    ugc = (rr >= 0.08) & (rr < 0.11)
    rel[ugc] = 2 | np.where(rng.random(int(ugc.sum())) < 0.5, 1, 0)
    rel[(rr >= 0.11) & (rr < 0.14)] = 4
    style_w = np.asarray([40, 15, 12, 5, 4, 4, 4, 5, 4, 3, 2, 2], dtype=np.float64)
    style = rng.choice(len(style_w), size=n, p=style_w / style_w.sum())
    count = np.ones(n, dtype=np.int64)
    cr = rng.random(n)
    count[cr < 0.07] = 2
    count[cr < 0.02] = 3
    lst = np.isin(slot, list((Slot.ASIDE,)))
    pre = _by_lang(w, w._snippet_ids, lg, rng.random(n))  # type: ignore[attr-defined]
    post = _by_lang(w, w._snippet_ids, lg, rng.random(n))  # type: ignore[attr-defined]
    pre[(rng.random(n) < 0.15) | lst | (slot == Slot.FIGURE)] = 0
    post[(rng.random(n) < 0.15) | lst] = 0
    rows.add(src, dst, kind=kind, anchor=anchor, alt=alt, img=img, rel=rel, slot=slot,
             style=style, count=count, pre=pre, post=post, birth=birth)


def _build_links(w: World) -> None:
    rng = w.rng(5)
    hs = w.hosts
    p_n, h_n = w.n_pages, len(hs.key)
    ph = w.page_host.astype(np.int64)
    kind = w.page_kind
    start = hs.page_start
    nn = w._n_norm  # type: ignore[attr-defined]
    host_lang = np.asarray([names.LANGS.index(lg) for lg in hs.lang], dtype=np.int64)
    w._img_next = 0  # type: ignore[attr-defined]
    rows = _Rows()
    farm_page = hs.is_farm[ph]
    full = ((kind == PageKind.HOME) | (kind == PageKind.NORMAL) | (kind == PageKind.PRIVATE))
    pages_full = np.flatnonzero(full).astype(np.int64)
    home = start[:-1].astype(np.int64)

    # Header: logo -> home (brand), nav -> home + first pages of the host.
    rows.add(pages_full, home[ph[pages_full]], anchor=w._brand_ids[ph[pages_full]],  # type: ignore[attr-defined]
             slot=Slot.LOGO, style=np.where(rng.random(len(pages_full)) < 0.7,
                                            Style.ROOT, Style.ABS))
    nav_by_lang = np.asarray([w._nav_ids[lg][:4] for lg in names.LANGS])  # type: ignore[attr-defined]
    for j in range(4):
        src = pages_full[nn[ph[pages_full]] > j]
        hh = ph[src]
        nav = nav_by_lang[host_lang, j]
        rows.add(src, start[hh] + j, anchor=nav[hh], slot=Slot.NAV,
                 style=np.where(rng.random(len(src)) < 0.8, Style.ROOT, Style.ABS))
    # Sitemap on each home page: every other page of the host, so all are reachable.
    sm = np.flatnonzero((kind != PageKind.HOME) & (kind != PageKind.DEAD)).astype(np.int64)
    rows.add(home[ph[sm]], sm, anchor=w._title_ids[sm], slot=Slot.SITEMAP,  # type: ignore[attr-defined]
             style=np.where(rng.random(len(sm)) < 0.7, Style.REL, Style.ROOT))

    # Editorial links: power-law popularity over non-farm pages, homes favoured.
    pop_ok = np.flatnonzero((kind != PageKind.DEAD) & ~farm_page).astype(np.int64)
    boost = np.where(kind[pop_ok] == PageKind.HOME, 0.1, 1.0)
    popular = pop_ok[np.argsort(rng.random(len(pop_ok)) * boost, kind="stable")]
    w._popular = popular  # type: ignore[attr-defined]
    dead = np.flatnonzero(kind == PageKind.DEAD).astype(np.int64)
    editorial = pages_full[~farm_page[pages_full] & (kind[pages_full] != PageKind.PRIVATE)]
    rich = rng.random(len(editorial)) < 0.3
    n_each = rng.poisson(np.where(rich, 24.0, 8.0))
    _content(w, rng, rows, np.repeat(editorial, n_each), 1, popular, dead, host_lang)

    # Link farm: thin pages, many exact-match anchors to the money site, plus interlinks.
    farm_src = pages_full[farm_page[pages_full]]
    if len(farm_src):
        k = rng.integers(40, 71, size=len(farm_src))
        src = np.repeat(farm_src, k)
        n = len(src)
        to_money = rng.random(n) < 0.55
        mh = w.money_host
        money_pages = np.arange(start[mh], start[mh] + nn[mh], dtype=np.int64)
        dst = farm_src[rng.integers(0, len(farm_src), size=n)]
        dst[to_money] = np.where(rng.random(int(to_money.sum())) < 0.6, money_pages[0],
                                 money_pages[rng.integers(0, len(money_pages),
                                                          size=int(to_money.sum()))])
        anchor = w._phrase_ids["en"][rng.integers(0, 400, size=n)]  # type: ignore[attr-defined]
        anchor[to_money] = w._farm_ids[rng.integers(0, len(w._farm_ids), size=int(to_money.sum()))]  # type: ignore[attr-defined]
        pre = w._snippet_ids["en"][rng.integers(0, 300, size=n)]  # type: ignore[attr-defined]
        rows.add(src, dst, anchor=anchor, slot=Slot.ARTICLE, pre=pre)

    # Footer: 1-2 sitewide links per host (same on every page of the host).
    nf = 1 + (rng.random(h_n) < 0.5).astype(np.int64)
    fh = np.repeat(np.arange(h_n, dtype=np.int64), nf)
    f_dst = popular[_power_law_ranks(rng, len(popular), len(fh), 1.2)]
    f_rel = np.where(rng.random(len(fh)) < 0.2, 4, np.where(rng.random(len(fh)) < 0.1, 1, 0))
    f_pre = w._snippet_ids["en"][rng.integers(0, 300, size=len(fh))]  # type: ignore[attr-defined]
    foot_src = editorial
    order = np.argsort(ph[foot_src], kind="stable")
    fs = foot_src[order]
    bounds = np.searchsorted(ph[fs], np.arange(h_n + 1))
    per_host = bounds[1:] - bounds[:-1]
    # For each sitewide footer link: repeat it over the pages of its host.
    reps = per_host[fh]
    idx = np.repeat(np.arange(len(fh)), reps)
    offset = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
    src = fs[bounds[fh][idx] + offset]
    rows.add(src, f_dst[idx], anchor=w._brand_ids[ph[f_dst[idx]]], rel=f_rel[idx],  # type: ignore[attr-defined]
             slot=Slot.FOOTER, pre=f_pre[idx])

    # hreflang alternates in <head>.
    alt_src = editorial[(rng.random(len(editorial)) < 0.03) & (kind[editorial] == PageKind.NORMAL)]
    same = rng.random(len(alt_src)) < 0.5
    a_dst = popular[rng.integers(0, len(popular), size=len(alt_src))]
    a_dst[same] = start[ph[alt_src[same]]] + (rng.random(int(same.sum()))
                                              * nn[ph[alt_src[same]]]).astype(np.int64)
    rows.add(alt_src, a_dst, kind=Kind.ALTERNATE, slot=Slot.HEAD,
             hreflang=rng.integers(0, len(HREFLANGS), size=len(alt_src)))

    # Links added on later days.
    changeable = editorial[(kind[editorial] == PageKind.NORMAL)]
    for d in range(2, w.days + 1):
        n_add = max(12, round(p_n * 0.004))
        _content(w, rng, rows, changeable[rng.integers(0, len(changeable), size=n_add)], d,
                 popular, dead, host_lang)

    c = rows.concat()
    _fix_styles(w, rng, c)
    # One row per identity (src, dst, kind, anchor, image): repeats are `count`, not rows.
    n = len(c["src"])
    order_key = np.arange(n)
    srt = np.lexsort((order_key, c["img"], c["anchor"], c["kind"], c["dst"], c["src"]))
    same_prev = np.zeros(n, dtype=np.bool_)
    if n > 1:
        a, b = srt[1:], srt[:-1]
        same_prev[1:] = ((c["src"][a] == c["src"][b]) & (c["dst"][a] == c["dst"][b])
                         & (c["kind"][a] == c["kind"][b]) & (c["anchor"][a] == c["anchor"][b])
                         & (c["img"][a] == c["img"][b]))
    keep = np.sort(srt[~same_prev])
    # Alternates: one per (src, dst), whatever the hreflang.
    for col in c:
        c[col] = c[col][keep]
    srt = np.argsort(c["src"], kind="stable")
    for col in c:
        c[col] = c[col][srt]
    n = len(c["src"])
    death = np.full(n, w.days + 1, dtype=np.int8)
    reborn = np.zeros(n, dtype=np.int8)
    removable = np.flatnonzero((c["birth"] == 1) & (c["slot"] != Slot.LOGO)
                               & (c["slot"] != Slot.NAV) & (c["slot"] != Slot.SITEMAP)
                               & (c["slot"] != Slot.FOOTER) & (kind[c["src"]] == PageKind.NORMAL)
                               & ~farm_page[c["src"]])
    n_rem = max(12, round(p_n * 0.004))
    chosen = rng.permutation(removable)[: n_rem * (w.days - 1)]
    for i, d in enumerate(range(2, w.days + 1)):
        part = chosen[i * n_rem:(i + 1) * n_rem]
        death[part] = d
        if d < w.days:
            back = part[rng.random(len(part)) < 0.3]
            reborn[back] = d + 1
    w.l_src = c["src"].astype(np.int32)
    w.l_dst = c["dst"].astype(np.int32)
    w.l_kind = c["kind"].astype(np.int8)
    w.l_anchor = c["anchor"].astype(np.int32)
    w.l_alt = c["alt"].astype(np.int32)
    w.l_img = c["img"].astype(np.int32)
    w.l_rel = c["rel"].astype(np.int8)
    w.l_slot = c["slot"].astype(np.int8)
    w.l_style = c["style"].astype(np.int8)
    w.l_count = c["count"].astype(np.int8)
    w.l_pre = c["pre"].astype(np.int32)
    w.l_post = c["post"].astype(np.int32)
    w.l_hreflang = c["hreflang"].astype(np.int8)
    w.l_birth = c["birth"].astype(np.int8)
    w.l_death = death
    w.l_reborn = reborn
    lst = np.zeros(p_n + 1, dtype=np.int64)
    np.cumsum(np.bincount(w.l_src, minlength=p_n), out=lst[1:])
    w.l_start = lst


def _fix_styles(w: World, rng: np.random.Generator, c: dict[str, npt.NDArray[np.int64]]) -> None:
    """Keep each href style compatible with its target (relative only within the host...)."""
    ph = w.page_host.astype(np.int64)
    hs = w.hosts
    style = c["style"]
    same_host = ph[c["src"]] == ph[c["dst"]]
    style[~same_host & ((style == Style.ROOT) | (style == Style.REL))] = Style.ABS
    # PCT rewrites the section directory, which home and /private/ paths do not have.
    no_section = np.isin(w.page_kind[c["dst"]], (PageKind.HOME, PageKind.PRIVATE))
    style[no_section & (style == Style.PCT)] = Style.ABS
    idn = np.asarray([n != k for n, k in zip(hs.name, hs.key, strict=True)], dtype=np.bool_)
    dst_idn = idn[ph[c["dst"]]]
    style[~dst_idn & (style == Style.UNI)] = Style.ABS
    flip = dst_idn & (style == Style.ABS) & (rng.random(len(style)) < 0.5)
    style[flip] = Style.UNI
    style[c["kind"] == Kind.ALTERNATE] = Style.ABS
