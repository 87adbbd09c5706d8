"""`inlink world serve|export`: the synthetic web from the command line (mounted by inlink.cli).

Each command builds a `World` and calls one library function; people read stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from inlink.errors import InvalidInput
from inlink.world.model import World
from inlink.world.server import WorldServer, run_world_server

app = typer.Typer(help="The synthetic web: serve it on loopback or export its ground truth.",
                  no_args_is_help=True)
err = Console(stderr=True)

Seed = Annotated[int, typer.Option(help="Generator seed; same seed, same world.")]
Hosts = Annotated[int, typer.Option(min=40, help="Number of hosts (about 10 pages each).")]
Days = Annotated[int, typer.Option(min=2, max=60, help="Days of history to generate.")]


def serve_world(
    seed: int = 1,
    hosts: int = 2000,
    days: int = 7,
    day: int = 1,
    port: int = 0,
    resolve_out: Path | None = None,
    duration: float | None = None,
    quiet: bool = False,
) -> None:
    """Build a world and serve it in the foreground (used by `inlink demo` too)."""
    world = World(seed=seed, hosts=hosts, days=days)

    def ready(server: WorldServer) -> None:
        if quiet:
            return
        subnets = {ip.rsplit(".", 1)[0] for ip in server.ips}
        err.print(f"[bold]inlink world[/] seed={seed} day={day} ({world.date_of(day)}): "
                  f"{world.n_hosts} hosts, {world.n_pages} pages on {len(server.ips)} IPs "
                  f"in {len(subnets)} /24s, port {server.port}")
        if resolve_out is not None:
            err.print(f"resolve file: {resolve_out}")
        for host in world.seeds()[:3]:
            h = world.host_index(host.split("/")[2])
            assert h is not None
            err.print(f"  e.g. {host} -> {world.ip_of_host(h)}:{server.port}")
        err.print("Ctrl-C stops." if duration is None else f"stopping after {duration:g} s")

    stats = run_world_server(world, day, port=port, resolve_out=resolve_out, duration=duration,
                             on_ready=ready)
    if not quiet:
        err.print(f"served requests={stats.requests} connections={stats.connections}")


@app.command()
def serve(
    seed: Seed = 1,
    hosts: Hosts = 2000,
    day: Annotated[int, typer.Option(min=1, help="Day to serve.")] = 1,
    days: Days = 7,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 0,
    resolve_out: Annotated[Path | None, typer.Option(
        help="Write host=ip:port lines here for the crawler.")] = None,
    duration: Annotated[float | None, typer.Option(
        min=0, help="Stop after this many seconds.")] = None,
) -> None:
    """Serve the world over HTTP on loopback addresses (127.x.y.z, one port)."""
    if day > days:
        raise typer.BadParameter(f"--day {day} is after the last day ({days})")
    try:
        serve_world(seed, hosts, days, day, port, resolve_out, duration)
    except InvalidInput as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc


@app.command()
def export(
    out_dir: Annotated[Path, typer.Argument(help="Directory for the truth files.")],
    seed: Seed = 1,
    hosts: Hosts = 2000,
    days: Days = 7,
    warc_day: Annotated[int | None, typer.Option(
        min=1, help="Also write day-N.warc.gz with every page fetched that day.")] = None,
) -> None:
    """Write hosts, pages, links, events (Parquet), seeds and resolve map to OUT_DIR."""
    from inlink.world.export import export_world

    if warc_day is not None and warc_day > days:
        raise typer.BadParameter(f"--warc-day {warc_day} is after the last day ({days})")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn(
            "{task.completed}/{task.total}"), TimeElapsedColumn(), console=err) as bar:
        build = bar.add_task("build world", total=1)
        world = World(seed=seed, hosts=hosts, days=days)
        bar.update(build, completed=1)
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        summary = export_world(world, out_dir, warc_day=warc_day, progress=progress)
    err.print(f"wrote {out_dir}: hosts={summary.hosts} pages={summary.pages} "
              f"links={summary.links} link_rows={summary.link_rows} events={summary.events} "
              f"warc_records={summary.warc_records} in {summary.seconds:.1f} s")
    sys.stdout.write(f"{out_dir}\n")
