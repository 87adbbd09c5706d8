"""Crawl benchmark: `inlink crawl` of the synthetic web over loopback vs raw aiohttp GETs.

Run as `python -m bench.crawl_bench` or through `inlink bench crawl`; see docs/crawl.md.
The world is served by a separate process (responses pre-rendered, so the server costs little
CPU per request); the crawler's CPU figures are its own, the server's are reported apart.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from inlink.index.crawljob import CrawlOptions, crawl
from inlink.index.store import Store
from inlink.index.store import run as run_sql
from inlink.settings import Settings
from inlink.sources.crawl import extract_mode_for
from inlink.sources.fetcher import OverrideResolver, load_resolve_file
from inlink.sources.frontier import split_key

_SERVER = """
import sys
from pathlib import Path
from inlink.world import World, run_world_server
w = World(seed=int(sys.argv[1]), hosts=int(sys.argv[2]))
run_world_server(w, 1, resolve_out=Path(sys.argv[3]), duration=float(sys.argv[4]),
                 slow_delay=0.3, trickle_max=1.0, idle_timeout=5.0, max_connections=4096,
                 cache_bytes=int(sys.argv[5]), prerender=True)
"""
CACHE_BYTES = 1 << 30     # the quick world is ~0.1 GB of pages, the full one ~0.7 GB


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _serve(seed: int, hosts: int, folder: Path, duration: float) -> tuple[subprocess.Popen[bytes],
                                                                         Path]:
    resolve = folder / "resolve.txt"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(seed), str(hosts), str(resolve),
                             str(duration), str(CACHE_BYTES)], env=env)
    deadline = time.monotonic() + 600
    while not resolve.exists() or ":" not in resolve.read_text().split("\n", 2)[-1]:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("world server did not start")
        time.sleep(0.1)
    time.sleep(0.2)
    return proc, resolve


def _process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of another process so far; None where /proc is missing."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _fetched_urls(db: Path) -> list[str]:
    """What the crawl requested: every page fetch (redirect hops included) and one robots.txt
    per origin it tried, interleaved host by host (the crawler's round-robin order)."""
    with Store(db) as store:
        rows = store.write(lambda conn: run_sql(
            conn, "SELECT url_key, url, hops IS NOT NULL FROM crawl_frontier "
                  "WHERE done ORDER BY item_seq"))
    by_origin: dict[str, list[str]] = {}
    for key, url, fetched in rows:
        origin = split_key(key)[0]
        urls = by_origin.setdefault(origin, [origin + "/robots.txt"])
        if fetched:
            urls.append(url)
    out: list[str] = []
    for i in range(max((len(u) for u in by_origin.values()), default=0)):
        out.extend(u[i] for u in by_origin.values() if i < len(u))
    return out


async def _raw_gets(urls: list[str], resolve: dict[str, tuple[str, int | None]],
                    options: CrawlOptions) -> tuple[int, float, float]:
    """Plain aiohttp GETs of `urls` in order, `options.concurrency` at a time, with the
    crawler's connector and session settings; the body is read, nothing else is done (no
    robots.txt logic, no per-host delay or limit, no extraction, no index).
    Returns (responses, seconds, cpu)."""
    lim = options.fetch_limits()
    connector = aiohttp.TCPConnector(resolver=OverrideResolver(resolve, dns=False),
                                     limit=options.concurrency, limit_per_host=0,
                                     use_dns_cache=False, ssl=True)
    timeout = aiohttp.ClientTimeout(total=lim.total_timeout, sock_connect=lim.connect_timeout,
                                    connect=lim.connect_timeout, sock_read=lim.read_timeout)
    queue = list(reversed(urls))
    done = 0
    async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": options.user_agent, "Accept-Encoding": "gzip, deflate",
                     "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"}) as session:
        async def worker() -> None:
            nonlocal done
            while queue:
                url = queue.pop()
                try:
                    async with session.get(url, allow_redirects=False) as resp:
                        await resp.read()
                    done += 1
                except (aiohttp.ClientError, TimeoutError):
                    pass

        cpu0, t0 = _cpu(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(options.concurrency)))
        return done, time.perf_counter() - t0, _cpu() - cpu0


def run(quick: bool = False, **kw: Any) -> dict[str, Any]:
    """Crawl a served world with politeness on; report pages/s, CPU per page and a raw-GET
    reference against the same server in the same run."""
    from inlink.world import World

    seed = int(kw.get("seed", 1))
    hosts = int(kw.get("hosts", 300 if quick else 2000))
    modes = kw.get("modes") or ["process", "thread", "inline"]
    delay = float(kw.get("delay", 0.02))
    concurrency = int(kw.get("concurrency", 256))
    world = World(seed=seed, hosts=hosts)
    result: dict[str, Any] = {"hosts": hosts, "pages_in_world": world.n_pages, "delay": delay,
                              "concurrency": concurrency, "cores": os.cpu_count(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server, resolve_file = _serve(seed, hosts, folder, duration=900.0)
        try:
            resolve = load_resolve_file(resolve_file)
            options = CrawlOptions(resolve=resolve, dns=False, delay=delay,
                                   max_crawl_delay=0.1, per_host=2, scope="any",
                                   concurrency=concurrency, timeout=3.0, read_timeout=2.0,
                                   country=False, batch_size=2000)
            urls: list[str] = []
            for mode in modes:
                db = folder / f"crawl-{mode}.duckdb"
                cpu0, t0, server0 = _cpu(), time.perf_counter(), _process_cpu(server.pid)
                with Store(db) as store:
                    summary = crawl(store, world.seeds(), replace(options, extract_mode=mode),
                                    Settings(db=db, as_of=world.date_of(1)))
                    links = store.counts()["links"]
                secs = time.perf_counter() - t0
                cpu = _cpu() - cpu0
                server1 = _process_cpu(server.pid)
                urls = urls or _fetched_urls(db)
                result["runs"].append({
                    "mode": mode, "pages": summary.pages, "requests": len(urls),
                    "seconds": secs, "pages_per_s": summary.pages / secs, "links": links,
                    "mb": summary.bytes / 1e6, "mb_per_s": summary.bytes / 1e6 / secs,
                    "cpu_ms_per_page": 1000 * cpu / max(summary.pages, 1),
                    "server_cpu_ms_per_request": None if server0 is None or server1 is None
                    else 1000 * (server1 - server0) / max(len(urls), 1),
                    "failed": sum(summary.pages_failed.values()),
                    "robots_disallowed": summary.robots_disallowed})
            server0 = _process_cpu(server.pid)
            done, secs, cpu = asyncio.run(_raw_gets(urls, resolve, options))
            server1 = _process_cpu(server.pid)
            result["raw_aiohttp"] = {
                "requests": len(urls), "responses": done, "seconds": secs,
                "requests_per_s": len(urls) / secs,
                "cpu_ms_per_request": 1000 * cpu / max(len(urls), 1),
                "server_cpu_ms_per_request": None if server0 is None or server1 is None
                else 1000 * (server1 - server0) / max(len(urls), 1)}
        finally:
            server.terminate()
            server.wait(30)
    return result


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def to_markdown(result: dict[str, Any]) -> str:
    """The result as a markdown table."""
    raw = result["raw_aiohttp"]
    lines = [
        f"Synthetic web: {result['hosts']} hosts, {result['pages_in_world']} pages, served by "
        f"a separate process on loopback (responses pre-rendered); per-host delay "
        f"{result['delay']} s (Crawl-delay capped at 0.1 s), per-host 2, concurrency "
        f"{result['concurrency']}, {result['cores']} cores. Crawler CPU includes extraction "
        "workers and the index writer; the server's CPU is apart.",
        "",
        "| run | pages | requests | seconds | pages/s | MB/s | crawler CPU ms/page "
        "| server CPU ms/request | links stored |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["runs"]:
        lines.append(f"| inlink crawl (extract: {r['mode']}) | {r['pages']} | {r['requests']} | "
                     f"{r['seconds']:.1f} | {r['pages_per_s']:.0f} | {r['mb_per_s']:.1f} | "
                     f"{r['cpu_ms_per_page']:.2f} | {_ms(r['server_cpu_ms_per_request'])} | "
                     f"{r['links']} |")
    lines.append(f"| raw aiohttp GET of the same requests (reference) | - | {raw['requests']} | "
                 f"{raw['seconds']:.1f} | {raw['requests_per_s']:.0f} req/s | - | "
                 f"{raw['cpu_ms_per_request']:.2f} per request | "
                 f"{_ms(raw['server_cpu_ms_per_request'])} | - |")
    default = extract_mode_for("auto", result["cores"])
    mine = next((r for r in result["runs"] if r["mode"] == default), None)
    if mine is not None:
        verdict = "met" if mine["pages_per_s"] >= 1000 else "missed"
        share = mine["pages_per_s"] / raw["requests_per_s"]
        lines += ["", f"The default (`extract_mode=auto`) on {result['cores']} cores is "
                      f"`{default}`: **{mine['pages_per_s']:.0f} pages/s** (target >= 1,000 "
                      f"with politeness on: {verdict}); {share:.0%} of the raw GET rate."]
    lines += [
        "",
        "Reference: the URLs the first crawl requested (its pages and redirect hops, plus one "
        "robots.txt per origin), interleaved host by host like the crawler's round-robin, "
        f"{result['concurrency']} at a time, with the crawler's connector, session settings "
        "and timeouts; each body is read and dropped. No robots.txt rules, no per-host delay "
        "or limit, no extraction, no index: the HTTP client's ceiling against this server.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    chosen = next((a.split("=", 1)[1].split(",") for a in sys.argv if a.startswith("--modes=")),
                  None)
    print(to_markdown(run(quick="--quick" in sys.argv, modes=chosen)))
