"""API bench: latency of the SE Ranking Data API over a big generated index, and a load test.

The index is a bulk-built world (`inlink.index.bulk`, ~20M links for the full run) ranked once,
or an existing index (`index=PATH`; it is copied, never modified). The server is the real
thing — `inlink serve` in its own process on 127.0.0.1 — and the clients talk HTTP to it.

Measured, for the target with the most backlinks (a domain) and a small one (~100 backlinks):
p50/p99 of summary, anchors, refdomains, all (limit 100) and a raw page of 10,000. Then
`clients` concurrent clients on loopback for `seconds` against small targets: errors and
latency percentiles.

Reference, same run, same file: the summary's core aggregate (backlinks, distinct referring
domains, IPs, /24 subnets, dofollow) as one raw DuckDB query over the links table (sorted by
target, as the index keeps it), from a read-only connection before the server starts.

Run as `python -m bench.api_bench [--quick] [--index PATH]` or `inlink bench api
[-o index=PATH] [-o clients=50] [-o seconds=60]`.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FULL_HOSTS = 106_000
QUICK_HOSTS = 3_000
SEED = 1

ENDPOINTS: dict[str, dict[str, Any]] = {
    "summary": {},
    "anchors": {"limit": 100},
    "refdomains": {"limit": 100},
    "all": {"limit": 100},
    "raw": {"limit": 10_000},
}

REFERENCE_SQL = (
    "SELECT count(*), count(DISTINCT source_domain), count(DISTINCT source_ip), "
    "count(DISTINCT source_subnet), count(*) FILTER (WHERE NOT nofollow) FROM links "
    "WHERE {scope} AND live AND NOT internal AND kind IN ('anchor', 'image', 'redirect', "
    "'meta')")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _build(folder: Path, hosts: int) -> Path:
    """Export a world, bulk-load it and rank it; returns the index path."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from inlink.world import World\n"
        "from inlink.world.export import export_world\n"
        "from inlink.index.bulk import load_world_export\n"
        "from inlink.index.store import Store\n"
        "from inlink.rank import run_rank\n"
        "from inlink.settings import Settings\n"
        "out, hosts, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])\n"
        "export_world(World(seed=seed, hosts=hosts), out / 'export')\n"
        "db = out / 'api.duckdb'\n"
        "with Store(db, memory_limit='6GB') as store:\n"
        "    load_world_export(store, out / 'export', memory_limit='6GB')\n"
        "    run_rank(store, Settings(db=db, memory_limit='6GB'))\n"
        "    store.compact()\n")
    # (aggregates and indexes are prepared by _prepare, timed apart)
    subprocess.run([sys.executable, "-c", script, str(folder), str(hosts), str(SEED)],
                   check=True,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=7200)
    shutil.rmtree(folder / "export")
    return folder / "api.duckdb"


def _pick_targets(db: Path) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]],
                                     dict[str, Any]]:
    """(big target, small target, more small targets, reference timings) from a read-only
    connection."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    base = "FROM links WHERE live AND NOT internal"
    big = con.execute(f"SELECT target_domain, count(*) {base} GROUP BY 1 ORDER BY 2 DESC "
                      "LIMIT 1").fetchall()[0]
    smalls = con.execute(f"SELECT target_host, count(*) AS n {base} GROUP BY 1 "
                         "HAVING n BETWEEN 80 AND 150 ORDER BY hash(target_host) LIMIT 50"
                         ).fetchall()
    small = min(smalls, key=lambda r: abs(r[1] - 100))
    small_domain = con.execute("SELECT target_domain FROM links WHERE target_host = ? LIMIT 1",
                               [small[0]]).fetchall()[0][0]
    ref: dict[str, Any] = {}
    # the scope terms the query layer uses: the domain first (the table's sort order)
    for name, scope, values in (("big", "target_domain = ?", [big[0]]),
                                ("small", "target_domain = ? AND target_host = ?",
                                 [small_domain, small[0]])):
        sql = REFERENCE_SQL.format(scope=scope)
        times = []
        for _ in range(7 if name == "big" else 50):
            t = time.perf_counter()
            con.execute(sql, values).fetchall()
            times.append(time.perf_counter() - t)
        ref[name] = {"p50_ms": 1000 * _pct(times, 0.5), "p99_ms": 1000 * _pct(times, 0.99)}
    links = con.execute("SELECT count(*) FROM links").fetchall()[0][0]
    con.close()
    ref["links"] = int(links)
    return ({"target": big[0], "mode": "domain", "backlinks": int(big[1])},
            {"target": small[0], "mode": "host", "backlinks": int(small[1])},
            [{"target": s[0], "mode": "host", "backlinks": int(s[1])} for s in smalls], ref)


_PREPARE = """
import json, sys, time
from inlink.index.store import Store
from inlink.query import heavy, indexes
with Store(sys.argv[1], memory_limit=sys.argv[2]) as store:
    t = time.perf_counter()
    made = indexes.ensure(store)
    ix = time.perf_counter() - t
    done = heavy.refresh(store)
    print(json.dumps({"indexes": made, "index_seconds": ix, "targets": done["targets"],
                      "answers": done["answers"], "seconds": done["seconds"]}))
"""

_LIVE = """
import json, sys, time
from inlink import query as q
from inlink.index.store import Store
from inlink.query import heavy
store = Store(sys.argv[1], read_only=True)
t = q.resolve_target(sys.argv[2], sys.argv[3])
out = {}
with heavy.bypass():
    for name, fn in (("summary", lambda: q.summarize(store, [t])),
                     ("anchors", lambda: q.list_anchors(store, t, limit=100)),
                     ("refdomains", lambda: q.list_refdomains(store, t, limit=100))):
        fn()
        ts = []
        for _ in range(3):
            a = time.perf_counter(); fn(); ts.append(time.perf_counter() - a)
        out[name] = 1000 * sorted(ts)[1]
print(json.dumps(out))
"""


def _child_json(script: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                         check=True, timeout=3600, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    result: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return result


def _create_key(db: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "inlink.cli", "--db", str(db), "keys",
                          "create", "--dialect", "data", "--credits", str(10**15)],
                         capture_output=True, check=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return out.stdout.decode().strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    def __init__(self, db: Path, port: int, memory_limit: str, cache_mb: int) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), INLINK_MEMORY_LIMIT=memory_limit,
                   INLINK_API_CACHE_MB=str(cache_mb))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "inlink.cli", "--db", str(db), "serve", "--host",
             "127.0.0.1", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        self.port = port
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + self.proc.stderr.read().decode()[-2000:]
                                   if self.proc.stderr else "")
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    c.close()
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start in 120 s")

    def health(self) -> dict[str, Any]:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("GET", "/healthz")
        out: dict[str, Any] = json.loads(c.getresponse().read())
        c.close()
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _path(endpoint: str, key: str, target: dict[str, Any]) -> str:
    params = {"apikey": key, "target": target["target"], "mode": target["mode"],
              **ENDPOINTS[endpoint]}
    return f"/v1/backlinks/{endpoint}?{urllib.parse.urlencode(params)}"


def _latency(port: int, key: str, target: dict[str, Any], reps: int) -> dict[str, Any]:
    """p50/p99 per endpoint over `reps` calls in a row (the endpoints do not take turns:
    a raw page's garbage would be charged to the call after it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    out: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        path = _path(endpoint, key, target)
        times: list[float] = []
        rows = 0
        for i in range(reps + 1):
            t = time.perf_counter()
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            dt_ = time.perf_counter() - t
            if r.status != 200:
                raise RuntimeError(f"{endpoint}: HTTP {r.status}: {body[:300]!r}")
            if i == 0:  # the first call warms caches; it is reported apart
                out.setdefault("first_ms", {})[endpoint] = 1000 * dt_
                data = json.loads(body)
                rows = len(next(iter(data.values()))) if data else 0
                if endpoint == "summary":
                    rows = data["summary"][0]["backlinks"]
                continue
            times.append(dt_)
        out[endpoint] = {"p50_ms": 1000 * _pct(times, 0.5), "p99_ms": 1000 * _pct(times, 0.99),
                         "n": len(times), "rows": rows}
    conn.close()
    return out


async def _load(port: int, key: str, targets: list[dict[str, Any]], clients: int,
                seconds: float, max_requests: int) -> dict[str, Any]:
    import aiohttp

    paths = [_path(e, key, t) for t in targets for e in ("summary", "anchors", "refdomains",
                                                          "all")]
    times: list[float] = []
    errors: dict[str, int] = {}
    stop_at = time.monotonic() + seconds
    sent = 0
    conn = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", connector=conn,
                                     timeout=timeout) as session:
        async def client(seed: int) -> None:
            nonlocal sent
            rng = random.Random(seed)
            while time.monotonic() < stop_at and sent < max_requests:
                sent += 1
                path = rng.choice(paths)
                t = time.perf_counter()
                try:
                    async with session.get(path) as r:
                        await r.read()
                        if r.status != 200:
                            errors[str(r.status)] = errors.get(str(r.status), 0) + 1
                            continue
                except (TimeoutError, aiohttp.ClientError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                times.append(time.perf_counter() - t)

        t0 = time.monotonic()
        await asyncio.gather(*(client(i) for i in range(clients)))
        wall = time.monotonic() - t0
    return {"clients": clients, "seconds": wall, "requests": len(times) + sum(errors.values()),
            "ok": len(times), "errors": errors, "rps": len(times) / wall,
            "p50_ms": 1000 * _pct(times, 0.5), "p99_ms": 1000 * _pct(times, 0.99),
            "max_ms": 1000 * max(times) if times else float("nan")}


def run(quick: bool = False, index: str | None = None, hosts: int | None = None,
        clients: int | str = 50, seconds: float | str | None = None,
        reps: int | str | None = None, memory_limit: str = "4GB",
        work_dir: str | None = None, **_: Any) -> dict[str, Any]:
    clients = int(clients)
    seconds = float(seconds if seconds is not None else (10 if quick else 60))
    with tempfile.TemporaryDirectory(prefix="inlink-api-bench-", dir=work_dir) as tmp:
        folder = Path(tmp)
        result: dict[str, Any] = {"quick": quick, "cores": os.cpu_count()}
        t = time.perf_counter()
        if index:
            db = folder / "api.duckdb"
            shutil.copyfile(index, db)
            result["index"] = {"source": str(index), "copied_seconds": time.perf_counter() - t}
        else:
            db = _build(folder, hosts or (QUICK_HOSTS if quick else FULL_HOSTS))
            result["index"] = {"built_seconds": time.perf_counter() - t}
        result["index"]["file_bytes"] = db.stat().st_size
        result["prepare"] = _child_json(_PREPARE, str(db), memory_limit)
        big, small, smalls, ref = _pick_targets(db)
        result.update(big=big, small=small, reference=ref)
        result["live_big"] = _child_json(_LIVE, str(db), big["target"], big["mode"])
        key = _create_key(db)
        # Cold: the answer cache off, so every call computes (latency tables, one load run).
        server = _Server(db, _free_port(), memory_limit, cache_mb=0)
        try:
            n = int(reps) if reps is not None else (10 if quick else 30)
            result["latency_big"] = _latency(server.port, key, big, n)
            result["latency_small"] = _latency(server.port, key, small, 5 * n)
            result["load"] = asyncio.run(_load(server.port, key, smalls, clients, seconds,
                                               max_requests=200_000))
        finally:
            server.stop()
        # Default server: the same load with the exact answer cache (inlink.api.cache).
        server = _Server(db, _free_port(), memory_limit, cache_mb=256)
        try:
            result["load_cached"] = asyncio.run(_load(server.port, key, smalls, clients,
                                                      seconds, max_requests=400_000))
            result["load_cached"]["cache"] = server.health()["answer_cache"]
        finally:
            server.stop()
    (Path(work_dir or tempfile.gettempdir()) / "inlink-api-bench.json").write_text(
        json.dumps(result, default=str))
    return result


def to_markdown(r: dict[str, Any]) -> str:
    big, small, ref = r["big"], r["small"], r["reference"]
    lb, ls, load = r["latency_big"], r["latency_small"], r["load"]
    lines = [
        f"Index: {ref['links']:,} links ({r['index']['file_bytes'] / 1e9:.2f} GB DuckDB file); "
        f"big target `{big['target']}` (mode domain, {big['backlinks']:,} live backlinks), "
        f"small target `{small['target']}` (mode host, {small['backlinks']} backlinks). "
        "Server: `inlink serve` (one uvicorn process) on 127.0.0.1; one client over HTTP "
        "keep-alive; p50/p99 after one warm-up call; the answer cache off (every call "
        "computes).",
        "",
        "| endpoint | big p50 ms | big p99 ms | small p50 ms | small p99 ms | big first call ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for e in ENDPOINTS:
        limit = ENDPOINTS[e].get("limit")
        label = f"{e} (limit {limit})" if limit else e
        lines.append(f"| {label} | {lb[e]['p50_ms']:.1f} | {lb[e]['p99_ms']:.1f} | "
                     f"{ls[e]['p50_ms']:.1f} | {ls[e]['p99_ms']:.1f} | "
                     f"{lb['first_ms'][e]:.0f} |")
    lines.append(f"| reference: raw DuckDB summary aggregate | {ref['big']['p50_ms']:.1f} | "
                 f"{ref['big']['p99_ms']:.1f} | {ref['small']['p50_ms']:.1f} | "
                 f"{ref['small']['p99_ms']:.1f} | |")
    worst_big = max(lb[e]["p50_ms"] for e in ENDPOINTS)
    worst_small = max(ls[e]["p50_ms"] for e in ENDPOINTS)
    errors = sum(load["errors"].values())
    lc = r["load_cached"]
    errors_c = sum(lc["errors"].values())
    hit = lc["cache"]["hits"] / max(1, lc["cache"]["hits"] + lc["cache"]["misses"])
    lines += [
        "",
        f"- Load, cache off: {load['clients']} concurrent clients for {load['seconds']:.0f} s "
        f"on {len(ENDPOINTS) - 1} endpoints (summary, anchors, refdomains, all) of 50 small "
        f"targets: {load['ok']:,} answers ({load['rps']:,.0f}/s), {errors} errors, "
        f"p50 {load['p50_ms']:.1f} ms, p99 {load['p99_ms']:.1f} ms, max {load['max_ms']:.0f} ms.",
        f"- Load, default server (answer cache on, {hit:.1%} hits): {lc['ok']:,} answers "
        f"({lc['rps']:,.0f}/s), {errors_c} errors, p50 {lc['p50_ms']:.1f} ms, "
        f"p99 {lc['p99_ms']:.1f} ms, max {lc['max_ms']:.0f} ms.",
        f"- Targets: big-target p50 <= 50 ms: worst endpoint {worst_big:.1f} ms "
        f"({'met' if worst_big <= 50 else 'missed'}); small-target p50 <= 5 ms: worst "
        f"{worst_small:.1f} ms ({'met' if worst_small <= 5 else 'missed'}); under load 0 errors "
        f"and p99 <= 100 ms: cache off {errors} errors, p99 {load['p99_ms']:.0f} ms "
        f"({'met' if errors == 0 and load['p99_ms'] <= 100 else 'missed'}); default server "
        f"{errors_c} errors, p99 {lc['p99_ms']:.0f} ms "
        f"({'met' if errors_c == 0 and lc['p99_ms'] <= 100 else 'missed'}).",
        f"- Heavy targets (>= 100,000 backlinks) materialized before serving "
        f"(`inlink.query.heavy`): {r['prepare']['targets']} targets, "
        f"{r['prepare']['answers']} stored answers in {r['prepare']['seconds']:.0f} s; "
        f"ART indexes: {', '.join(r['prepare']['indexes']) or 'already there'} "
        f"({r['prepare']['index_seconds']:.1f} s). The same big-target answers computed live "
        f"(in process, no HTTP): summary {r['live_big']['summary']:.0f} ms, anchors "
        f"{r['live_big']['anchors']:.0f} ms, refdomains {r['live_big']['refdomains']:.0f} ms.",
        "- summary / raw reference aggregate: big "
        f"{lb['summary']['p50_ms'] / ref['big']['p50_ms']:.2f}x, small "
        f"{ls['summary']['p50_ms'] / ref['small']['p50_ms']:.2f}x.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    args = sys.argv[1:]
    res = run(quick="--quick" in args,
              index=args[args.index("--index") + 1] if "--index" in args else None)
    print(to_markdown(res))
    print(json.dumps(res, indent=1, default=str), file=sys.stderr)
