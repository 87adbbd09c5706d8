"""`inlink demo`: the one-command first run on the bundled synthetic web.

Builds a small world, serves it on loopback addresses, crawls it as of three consecutive days
into an index, ranks it after each day (so authority has a history), checks the index against
the world's own ground truth, shows what it found, creates a demo API key, serves the API on
loopback and prints ready-to-paste curl lines; the world and the API stay served until stopped.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from inlink.settings import Settings

if TYPE_CHECKING:
    from inlink.index.store import Store
    from inlink.world import World

DEMO_DB = "inlink-demo.duckdb"
DEMO_DAYS = 3
DEMO_PORT = 8000
DEMO_CREDITS = 1_000_000

#: Called once the API answers, with its base URL and the demo key (the demo's test uses it).
OnReady = Callable[[str, str], None]


def run_demo(settings: Settings, *, seed: int = 1, hosts: int = 300,
             duration: float | None = None, console: Console | None = None,
             port: int = DEMO_PORT, on_ready: OnReady | None = None) -> dict[str, int]:
    """Run the demo; returns the figures it printed (used by its test).

    `port` is where the API listens on 127.0.0.1 (0: any free port); when it is taken the
    demo says so and takes a free one instead.
    """
    from inlink.api.keys import create_key
    from inlink.index.crawljob import crawl
    from inlink.index.store import Store
    from inlink.rank import run_rank
    from inlink.sources.crawl import CrawlOptions
    from inlink.world import World, serve_in_thread

    out = console or Console(stderr=True)
    db = Path(settings.db)
    if db.exists():
        # The demo builds its index from scratch each time; never touch any other file.
        if db.name != DEMO_DB:
            from inlink.errors import InvalidInput

            raise InvalidInput("--db", f"{db} exists; the demo writes a fresh index, so point "
                                       f"--db at a new file or at {DEMO_DB}")
        db.unlink()
        Path(str(db) + ".wal").unlink(missing_ok=True)

    started = time.monotonic()
    world = World(seed=seed, hosts=hosts, days=DEMO_DAYS)
    out.print(f"[bold]synthetic web[/]: {world.n_hosts} hosts, {world.n_pages} pages "
              f"(seed {seed}); ground truth kept by the generator")
    figures: dict[str, int] = {}
    with serve_in_thread(world, 1) as served, \
            Store(db, memory_limit=settings.memory_limit) as store:
        out.print(f"serving it on {len(set(ip for ip, _ in served.resolve.values()))} loopback "
                  f"addresses, port {served.port}")
        options = CrawlOptions(resolve=served.resolve, dns=False, delay=0.05, per_host=2,
                               concurrency=96, timeout=5.0, read_timeout=3.0,
                               connect_timeout=2.0, scope="any")
        for day in range(1, DEMO_DAYS + 1):
            served.set_day(day)
            as_of = Settings.from_env(db=db, as_of=world.date_of(day))
            summary = crawl(store, world.seeds(), options, as_of)
            failed = sum(summary.pages_failed.values())
            out.print(f"day {day} ({world.date_of(day)}): crawled {summary.pages_ok} pages "
                      f"({failed} failed, {summary.robots_disallowed} disallowed by robots.txt) "
                      f"in {summary.seconds:.1f} s: {summary.new_links} new links, "
                      f"{summary.lost_links} lost")
            ranked = run_rank(store, as_of)
        out.print(f"ranked {ranked.pages} pages and {ranked.domains} domains "
                  f"in {ranked.seconds:.2f} s (once per day: authority has a history)")
        store.compact()
        figures = _report(store, world, out)
        top = _top_domain(store)
        top_url = _top_url(store, top)
        key = create_key(store, "data", DEMO_CREDITS, label="inlink demo")
        store.close()  # the API server is the index file's writer from here on

        out.print(f"\nindex: {db.resolve()}  (try: inlink --db {db} rank explain {top})")
        example = world.seeds()[0]
        host = example.split("/")[2]
        ip, world_port = served.resolve[host]
        out.print("the world stays served for your own crawls:")
        out.print(f"  curl --connect-to {host}:80:{ip}:{world_port} {example}")

        api_settings = Settings.from_env(db=db, as_of=world.date_of(DEMO_DAYS),
                                         memory_limit=settings.memory_limit)
        with _ApiServer(api_settings, port, out) as base:
            figures["api_port"] = int(base.rsplit(":", 1)[1])
            out.print(f"\n[bold]API[/] at {base} (OpenAPI: {base}/docs); demo key with "
                      f"{DEMO_CREDITS:,} credits: {key}")
            out.print("ready-to-paste requests (SE Ranking Data API):")
            for line in _curl_lines(base, key, top, top_url, world.date_of(1).isoformat()):
                out.print(f"  {line}", soft_wrap=True, highlight=False, markup=False)
            out.print(f"demo built in {time.monotonic() - started:.1f} s. " +
                      ("Ctrl-C stops." if duration is None else f"stopping after {duration:g} s"))
            if on_ready is not None:
                on_ready(base, key)
            try:
                with _sigterm_as_interrupt():
                    if duration is None:
                        while True:
                            time.sleep(3600)
                    else:
                        time.sleep(duration)
            except KeyboardInterrupt:
                out.print("stopped.")
    return figures


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """`kill PID` stops the demo as Ctrl-C does: its servers shut down, so the API's server
    file beside the index goes too (in the main thread only, where signals are handled)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _curl_lines(base: str, key: str, domain: str, url: str, since: str) -> list[str]:
    v1 = f"{base}/v1/backlinks"
    return [
        f"curl -s '{v1}/summary?apikey={key}&target={domain}&mode=domain'",
        f"curl -s '{v1}/all?apikey={key}&target={domain}&mode=domain&limit=5"
        "&order_by=inlink_rank'",
        f"curl -s '{v1}/refdomains?apikey={key}&target={domain}&mode=domain&limit=5"
        "&order_by=domain_inlink_rank'",
        f"curl -s '{v1}/history?apikey={key}&target={domain}&mode=domain&new_lost_type=lost"
        f"&date_from={since}'",
        f"curl -s '{v1}/history/count?apikey={key}&target={domain}&mode=domain"
        f"&date_from={since}'",
        f"curl -s -X POST '{v1}/metrics?apikey={key}' -d '{{\"target\": [\"{domain}\"], "
        "\"mode\": \"domain\"}'",
        f"curl -s '{v1}/authority/page/history?apikey={key}&target={url}&date_from={since}'",
        f"curl -s '{v1}/export?apikey={key}&target={domain}&mode=domain'"
        "   # then /export/status?task_id=...",
    ]


class _ApiServer:
    """uvicorn in a thread on 127.0.0.1:port (a free port when that one is taken)."""

    def __init__(self, settings: Settings, port: int, out: Console) -> None:
        import uvicorn

        from inlink.api.app import create_app, listen, local_url
        from inlink.errors import InvalidInput

        try:
            self.sock = listen("127.0.0.1", port)
        except InvalidInput:
            out.print(f"port {port} is taken; the API takes a free port instead")
            self.sock = listen("127.0.0.1", 0)
        self.url = local_url("127.0.0.1", self.sock)
        config = uvicorn.Config(create_app(settings, public_url=self.url),
                                log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start; see the log above")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


def _report(store: Store, world: World, out: Console) -> dict[str, int]:
    """Print what the index holds and how it compares with the world's truth."""
    days = DEMO_DAYS
    truth_live = {(t.source_key, t.kind.value, t.target_key, t.anchor, t.image_url)
                  for t in world.live_links(days)}
    index_live = set(store.query(
        "SELECT source_key, kind, target_key, anchor, image_url FROM links WHERE live"))
    truth_events = Counter((e.date, e.event, e.reason) for e in world.events(days))
    index_events = Counter(store.query(
        "SELECT day, event, reason FROM link_events"))

    table = Table(title="top targets by referring domains")
    for column in ("domain", "backlinks", "ref. domains", "Domain InLink Rank"):
        table.add_column(column, justify="right" if column != "domain" else "left")
    rows = store.query(
        "SELECT l.target_domain, count(*) AS backlinks, count(DISTINCT l.source_domain) AS rd, "
        "coalesce(max(d.inlink_rank), 0) FROM links l "
        "LEFT JOIN rank_current c ON true "
        "LEFT JOIN rank_domains d ON d.run_id = c.run_id AND d.domain = l.target_domain "
        "WHERE l.live AND NOT l.internal GROUP BY 1 ORDER BY rd DESC, 1 LIMIT 8")
    for domain, backlinks, refdomains, rank in rows:
        table.add_row(domain, str(backlinks), str(refdomains), str(rank))
    out.print(table)

    lost = Counter(dict((reason, n) for (reason, n) in store.query(
        "SELECT reason, count(*) FROM link_events WHERE event = 'lost' GROUP BY 1")))
    out.print("lost links by reason: " + ", ".join(f"{r} {n}" for r, n in lost.most_common()))
    match_links = index_live == truth_live
    match_events = index_events == truth_events
    out.print(f"check against the world's ground truth: live links "
              f"{'[green]match[/]' if match_links else '[red]differ[/]'} "
              f"({len(index_live)} in the index, {len(truth_live)} in the truth); "
              f"new/lost events by day and reason "
              f"{'[green]match[/]' if match_events else '[red]differ[/]'} "
              f"({sum(index_events.values())} vs {sum(truth_events.values())})")
    return {"live_links": len(index_live), "truth_live_links": len(truth_live),
            "events": sum(index_events.values()),
            "truth_events": sum(truth_events.values()),
            "links_match": int(match_links), "events_match": int(match_events)}


def _top_url(store: Store, domain: str) -> str:
    rows = store.query("SELECT target_key FROM links WHERE live AND NOT internal AND "
                       "target_domain = ? GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
                       [domain])
    return str(rows[0][0]) if rows else f"https://{domain}/"


def _top_domain(store: Store) -> str:
    rows = store.query("SELECT target_domain FROM links WHERE live AND NOT internal "
                       "GROUP BY 1 ORDER BY count(DISTINCT source_domain) DESC LIMIT 1")
    return str(rows[0][0]) if rows else "example.com"
