"""Index bench: build a generated ~20M-link index with `inlink.index.bulk` vs a bare DuckDB copy.

Exports a world (or reuses `export_dir`), bulk-loads it into a fresh DuckDB file and, as the
same-run reference, copies links.parquet into an empty file with one CREATE TABLE AS. Each step
runs in a subprocess for its peak RSS. Run as `python -m bench.index_bench [--quick]
[--export-dir DIR]` or through `inlink bench index`; see docs/ingest.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: 106k hosts: 21.4M links; its top page has 1.05M day-1 links (`World.top_targets`) but
#: 0.905M live backlinks after day 7. ~120k hosts (`hosts=`) should pass 1M live (not run).
FULL_HOSTS = 106_000
QUICK_HOSTS = 5_000
SEED = 1

_EXPORT = """
import json, resource, sys, time
from inlink.world import World
from inlink.world.export import export_world
t0 = time.perf_counter()
w = World(seed=int(sys.argv[2]), hosts=int(sys.argv[3]))
built = time.perf_counter() - t0
(url, n), = w.top_targets(1)
s = export_world(w, sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - t0, "build_seconds": built,
                  "hosts": s.hosts, "pages": s.pages, "links": s.links,
                  "link_rows": s.link_rows, "events": s.events,
                  "top_target": url, "top_target_day1_backlinks": n,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

_LOAD = """
import json, os, resource, sys, time
from inlink.index.bulk import load_world_export
from inlink.index.store import Store
if __name__ == "__main__":
    t0 = time.perf_counter()
    with Store(sys.argv[1], memory_limit=sys.argv[3]) as store:
        s = load_world_export(store, sys.argv[2], memory_limit=sys.argv[3])
        loaded = time.perf_counter() - t0
        sorted_ = store.query(
            "SELECT count(*) FROM (SELECT (target_domain, target_host, target_key, source_key) "
            "< lag((target_domain, target_host, target_key, source_key)) OVER () AS back "
            "FROM links) WHERE back")[0][0] == 0
        compacted = False
        if not sorted_:
            store.compact()
            compacted = True
        top_url = store.query("SELECT target_key, count(*) FROM links WHERE live AND NOT "
                              "internal GROUP BY 1 ORDER BY 2 DESC LIMIT 1")[0]
        top_dom = store.query("SELECT target_domain, count(*) FROM links WHERE live AND NOT "
                              "internal GROUP BY 1 ORDER BY 2 DESC LIMIT 1")[0]
    print(json.dumps({"seconds": loaded, "total_seconds": time.perf_counter() - t0,
                      "stages": s.stages, "pages": s.pages, "fetches": s.fetches,
                      "links": s.links, "live_links": s.live_links, "events": s.events,
                      "sorted": sorted_, "compacted": compacted,
                      "top_target": list(top_url), "top_domain": list(top_dom),
                      "file_bytes": os.path.getsize(sys.argv[1]),
                      "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "rss_children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""

_REFERENCE = """
import json, os, resource, sys, time
import duckdb
t0 = time.perf_counter()
con = duckdb.connect(sys.argv[1])
con.execute("SET memory_limit = ?", [sys.argv[3]])
con.execute("CREATE TABLE links AS SELECT * FROM read_parquet(?)", [sys.argv[2]]).fetchall()
con.execute("CHECKPOINT").fetchall()
n = con.execute("SELECT count(*) FROM links").fetchall()[0][0]
con.close()
print(json.dumps({"seconds": time.perf_counter() - t0, "rows": n,
                  "file_bytes": os.path.getsize(sys.argv[1]),
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _child(script: str, *args: str, timeout: float = 3600) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                         timeout=timeout, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"bench step failed:\n{out.stderr.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - t0
    return result


def run(quick: bool = False, export_dir: str | Path | None = None, hosts: int | None = None,
        memory_limit: str = "6GB", work_dir: str | Path | None = None,
        **_: Any) -> dict[str, Any]:
    """Export (unless `export_dir` holds one), bulk-load, then the bare-copy reference."""
    n_hosts = hosts or (QUICK_HOSTS if quick else FULL_HOSTS)
    with tempfile.TemporaryDirectory(prefix="inlink-index-bench-", dir=work_dir) as tmp:
        folder = Path(tmp)
        result: dict[str, Any] = {"memory_limit": memory_limit, "cores": os.cpu_count(),
                                  "quick": quick}
        src = Path(export_dir) if export_dir else folder / "export"
        if (src / "links.parquet").exists():
            result["export"] = {"reused": str(src)}
        else:
            result["export"] = _child(_EXPORT, str(src), str(SEED), str(n_hosts))
        result["export"]["bytes"] = sum(p.stat().st_size for p in src.glob("*.parquet"))
        result["load"] = _child(_LOAD, str(folder / "bulk.duckdb"), str(src), memory_limit)
        result["reference"] = _child(_REFERENCE, str(folder / "ref.duckdb"),
                                     str(src / "links.parquet"), memory_limit)
    load, ref = result["load"], result["reference"]
    result["load_links_per_s"] = load["links"] / load["seconds"]
    result["reference_rows_per_s"] = ref["rows"] / ref["seconds"]
    result["ratio"] = ref["seconds"] / load["seconds"]
    return result


def to_markdown(result: dict[str, Any]) -> str:
    ex, load, ref = result["export"], result["load"], result["reference"]
    gb = 1e9
    lines = []
    if "seconds" in ex:
        lines.append(
            f"World: {ex['hosts']:,} hosts, {ex['pages']:,} pages, {ex['links']:,} links "
            f"({ex['link_rows']:,} interval rows, {ex['events']:,} events); export "
            f"{ex['seconds']:.0f} s (build {ex['build_seconds']:.0f} s), "
            f"{ex['bytes'] / gb:.2f} GB Parquet, peak RSS {ex['rss_kb'] / 1024**2:.1f} GiB.")
    else:
        lines.append(f"World: export reused from {ex['reused']} ({ex['bytes'] / gb:.2f} GB).")
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in load["stages"].items())
    lines += [
        "",
        "| run | seconds | rows | rows/s | file | peak RSS |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| bulk load (`load_world_export`) | {load['seconds']:.0f} | {load['links']:,} links "
        f"+ {load['events']:,} events + {load['fetches']:,} fetches | "
        f"{result['load_links_per_s']:,.0f} links/s | {load['file_bytes'] / gb:.2f} GB | "
        f"{load['rss_kb'] / 1024**2:.1f} GiB (+ hash workers "
        f"{load['rss_children_kb'] / 1024**2:.2f} GiB) |",
        f"| reference: `CREATE TABLE AS SELECT * FROM read_parquet(links)` | "
        f"{ref['seconds']:.0f} | {ref['rows']:,} | {result['reference_rows_per_s']:,.0f} | "
        f"{ref['file_bytes'] / gb:.2f} GB | {ref['rss_kb'] / 1024**2:.1f} GiB |",
        "",
        f"- stages: {stages}.",
        f"- rows already in `Store.compact()` order: {load['sorted']} "
        f"(compacted: {load['compacted']}).",
        f"- biggest target: {load['top_target'][0]} with {load['top_target'][1]:,} live "
        f"backlinks; biggest domain {load['top_domain'][0]} with "
        f"{load['top_domain'][1]:,}.",
        f"- bulk load / bare copy time: {1 / result['ratio']:.1f}x "
        f"(DuckDB memory_limit {result['memory_limit']}, {result['cores']} cores).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    args = sys.argv[1:]
    given = args[args.index("--export-dir") + 1] if "--export-dir" in args else None
    res = run(quick="--quick" in args, export_dir=given)
    print(to_markdown(res))
    print(json.dumps(res, indent=1, default=str), file=sys.stderr)
