"""The `inlink` command line: each command builds Settings and calls one library function.

People read stderr (progress, summaries); programs read stdout (data). Exit codes: 0 ok,
1 the work failed, 2 bad input.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from inlink import __version__
from inlink.errors import InlinkError, InvalidInput, InvalidUrl
from inlink.settings import Settings

if TYPE_CHECKING:
    from inlink.handoff import Server
    from inlink.index.store import Store

err = Console(stderr=True)
app = typer.Typer(
    name="inlink",
    help="inlink: an open, self-hosted backlink index.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"inlink {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    db: Annotated[Path | None, typer.Option(
        "--db", help="DuckDB file of the index (env INLINK_DB; default ./inlink.duckdb).")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """inlink: crawl or ingest the web, keep every link's history, serve backlink APIs."""
    ctx.obj = Settings.from_env(db=db)


AsOf = Annotated[str | None, typer.Option(
    "--as-of", help="The date the clock says it is, YYYY-MM-DD (env INLINK_AS_OF).")]


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    return settings if isinstance(settings, Settings) else Settings.from_env()


def _open_store(settings: Settings, *, read_only: bool = False) -> Store:
    from inlink.index.store import Store

    if read_only and not settings.db.exists():
        raise InvalidInput("--db", f"no index at {settings.db}: crawl or ingest first")
    return Store(settings.db, read_only=read_only, memory_limit=settings.memory_limit)


def _writer_or_server(settings: Settings) -> tuple[Store | None, Server | None]:
    """The index opened for writing, or, when a running `inlink serve` holds it, that
    server to hand the work to (inlink.handoff); StoreLocked when neither."""
    from inlink.handoff import find_server
    from inlink.index.store import StoreLocked

    try:
        return _open_store(settings), None
    except StoreLocked:
        server = find_server(settings.db)
        if server is None:
            raise
    err.print(f"{settings.db} is held by `inlink serve` (PID {server.pid}): handing the work "
              f"to it at {server.url}")
    return None, server


# ---------------------------------------------------------------- url


@app.command("url")
def url_command(
    urls_: Annotated[list[str], typer.Argument(metavar="URL...", help="URLs to inspect.")],
) -> None:
    """Show how inlink identifies URLs: normalized key, host, registrable domain, TLD.

    One JSON object per line on stdout; an invalid URL prints its error and sets exit code 2.
    """
    from inlink import urls

    failed = False
    for raw in urls_:
        try:
            key = urls.normalize_url(raw)
        except InvalidUrl as exc:
            failed = True
            typer.echo(json.dumps({"url": raw, "error": exc.reason}))
            continue
        host = urls.host_of(key)
        typer.echo(json.dumps({
            "url": raw,
            "key": key,
            "host": host,
            "domain": urls.registrable_domain(host),
            "public_suffix": urls.public_suffix(host),
            "tld": urls.tld(host),
            "reverse_host": urls.reverse_host(host),
        }, ensure_ascii=False))
    if failed:
        raise typer.Exit(2)


# ---------------------------------------------------------------- bench


@app.command("bench")
def bench_command(
    names: Annotated[list[str] | None, typer.Argument(
        metavar="[NAME]...", help="Benchmarks to run (default: all in bench/).")] = None,
    write_docs: Annotated[bool, typer.Option(
        "--write-docs/--no-write-docs", help="Record the results in docs/benchmarks.md.")] = True,
    quick: Annotated[bool, typer.Option(
        "--quick",
        help="A short run to check that the benchmarks work (figures are noisy).")] = False,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", metavar="KEY=VALUE",
        help="An option for the benchmarks' run() (e.g. -o index=big.duckdb for `api`); "
             "repeatable. Each bench's docstring lists its options.")] = None,
) -> None:
    """Run the benchmark suite and print its markdown table(s) on stdout."""
    from inlink import benchrun

    options: dict[str, str] = {}
    for item in option or []:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise InvalidInput("--option", f"expected KEY=VALUE, got {item!r}")
        options[key] = value
    for name in names or benchrun.available():
        err.print(f"[bold]bench {name}[/bold] ...")
        result, markdown = benchrun.run(name, quick=quick, **options)
        typer.echo(markdown)
        if write_docs and not quick:
            path = benchrun.record(name, markdown)
            err.print(f"recorded in {path}")


# ---------------------------------------------------------------- crawl


@app.command("crawl")
def crawl_command(
    ctx: typer.Context,
    seeds: Annotated[list[str], typer.Argument(metavar="SEED...", help="Start URLs.")],
    max_pages: Annotated[int | None, typer.Option(
        min=1, help="Stop after this many fetches.")] = None,
    as_of: AsOf = None,
    scope: Annotated[str, typer.Option(
        help="Follow links within: host | domain | any.")] = "domain",
    resolve: Annotated[list[str] | None, typer.Option(
        "--resolve", metavar="HOST=IP[:PORT]",
        help="Connect to IP for HOST instead of DNS.")] = None,
    resolve_file: Annotated[list[Path] | None, typer.Option(
        "--resolve-file",
        help="A file of host=ip:port lines (the synthetic web writes one).")] = None,
    no_dns: Annotated[bool, typer.Option(
        "--no-dns", help="Never use DNS; unmapped hosts fail.")] = False,
    concurrency: Annotated[int | None, typer.Option(
        min=1, max=4096, help="Fetches in flight (env INLINK_CRAWL_CONCURRENCY; 128).")] = None,
    per_host: Annotated[int | None, typer.Option(
        min=1, max=64, help="Fetches in flight per host (env INLINK_CRAWL_PER_HOST; 2).")] = None,
    delay: Annotated[float | None, typer.Option(
        min=0, help="Seconds between requests to one host (env INLINK_CRAWL_DELAY; 1.0; "
                    "robots.txt Crawl-delay wins).")] = None,
) -> None:
    """Crawl politely from SEED URLs into the index (robots.txt, per-host delays, caps).

    An interrupted crawl resumes where its last committed batch ended. A crawl as of a later
    day re-fetches the pages already known, which is how lost links are found.
    """
    from inlink.index.crawljob import CrawlProgress, crawl
    from inlink.settings import parse_date
    from inlink.sources.crawl import CrawlOptions
    from inlink.sources.fetcher import load_resolve_file, parse_override

    settings = _settings(ctx)
    if as_of is not None:
        settings = Settings.from_env(db=settings.db, as_of=parse_date(as_of, "--as-of"))
    overrides: dict[str, tuple[str, int | None]] = {}
    for path in resolve_file or []:
        overrides.update(load_resolve_file(path))
    for text in resolve or []:
        host, target = parse_override(text)
        overrides[host] = target
    options = CrawlOptions.from_env(
        max_pages=max_pages, scope=scope, concurrency=concurrency, per_host=per_host,
        delay=delay, resolve=overrides, dns=not no_dns)
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from inlink.index.crawljob import CrawlSummary

    store, server = _writer_or_server(settings)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err) as bar:
        task = bar.add_task("crawling", total=None)

        def progress(p: CrawlProgress | dict[str, Any]) -> None:
            q = p if isinstance(p, dict) else asdict(p)
            bar.update(task, description=(
                f"{q['pages']} fetched ({q['pages_ok']} ok, {q['pages_failed']} failed), "
                f"{q['queued']} queued, {q['hosts']} hosts, {q['committed']} committed"))

        if server is not None:
            from inlink.handoff import run_job

            summary = CrawlSummary(**run_job(server, {
                "kind": "crawl", "seeds": list(seeds),
                "as_of": settings.as_of.isoformat() if settings.as_of else None,
                "max_pages": max_pages, "scope": scope, "concurrency": concurrency,
                "per_host": per_host, "delay": delay, "dns": not no_dns,
                "resolve": {h: list(t) for h, t in overrides.items()}}, progress))
        else:
            assert store is not None
            with store:
                summary = crawl(store, seeds, options, settings, progress)
                _refresh_aggregates(store)
    err.print(summary.line())
    typer.echo(json.dumps(summary.to_dict(), default=str))


def _refresh_aggregates(store: Store) -> None:
    """Re-materialize the heavy targets' aggregates after a write (inlink.query.heavy)."""
    from inlink.query import heavy

    done = heavy.refresh(store, progress=lambda msg: err.print(f"  {msg}"))
    if done["targets"]:
        err.print(f"aggregates of {done['targets']} heavy targets stored in "
                  f"{done['seconds']:.1f} s")


# ---------------------------------------------------------------- ingest


@app.command("ingest")
def ingest_command(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(
        metavar="FILE...", help="WARC or WAT files, gzipped or not (Common Crawl layout).")],
    workers: Annotated[int | None, typer.Option(
        min=0, help="Extraction processes (default: cores - 2; 0 = in this process).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000,
                                            help="Pages per committed batch.")] = 1000,
) -> None:
    """Read web archives into the index; damaged records are counted and skipped.

    Each file is a resumable job: an interrupted ingest continues where its last committed
    batch ended, and a file already ingested is skipped. Prints the summary as JSON on stdout.
    """
    from dataclasses import asdict

    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    from inlink.index.ingest import IngestProgress, IngestSummary, ingest

    for path in files:
        if not path.is_file():
            raise InvalidInput("FILE", f"{path} is not a readable file")
    settings = _settings(ctx)
    store, server = _writer_or_server(settings)
    with Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TextColumn("{task.fields[pages]} pages"), TimeElapsedColumn(), console=err) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(p: IngestProgress | dict[str, Any]) -> None:
            q: dict[str, Any] = p if isinstance(p, dict) else {
                "file": p.path, "position": p.position, "size": p.size, "pages": p.pages}
            if q["file"] not in tasks:
                tasks[q["file"]] = bar.add_task(Path(q["file"]).name, total=q["size"], pages=0)
            bar.update(tasks[q["file"]], completed=q["position"], pages=q["pages"])

        if server is not None:
            from inlink.handoff import run_job

            summary = IngestSummary.from_dict(run_job(server, {
                "kind": "ingest", "files": [str(f.resolve()) for f in files],
                "workers": workers, "batch_size": batch_size}, progress))
        else:
            assert store is not None
            with store:
                summary = ingest(store, files, batch_size=batch_size, workers=workers,
                                 progress=progress,
                                 compact_memory_limit=settings.compact_memory_limit)
                _refresh_aggregates(store)
    err.print(summary.line())
    for result in summary.files:
        if result.error:
            err.print(f"[red]{result.path}[/red]: {result.error}")
    typer.echo(json.dumps(asdict(summary), default=str))
    if summary.errors and len(summary.errors) == len(summary.files):
        raise typer.Exit(1)


# ---------------------------------------------------------------- rank

rank_app = typer.Typer(help="Authority: compute InLink Rank and Domain InLink Rank, explain them.",
                       invoke_without_command=True, no_args_is_help=False)
app.add_typer(rank_app, name="rank")

@rank_app.callback(invoke_without_command=True)
def rank_command(ctx: typer.Context, as_of: AsOf = None) -> None:
    """Compute page and domain ranks from the live links and store them as a dated run."""
    if ctx.invoked_subcommand is not None:
        return
    from dataclasses import asdict

    from inlink.rank import run_rank
    from inlink.settings import parse_date

    settings = _settings(ctx)
    if as_of is not None:
        settings = Settings.from_env(db=settings.db, as_of=parse_date(as_of, "--as-of"))
    store, server = _writer_or_server(settings)
    if server is not None:
        from inlink.handoff import run_job
        from inlink.rank import RankSummary

        seen: list[str] = []

        def show(p: dict[str, Any]) -> None:
            if p.get("step") and (not seen or seen[-1] != p["step"]):
                seen.append(p["step"])
                err.print(f"  {p['step']}")

        summary = RankSummary(**run_job(server, {
            "kind": "rank", "as_of": settings.as_of.isoformat() if settings.as_of else None},
            show))
    else:
        assert store is not None
        with store:
            summary = run_rank(store, settings, progress=lambda msg: err.print(f"  {msg}"))
            _refresh_aggregates(store)
    err.print(f"rank run {summary.run_id} for {summary.day}: {summary.pages} pages "
              f"({summary.page_iterations} iterations), {summary.domains} domains "
              f"({summary.domain_iterations} iterations) in {summary.seconds:.2f} s")
    typer.echo(json.dumps(asdict(summary), default=str))


@rank_app.command("explain")
def rank_explain_command(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A page URL (with scheme) or a domain.")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Contributors to show.")] = 10,
) -> None:
    """Which referring pages or domains make a target's rank, and what changed since last run."""
    from dataclasses import asdict

    from inlink.rank import explain

    with _open_store(_settings(ctx), read_only=True) as store:
        result = explain(store, target, limit=limit)
    if result is None:
        raise InvalidInput("target", f"{target!r} is not in the current rank run")
    err.print(f"{result.kind} {result.target}: rank {result.rank} (0-1000: {result.rank_1000})"
              + (f", {result.rank_delta:+d} since run {result.previous_run_id}"
                 if result.rank_delta is not None else ""))
    for c in result.contributors:
        err.print(f"  {c.share:7.2%}  rank {c.rank:3d}  {c.key}")
    typer.echo(json.dumps(asdict(result), default=str))


@rank_app.command("spam")
def rank_spam_command(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A page URL (with scheme) or a domain.")],
) -> None:
    """The spam score (0-100) of a page or domain, with every signal's contribution."""
    from dataclasses import asdict

    from inlink.rank import spam_score

    with _open_store(_settings(ctx), read_only=True) as store:
        result = spam_score(store, target)
    err.print(f"{result.kind} {result.target}: spam score {result.score}")
    for sig in result.signals:
        err.print(f"  {sig.contribution:6.2f}  {sig.name}: {sig.explanation}")
    typer.echo(json.dumps(asdict(result), default=str))


# ---------------------------------------------------------------- world


def _mount_world() -> None:
    from inlink.world.cli import app as world_app

    app.add_typer(world_app, name="world",
                  help="The synthetic web: serve it on loopback or export it with its truth.")


_mount_world()


# ---------------------------------------------------------------- serve, keys


@app.command("serve")
def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    as_of: AsOf = None,
    access_log: Annotated[bool | None, typer.Option(
        "--access-log/--no-access-log",
        help="One line per request on standard output, the API key masked (default: on; "
             "env INLINK_ACCESS_LOG).")] = None,
) -> None:
    """Serve the HTTP APIs (SE Ranking Data API at /v1/backlinks, OpenAPI at /docs)."""
    import uvicorn

    from inlink.api import accesslog
    from inlink.api.app import create_app, listen, local_url
    from inlink.settings import parse_date

    settings = _settings(ctx)
    if as_of is not None:
        settings = Settings.from_env(db=settings.db, as_of=parse_date(as_of, "--as-of"))
    if access_log is not None:
        settings = replace(settings, access_log=access_log)
    sock = listen(host, port)
    url = local_url(host, sock)
    err.print(f"serving {settings.db} on {url} (docs at /docs); crawls, ingests and rank "
              "runs started with the CLI meanwhile run here as jobs")
    # uvicorn's access log would print `?apikey=KEY` in clear: inlink's masks it.
    accesslog.configure(settings.access_log)
    config = uvicorn.Config(create_app(settings, public_url=url), log_level="info",
                            access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


keys_app = typer.Typer(help="API keys and their credits (stored hashed in the index file).",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create_command(
    ctx: typer.Context,
    dialect: Annotated[str, typer.Option(help="Which API the key is for: data (SE Ranking "
                                              "Data API, a UUID) or project (40 hex).")],
    credits: Annotated[int, typer.Option(min=0, help="Starting credit balance.")] = 0,
    label: Annotated[str | None, typer.Option(help="A note to tell keys apart.")] = None,
) -> None:
    """Create a key and print it on stdout (it is shown once: only its hash is kept)."""
    from inlink.api.keys import create_key

    store, server = _writer_or_server(_settings(ctx))
    if server is not None:
        from inlink.handoff import call

        key = str(call(server, "POST", "/admin/keys",
                       {"dialect": dialect, "credits": credits, "label": label})["key"])
    else:
        assert store is not None
        with store:
            key = create_key(store, dialect, credits, label=label)
    err.print(f"created a {dialect} key with {credits} credits")
    typer.echo(key)


@keys_app.command("list")
def keys_list_command(ctx: typer.Context) -> None:
    """List keys (prefix, dialect, balance, created), one JSON object per line."""
    from inlink.api.keys import list_keys

    store, server = _writer_or_server(_settings(ctx))
    if server is not None:
        from inlink.handoff import call

        for k in call(server, "GET", "/admin/keys")["keys"]:
            typer.echo(json.dumps({"key_prefix": k["key_prefix"], "dialect": k["dialect"],
                                   "balance": k["balance"], "created_at": k["created_at"],
                                   "label": k["label"]}))
        return
    assert store is not None
    with store:
        for k in list_keys(store):
            typer.echo(json.dumps({"key_prefix": k.key_prefix, "dialect": k.dialect,
                                   "balance": k.balance, "created_at": k.created_at.isoformat(),
                                   "label": k.label}))


# ---------------------------------------------------------------- demo


@app.command("demo")
def demo_command(
    ctx: typer.Context,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic web.")] = 1,
    hosts: Annotated[int, typer.Option(min=40, max=5000,
                                       help="Number of hosts in the synthetic web.")] = 300,
    duration: Annotated[float | None, typer.Option(
        min=0, help="Stop after this many seconds (default: run until Ctrl-C).")] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port of the API on 127.0.0.1 "
                                      "(0 or a taken port: any free one).")] = 8000,
) -> None:
    """Build an index from the bundled synthetic web (3 days of crawls), rank it, check it
    against the web's ground truth, create a demo key and serve the API and the web on
    loopback, printing ready-to-paste curl lines."""
    import os

    from inlink.demo import DEMO_DB, run_demo

    settings = _settings(ctx)
    if ctx.find_root().params.get("db") is None and not os.environ.get("INLINK_DB"):
        settings = Settings.from_env(db=Path(DEMO_DB))
    figures = run_demo(settings, seed=seed, hosts=hosts, duration=duration, console=err,
                       port=port)
    typer.echo(json.dumps(figures))


def main() -> None:
    """Console entry point: run the app, turning inlink's errors into messages and exit codes."""
    try:
        app()
    except InvalidInput as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
    except InlinkError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
