"""Extraction benchmark: inlink.extract() vs a bare Lexbor parse vs BeautifulSoup, one core.

Run as `python -m bench.extract_bench` or through `inlink bench extract`; see docs/extract.md.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser

from inlink.extract import extract, use_native

#: Real HTML shipped on the build machines (rustdoc output of the Rust toolchain docs).
REAL_HTML_ROOTS = (
    Path.home() / ".rustup/toolchains",
    Path("/usr/share/doc"),
)
SEED = 20240601
_WORDS = [
    "backlink", "index", "crawler", "anchor", "domain", "rank", "page", "link", "search",
    "engine", "optimisation", "content", "market", "report", "analysis", "guide", "review",
    "news", "blog", "article", "product", "service", "price", "best", "how", "why", "the", "of",
    "and", "to", "in", "for", "on", "with", "by", "at", "from", "about",
]


@dataclass(frozen=True)
class Page:
    url: str
    body: bytes
    source: str  # "real" or "synthetic"


def find_real_pages(limit: int, min_size: int = 20_000, max_size: int = 400_000) -> list[Page]:
    """Up to `limit` real HTML files found on this machine, a deterministic spread by path."""
    found: list[Path] = []
    for root in REAL_HTML_ROOTS:
        if not root.exists():
            continue
        for path in sorted(root.rglob("*.html")):
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if min_size <= size <= max_size:
                found.append(path)
            if len(found) >= limit * 50:
                break
    if not found:
        return []
    step = max(1, len(found) // limit)
    pages = []
    for path in found[::step][:limit]:
        rel = path.as_posix().lstrip("/")
        pages.append(Page(f"https://docs.example.org/{rel}", path.read_bytes(), "real"))
    return pages


def synthetic_page(rng: random.Random, index: int) -> Page:
    """A 50-150 KB page shaped like a crawled article page: nav, article, sidebar, footer."""
    host = f"site{index % 97}.example.com"
    target = rng.randint(50_000, 150_000)

    def words(n: int) -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(n))

    def href() -> str:
        roll = rng.random()
        if roll < 0.45:
            return f"/{rng.choice(_WORDS)}/{rng.randint(1, 5000)}.html"
        if roll < 0.6:
            return f"{rng.choice(_WORDS)}-{rng.randint(1, 99)}?page={rng.randint(1, 9)}"
        if roll < 0.65:
            return f"#section-{rng.randint(1, 30)}"
        tld = rng.choice(["com", "org", "co.uk", "de", "net"])
        return f"https://www.{rng.choice(_WORDS)}{rng.randint(1, 3000)}.{tld}/{rng.choice(_WORDS)}/"

    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{words(8)}</title>",
        f'<link rel="canonical" href="https://{host}/post/{index}">',
        '<link rel="stylesheet" href="/static/site.css"><script src="/static/app.js"></script>',
        "<style>" + "body{margin:0} .nav a{color:#333} " * 40 + "</style></head><body>",
        '<header><nav class="nav"><ul>',
    ]
    parts += [f'<li><a href="{href()}">{words(2)}</a></li>' for _ in range(rng.randint(30, 80))]
    parts.append("</ul></nav></header><main><article>")
    size = sum(map(len, parts))
    while size < target * 0.8:
        chunk = [f"<h2>{words(5)}</h2><p>"]
        for _ in range(rng.randint(3, 8)):
            chunk.append(words(rng.randint(8, 30)) + " ")
            rel = rng.choice(["", "", "", ' rel="nofollow"', ' rel="ugc"',
                              ' rel="sponsored noopener"'])
            if rng.random() < 0.15:
                chunk.append(f'<a href="{href()}"{rel}><img src="/img/{rng.randint(1, 999)}.jpg" '
                             f'alt="{words(3)}" width="300" height="200"></a> ')
            else:
                anchor = words(rng.randint(1, 5))
                chunk.append(f'<a href="{href()}"{rel} class="inline">{anchor}</a> ')
        chunk.append(words(12) + "</p>")
        text = "".join(chunk)
        parts.append(text)
        size += len(text)
    parts.append('</article><aside><ul>')
    parts += [f'<li><a href="{href()}">{words(3)}</a></li>' for _ in range(rng.randint(20, 60))]
    parts.append("</ul></aside></main><footer><p>")
    parts += [f'<a href="{href()}">{words(2)}</a> | ' for _ in range(rng.randint(20, 40))]
    parts.append(f"</p><p>{words(30)}</p></footer>")
    parts.append('<script>window.dataLayer=[];' + "x=1;" * 500 + "</script></body></html>")
    return Page(f"https://{host}/post/{index}", "".join(parts).encode(), "synthetic")


def build_corpus(pages: int | None) -> list[Page]:
    """Half real HTML (when this machine has some), half synthetic; fixed seed."""
    total = pages or 400
    real = find_real_pages(total // 2)
    rng = random.Random(SEED)
    synthetic = [synthetic_page(rng, i) for i in range(total - len(real))]
    return real + synthetic


def _inlink(page: Page) -> int:
    # links/s counts <a>/<area> occurrences (as the baselines do), not distinct links.
    facts = extract(page.body, page.url, {"Content-Type": "text/html"}).facts
    return facts.internal_links + facts.external_links


def _inlink_python(page: Page) -> int:
    # The same with the pure-Python walk (the reference the native walk must match).
    facts = extract(page.body, page.url, {"Content-Type": "text/html"}, native=False).facts
    return facts.internal_links + facts.external_links


def _bare(page: Page) -> int:
    # "Bare parse": Lexbor parse of the bytes, the a[href] selection, and the attribute dict
    # of every match; no decoding checks, resolution, text or dedup.
    tree = LexborHTMLParser(page.body)
    count = 0
    for node in tree.css("a[href]"):
        node.attributes  # noqa: B018 - touching the attributes is part of the baseline
        count += 1
    return count


def _soup(page: Page) -> int:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page.body, "lxml")
    # The same <a href> set, resolved (urljoin), one entry per occurrence like links/s above.
    hrefs = [urljoin(page.url, str(a["href"])) for a in soup.find_all("a", href=True)]
    return len(hrefs)


@dataclass
class _Tally:
    """One extractor's running totals across the interleaved rounds."""

    fn: Callable[[Page], int]
    pages: list[Page]
    budget: float  # CPU seconds per round
    pos: int = 0
    done_pages: int = 0
    done_bytes: int = 0
    links: int = 0
    cpu: float = 0.0
    wall: float = 0.0

    def step(self) -> None:
        page = self.pages[self.pos]
        self.links += self.fn(page)
        self.done_pages += 1
        self.done_bytes += len(page.body)
        self.pos = (self.pos + 1) % len(self.pages)

    def run_for(self, seconds: float, *, to_pass_end: bool = False) -> None:
        start, wall = time.process_time(), time.perf_counter()
        while True:
            self.step()
            if to_pass_end:
                if self.pos == 0:
                    break
            elif time.process_time() - start >= seconds:
                break
        self.cpu += time.process_time() - start
        self.wall += time.perf_counter() - wall


def _time_interleaved(tallies: dict[str, _Tally], rounds: int) -> dict[str, dict[str, float]]:
    """Run the extractors in turns (`rounds` slices each), then finish each one's current
    pass over its pages, so every extractor is timed on whole passes over the same pages.

    Rates are per second of this process's CPU time (`time.process_time`): on a shared
    machine, wall time also counts the time other processes hold the pinned core. Taking
    turns spreads whatever else the machine does evenly over the extractors, where timing
    them one after the other let a busy minute land on one of them (the ratios swung by
    up to 2x). Wall time is reported too (`wall_seconds`).
    """
    for _ in range(rounds):
        for tally in tallies.values():
            tally.run_for(tally.budget)
    for tally in tallies.values():
        if tally.pos:
            tally.run_for(0.0, to_pass_end=True)
    return {
        name: {
            "pages": t.done_pages, "passes": t.done_pages / len(t.pages), "seconds": t.cpu,
            "wall_seconds": t.wall, "pages_per_s": t.done_pages / t.cpu,
            "mb_per_s": t.done_bytes / t.cpu / 1e6, "links_per_s": t.links / t.cpu,
        }
        for name, t in tallies.items()
    }


def _pin_one_core() -> set[int] | None:
    if not hasattr(os, "sched_getaffinity"):
        return None
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    return before


def run(pages: int | None = None, seconds: float = 5.0, quick: bool = False) -> dict[str, Any]:
    """Benchmark the three extractors on one corpus, pinned to one core, taking turns
    (`_time_interleaved`): about `seconds` of CPU each, in 10 slices.

    quick: a smoke run (60 pages, 0.5 s per extractor) that only checks the bench works.
    """
    if quick:
        pages, seconds = pages or 60, min(seconds, 0.5)
    rounds = 2 if quick else 10
    corpus = build_corpus(pages)
    before = _pin_one_core()
    try:
        for page in corpus[:20]:  # warm caches (PSL, codecs) before timing
            _inlink(page)
            _bare(page)
        results = _time_interleaved({
            "inlink": _Tally(_inlink, corpus, seconds / rounds),
            "inlink_python_walk": _Tally(_inlink_python, corpus, seconds / rounds),
            "bare_lexbor": _Tally(_bare, corpus, seconds / rounds),
            # BeautifulSoup is ~50x slower: time a sample and extrapolate the rates.
            "beautifulsoup_lxml": _Tally(_soup, corpus[:: max(1, len(corpus) // 40)],
                                         max(1.0, seconds / 2) / rounds),
        }, rounds)
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)
    sizes = [len(p.body) for p in corpus]
    real = [p for p in corpus if p.source == "real"]
    return {
        "corpus": {
            "pages": len(corpus), "real_pages": len(real),
            "real_source": "rustdoc HTML of the local Rust toolchain" if real else None,
            "synthetic_pages": len(corpus) - len(real), "seed": SEED,
            "mean_kb": statistics.mean(sizes) / 1024, "total_mb": sum(sizes) / 1e6,
        },
        "results": results,
        "rounds": rounds,
        "ratio_inlink_vs_bare": results["inlink"]["pages_per_s"]
        / results["bare_lexbor"]["pages_per_s"],
        "ratio_inlink_vs_soup": results["inlink"]["pages_per_s"]
        / results["beautifulsoup_lxml"]["pages_per_s"],
        "native_walk": use_native(),
        "ratio_native_vs_python_walk": results["inlink"]["pages_per_s"]
        / results["inlink_python_walk"]["pages_per_s"],
        "malloc_env": {k: os.environ.get(k) for k in
                       ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")},
    }


def to_markdown(result: dict[str, Any]) -> str:
    """The benchmark result as a markdown table plus the corpus line."""
    c = result["corpus"]
    lines = [
        f"Corpus: {c['pages']} pages ({c['real_pages']} real: {c['real_source']}; "
        f"{c['synthetic_pages']} synthetic, seed {c['seed']}), mean {c['mean_kb']:.0f} KB, "
        f"{c['total_mb']:.1f} MB. One core; rates per CPU second of the process; the "
        f"extractors take turns ({result.get('rounds', 1)} slices each, whole passes over "
        "the pages).",
        "",
        "| extractor | pages/s | MB/s | links/s |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, r in result["results"].items():
        lines.append(f"| {name} | {r['pages_per_s']:,.0f} | {r['mb_per_s']:,.1f} | "
                     f"{r['links_per_s']:,.0f} |")
    lines += [
        "",
        f"inlink / bare Lexbor: {result['ratio_inlink_vs_bare']:.2f} (target >= 0.5); "
        f"inlink / BeautifulSoup: {result['ratio_inlink_vs_soup']:.1f}x (target >= 20x)",
        f"native walk in use: {result['native_walk']}; inlink / inlink with the Python walk: "
        f"{result['ratio_native_vs_python_walk']:.1f}x",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(to_markdown(run()))
