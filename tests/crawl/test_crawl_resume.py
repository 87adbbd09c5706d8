"""An interrupted crawl (kill -9 at random points) resumes to exactly the rows of an
uninterrupted one, without refetching committed pages."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from loopweb import Host, html, page_with_links, redirect, serve

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SEEDS = ["http://one.test/", "http://two.test/"]


def site() -> list[Host]:
    hosts = []
    for name, other in (("one.test", "two.test"), ("two.test", "one.test")):
        routes: dict[str, object] = {"/robots.txt": (200, [], b"User-agent: *\nDisallow: /no\n")}
        routes["/"] = page_with_links(*[f"/p{i}" for i in range(40)], "/no", "/r0")
        for i in range(40):
            routes[f"/p{i}"] = page_with_links(f"/p{(i * 7) % 40}", f"http://{other}/p{i}",
                                               f"/q{i}")
            routes[f"/q{i}"] = html(f"<a href='http://ext{i % 5}.example/'>x{i}</a>")
        routes["/r0"] = redirect("/r1")
        routes["/r1"] = redirect(f"http://{other}/p3")
        hosts.append(Host(name, routes, delay=0.02))  # type: ignore[arg-type]
    return hosts


def table_digest(db: Path) -> str:
    """Hash of the sorted rows, without ids, batch numbers and wall-clock columns."""
    queries = {
        "pages": "SELECT * EXCLUDE (fetch_id, link_ids, link_hashes), list_sort(link_ids) "
                 "FROM pages",
        "fetches": "SELECT * EXCLUDE (fetch_id, batch_id) FROM fetches",
        "links": "SELECT * EXCLUDE (first_fetch_id, last_fetch_id, first_batch_id) FROM links",
        "link_events": "SELECT * EXCLUDE (batch_id) FROM link_events",
    }
    h = hashlib.sha256()
    with duckdb.connect(str(db), read_only=True) as conn:
        for name, sql in queries.items():
            rows = sorted(repr(r) for r in conn.execute(sql).fetchall())
            h.update(f"{name}:{len(rows)}\n".encode())
            for r in rows:
                h.update(r.encode())
    return h.hexdigest()


def done(db: Path) -> bool:
    if not db.exists():
        return False
    with duckdb.connect(str(db), read_only=True) as conn:
        try:
            rows = conn.execute("SELECT done FROM manifests").fetchall()
        except duckdb.CatalogException:   # killed before the schema was created
            return False
    return bool(rows and rows[0][0])


def start(db: Path, resolve: dict[str, tuple[str, int | None]]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [sys.executable, str(HERE / "resume_runner.py"), str(db), json.dumps(resolve),
         ",".join(SEEDS)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.slow
def test_kill_and_resume_gives_the_same_rows(tmp_path: Path) -> None:
    hosts = site()
    with serve(hosts) as web:
        reference = tmp_path / "reference.duckdb"
        started = time.monotonic()
        full = finish(start(reference, web.resolve))
        duration = time.monotonic() - started
        want = table_digest(reference)
        assert full["pages"] == 2 * (1 + 40 + 40 + 2) and not full["resumed"]
        rng = random.Random(20260101)
        resumed = 0
        for run in range(14):
            if resumed >= 5:
                break
            for h in hosts:
                h.log.clear()
            db = tmp_path / f"run{run}.duckdb"
            proc = start(db, web.resolve)
            time.sleep(rng.uniform(0.5, max(duration * 0.9, 0.8)))  # start-up + some batches
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
            if proc.returncode == 0 or done(db):
                continue    # finished before the kill: a re-run would be a new crawl
            fetched_before = sum(len(h.log) for h in hosts)
            result = finish(start(db, web.resolve))
            resumed += bool(result["resumed"])
            assert table_digest(db) == want, f"run {run} differs"
            # committed pages were not fetched again: total fetches stay close to one crawl
            total = sum(len(h.log) for h in hosts)
            assert total - fetched_before < 2 * 85, (run, total, fetched_before)
        assert resumed >= 5, "kills should land after the first committed batch"
