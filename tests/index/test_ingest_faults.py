"""Crash safety: kill -9 an ingest at random points; the file opens, no partial batch is
visible, the manifest matches the committed fetches, and a resume ends where a clean run does."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sources"))

from warcgen import many_pages, write_warc  # noqa: E402

from inlink.index.ingest import ingest  # noqa: E402
from inlink.index.store import Store  # noqa: E402
from inlink.index.writer import load_manifest  # noqa: E402

RUNS = 10
SEED = 20260101
BATCH = 20
ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import sys
from inlink.index.ingest import ingest
from inlink.index.store import Store
store = Store(sys.argv[1])
print("ready", flush=True)
ingest(store, [sys.argv[2]], batch_size=int(sys.argv[3]), workers=int(sys.argv[4]), compact=False)
store.close()
print("done", flush=True)
"""


def content_hash(store: Store) -> str:
    """Sorted rows of pages/links/link_events without batch ids, fetch ids and wall clocks."""
    h = hashlib.sha256()
    for sql in (
        "SELECT * EXCLUDE (fetch_id) FROM pages ORDER BY url_key",
        "SELECT * EXCLUDE (first_fetch_id, last_fetch_id, first_batch_id) FROM links "
        "ORDER BY link_id",
        "SELECT * EXCLUDE (batch_id) FROM link_events ORDER BY link_id, seen_at, event",
    ):
        for row in store.query(sql):
            h.update(repr(row).encode())
    return h.hexdigest()


def run_child(db: Path, warc: Path, workers: int, kill_after: float | None,
              timeout: float = 60.0) -> tuple[bool, float]:
    """Run the ingest in a subprocess; SIGKILL its process group `kill_after` seconds after it
    is ready. Returns (finished on its own, seconds from ready to exit/kill)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(warc), str(BATCH),
                             str(workers)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, start_new_session=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == b"ready", (line, proc.stderr.read() if proc.stderr else b"")
        ready = time.monotonic()
        try:
            proc.wait(timeout=kill_after if kill_after is not None else timeout)
            finished = True
        except subprocess.TimeoutExpired:
            finished = False
        elapsed = time.monotonic() - ready
        if not finished and kill_after is None:
            raise AssertionError("ingest child did not finish in time")
        if finished:
            assert proc.returncode == 0, proc.stderr.read() if proc.stderr else b""
        return finished, elapsed
    finally:
        # always: the child, and any pool workers it left behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def check_consistent(store: Store, job: str, size: int) -> int:
    """Every committed batch is whole; the manifest agrees with the fetches. Returns fetches."""
    batches = store.query(
        "SELECT b.batch_id, b.fetches, b.new_links, b.lost_links, "
        "(SELECT count(*) FROM fetches f WHERE f.batch_id = b.batch_id), "
        "(SELECT count(*) FROM link_events e WHERE e.batch_id = b.batch_id AND e.event = 'new'), "
        "(SELECT count(*) FROM link_events e WHERE e.batch_id = b.batch_id AND e.event = 'lost') "
        "FROM batches b ORDER BY 1")
    for batch_id, fetches, new, lost, got_f, got_new, got_lost in batches:
        assert (fetches, new, lost) == (got_f, got_new, got_lost), batch_id
    orphans = store.query("SELECT count(*) FROM fetches WHERE batch_id NOT IN "
                          "(SELECT batch_id FROM batches)")
    assert orphans == [(0,)]
    manifest = load_manifest(store, job)
    fetches = int(store.query("SELECT count(*) FROM fetches")[0][0])
    if manifest is None:
        assert fetches == 0 and batches == []
        return 0
    position = int(manifest["position"])
    assert 0 < position <= size
    assert manifest["records_ok"] == fetches and manifest["records_bad"] == 0
    beyond = store.query("SELECT count(*) FROM fetches WHERE evidence_offset >= ?", [position])
    assert beyond == [(0,)]
    assert manifest["done"] == (position == size)
    return fetches


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, float]:
    folder = tmp_path_factory.mktemp("faults")
    warc = folder / "big.warc.gz"
    write_warc(warc, many_pages(400, links_per_page=25))
    clean = folder / "clean.duckdb"
    finished, seconds = run_child(clean, warc, 0, None)
    assert finished
    with Store(clean) as store:
        assert store.counts()["fetches"] == 400
        return warc, content_hash(store), seconds


def test_kill_at_random_points_then_resume(archive: tuple[Path, str, float],
                                           tmp_path: Path) -> None:
    warc, expected, seconds = archive
    job = f"ingest:{hashlib.sha256(warc.read_bytes()).hexdigest()}"
    size = warc.stat().st_size
    rng = random.Random(SEED)
    partial = 0
    for run in range(RUNS):
        db = tmp_path / f"run{run}.duckdb"
        workers = 2 if run % 5 == 4 else 0
        kills = 2 if run % 2 else 1
        for _ in range(kills):
            run_child(db, warc, workers, kill_after=rng.uniform(0.0, seconds * 1.1))
            with Store(db) as store:  # must open after the kill
                done = check_consistent(store, job, size)
                partial += 0 < done < 400
        with Store(db) as store:
            summary = ingest(store, [warc], batch_size=BATCH, workers=0, compact=False)
            assert summary.errors == []
            assert check_consistent(store, job, size) == 400
            assert content_hash(store) == expected, f"run {run}"
    assert partial >= 3  # the kills did land mid-ingest
