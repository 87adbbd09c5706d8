"""Asynchronous backlink exports (seed 001 /export, /export/status and the .csv.gz download).

A request becomes a task row in the index file; one worker thread in the server runs queued
tasks in order, streaming every backlink of the target through the query layer into a gzipped
CSV beside the index. The task row is the source of truth, so a server restarted mid-export
picks its unfinished tasks up again.

Rules (docs/api.md, docs/compat.md):
- One unfinished task per key: a second request while one is queued or processing is
  `rejected` and costs nothing.
- Submitting charges the key in the same transaction that checks for an unfinished task and
  inserts the new one, so concurrent requests cannot both start or overspend.
- A task is visible only to the key that made it (anyone else's status call says `unknown`);
  its download URL carries an unguessable token derived from the server secret and the task,
  handed out only to that key (the S3 pre-signed URL pattern), and a download that also sends
  an API key must send the owner's.
- Finished files are kept `ttl` (default 7 days); then the task is `unknown` and the file gone.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import hmac
import io
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from inlink import query as q
from inlink.api.keys import Ledger
from inlink.errors import InlinkError
from inlink.index.store import Store, run

log = logging.getLogger("inlink.api.exports")

QUEUED = "queued_for_processing"
PROCESSING = "processing"
COMPLETE = "complete"
REJECTED = "rejected"
UNKNOWN = "unknown"
FAILED = "failed"            # inlink's addition: the export itself failed (docs/compat.md)

DEFAULT_TTL = dt.timedelta(days=7)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_exports (
    task_id     VARCHAR PRIMARY KEY,  -- UUID v4
    key_hash    VARCHAR NOT NULL,     -- the owner (api_keys.key_hash)
    target      VARCHAR NOT NULL,     -- as given
    mode        VARCHAR NOT NULL,     -- domain | host | url
    status      VARCHAR NOT NULL,     -- queued_for_processing | processing | complete | failed
    file_name   VARCHAR NOT NULL,     -- the download's name, e.g. example.com-1700000000000.csv.gz
    rows        BIGINT,
    bytes       BIGINT,
    error       VARCHAR,
    created_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
)
"""

#: Columns of the CSV: the /all row of seed 001, then what a bulk user also wants.
CSV_COLUMNS = ("url_from", "url_to", "title", "anchor", "alt", "nofollow", "image",
               "image_source", "inlink_rank", "domain_inlink_rank", "first_seen",
               "last_visited", "link_type", "ugc", "sponsored", "source_ip",
               "source_country")


@dataclass(frozen=True, slots=True)
class Task:
    task_id: str
    key_hash: str
    target: str
    mode: str
    status: str
    file_name: str
    rows: int | None
    error: str | None
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Submitted:
    """The answer to an export request: the task (or the reason it was refused)."""

    status: str                  # queued_for_processing | rejected
    task_id: str | None          # the new task; for `rejected`, None
    cost: int                    # what the key was charged (0 when rejected)
    remaining: int               # the key's balance afterwards


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _safe_name(target: str) -> str:
    """A file-name stem from a target: its host-ish part, only [A-Za-z0-9.-]."""
    stem = re.sub(r"^[a-z][a-z0-9+.-]*://", "", target.strip().lower())
    stem = re.sub(r"[^a-z0-9.-]+", "_", stem.split("/")[0])[:100].strip("._-")
    return stem or "export"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """Text from the web as a CSV cell that spreadsheets will not run as a formula (OWASP
    "CSV injection"): a leading = + - @ tab or CR gets a ' before it."""
    return "'" + text if text.startswith(_FORMULA_START) else text


#: The Backlink fields `_csv_row` reads (BacklinkQuery.fields).
EXPORT_FIELDS = frozenset({"source_url", "target_url", "source_title", "anchor_text",
                           "nofollow", "kind", "image_url", "source_inlink_rank",
                           "source_domain_inlink_rank", "first_seen", "last_seen", "ugc",
                           "sponsored", "source_ip", "source_country"})


def _csv_row(b: q.Backlink) -> tuple[Any, ...]:
    return (b.source_url, b.target_url, _cell(b.source_title or ""), _cell(b.anchor_text), "",
            "true" if b.nofollow else "false", "true" if b.kind == "image" else "false",
            b.image_url or "", b.source_inlink_rank, b.source_domain_inlink_rank,
            b.first_seen.date().isoformat(), b.last_seen.date().isoformat(),
            "redirect" if b.kind in ("redirect", "meta") else "href",
            "true" if b.ugc else "false", "true" if b.sponsored else "false",
            b.source_ip or "", b.source_country or "")


def write_csv_gz(rows: Iterable[q.Backlink], path: Path) -> tuple[int, int]:
    """Stream backlinks into a gzipped CSV at `path` (header first); returns (rows, bytes).

    Written to a `.part` file and renamed when complete, so a download never sees half a file.
    """
    part = path.with_name(path.name + ".part")
    n = 0
    with open(part, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6,
                                                 mtime=0) as gz:
        text = io.TextIOWrapper(gz, encoding="utf-8", newline="")
        w = csv.writer(text)
        w.writerow(CSV_COLUMNS)
        for b in rows:
            w.writerow(_csv_row(b))
            n += 1
        text.flush()
        text.detach()
    os.replace(part, path)
    return n, path.stat().st_size


class Exports:
    """The export tasks of one server: submit, status, the download path, and the worker."""

    def __init__(self, store: Store, ledger: Ledger, directory: Path, secret: bytes, *,
                 ttl: dt.timedelta = DEFAULT_TTL, page_size: int = 10_000,
                 clock: Callable[[], dt.datetime] = _now) -> None:
        self.store = store
        self.ledger = ledger
        self.dir = directory
        self.secret = secret
        self.ttl = ttl
        self.page_size = page_size
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._running = threading.Event()   # cleared: the worker claims nothing (pause)
        self._running.set()
        self._claiming = threading.Lock()   # held while a task is being claimed
        self._thread: threading.Thread | None = None
        store.write(lambda conn: run(conn, _SCHEMA))

    # -- lifecycle

    def start(self) -> None:
        """Start the worker; tasks a previous server left unfinished run again."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.store.write(lambda conn: run(
            conn, "UPDATE api_exports SET status = ? WHERE status = ?", [QUEUED, PROCESSING]),
            data=False)
        self._thread = threading.Thread(target=self._work, name="inlink-exports", daemon=True)
        self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def pause(self) -> None:
        """Stop claiming queued tasks (the one being written finishes); for maintenance.
        Once this returns, no task is claimed until `resume()`."""
        with self._claiming:
            self._running.clear()

    def resume(self) -> None:
        self._running.set()
        self._wake.set()

    # -- the API side

    def submit(self, key_hash: str, target: q.Target, cost: int) -> Submitted:
        """Queue an export of `target` for a key, charging `cost`; or refuse it while the key
        has an unfinished task (`rejected`, not charged). OutOfCredits when the balance is
        short (nothing queued, nothing charged). The busy check, the charge and the insert
        happen under the store's single write lock, so two requests cannot both start."""
        task_id = str(uuid.uuid4())
        now = self.clock()
        name = f"{_safe_name(target.given)}-{int(now.timestamp() * 1000)}.csv.gz"

        charged = False

        def fn(conn: duckdb.DuckDBPyConnection) -> Submitted:
            nonlocal charged
            busy = run(conn, "SELECT task_id FROM api_exports WHERE key_hash = ? AND "
                             "status IN (?, ?) LIMIT 1", [key_hash, QUEUED, PROCESSING])
            if busy:
                known = self.ledger.peek(key_hash)
                return Submitted(REJECTED, None, 0, known[1] if known else 0)
            left = self.ledger.charge(key_hash, cost)  # OutOfCredits: nothing inserted
            charged = True
            run(conn, "INSERT INTO api_exports (task_id, key_hash, target, mode, status, "
                      "file_name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [task_id, key_hash, target.given, target.mode.value, QUEUED, name, now])
            return Submitted(QUEUED, task_id, cost, left)

        try:
            out = self.store.write(fn, data=False)
        except BaseException:
            if charged:  # the transaction rolled back: give the charge back
                self.ledger.refund(key_hash, cost)
            raise
        if out.status == QUEUED:
            self._wake.set()
        return out

    def status(self, key_hash: str, task_id: str) -> Task | None:
        """The key's own task, or None (unknown id, someone else's, or expired: the worker
        deletes expired tasks, a status call only reads)."""
        rows = self.store.query(
            "SELECT task_id, key_hash, target, mode, status, file_name, rows, error, "
            "created_at FROM api_exports WHERE task_id = ? AND key_hash = ? AND NOT "
            "(status IN (?, ?) AND finished_at < ?)",
            [task_id, key_hash, COMPLETE, FAILED, self.clock() - self.ttl])
        return Task(*rows[0]) if rows else None

    def token(self, task_id: str) -> str:
        """The download token of a task: its id and an HMAC of it under the server secret."""
        mac = hmac.new(self.secret, b"export:" + task_id.encode(), hashlib.sha256).hexdigest()
        return f"{task_id}.{mac[:32]}"

    def download_path(self, token: str, file_name: str, key_hash: str | None) -> Path | None:
        """The finished file a download URL names, or None when the token is not genuine, the
        task is not complete, the name does not match, or an API key other than the owner's
        was sent."""
        task_id, _, _ = token.partition(".")
        if not hmac.compare_digest(token, self.token(task_id)):
            return None
        rows = self.store.query("SELECT key_hash, status, file_name FROM api_exports "
                                "WHERE task_id = ?", [task_id])
        if not rows:
            return None
        owner, status, name = (str(v) for v in rows[0])
        if status != COMPLETE or name != file_name:
            return None
        if key_hash is not None and not hmac.compare_digest(key_hash, owner):
            return None
        path = self.dir / f"{task_id}.csv.gz"
        return path if path.is_file() else None

    # -- the worker

    def _work(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=60.0)
            self._wake.clear()
            while not self._stop.is_set() and self._running.is_set():
                task = self._claim()
                if task is None:
                    break
                self._run(task)
            self._expire()

    def _claim(self) -> Task | None:
        """Mark the oldest queued task processing and return it (None: none, or paused)."""
        def fn(conn: duckdb.DuckDBPyConnection) -> Task | None:
            rows = run(conn, "SELECT task_id, key_hash, target, mode, status, file_name, rows, "
                             "error, created_at FROM api_exports WHERE status = ? "
                             "ORDER BY created_at, task_id LIMIT 1", [QUEUED])
            if not rows:
                return None
            run(conn, "UPDATE api_exports SET status = ? WHERE task_id = ?",
                [PROCESSING, rows[0][0]])
            return Task(*rows[0])

        with self._claiming:
            return self.store.write(fn, data=False) if self._running.is_set() else None

    def run_task(self, task: Task) -> tuple[int, int]:
        """Write the task's file: every live backlink of its target, newest first."""
        target = q.resolve_target(task.target, task.mode)
        bq = q.BacklinkQuery(target, order=(q.Order("first_seen"),), limit=self.page_size,
                             fields=EXPORT_FIELDS)
        rows = q.iter_backlinks(self.store, bq, page_size=self.page_size, secret=self.secret)
        return write_csv_gz(rows, self.dir / f"{task.task_id}.csv.gz")

    def _run(self, task: Task) -> None:
        try:
            n, size = self.run_task(task)
        except Exception as exc:  # the task fails, the server goes on
            log.exception("export %s failed", task.task_id)
            reason = str(exc) if isinstance(exc, InlinkError) else "internal error"
            self._finish(task.task_id, FAILED, error=reason)
        else:
            self._finish(task.task_id, COMPLETE, rows=n, size=size)

    def _finish(self, task_id: str, status: str, *, rows: int | None = None,
                size: int | None = None, error: str | None = None) -> None:
        self.store.write(lambda conn: run(
            conn, "UPDATE api_exports SET status = ?, rows = ?, bytes = ?, error = ?, "
                  "finished_at = ? WHERE task_id = ?",
            [status, rows, size, error, self.clock(), task_id]), data=False)

    def _expire(self) -> None:
        """Forget finished tasks older than the ttl, and delete their files."""
        cutoff = self.clock() - self.ttl

        def fn(conn: duckdb.DuckDBPyConnection) -> list[str]:
            return [str(r[0]) for r in run(
                conn, "DELETE FROM api_exports WHERE status IN (?, ?) AND finished_at < ? "
                      "RETURNING task_id", [COMPLETE, FAILED, cutoff])]

        for task_id in self.store.write(fn, data=False):
            (self.dir / f"{task_id}.csv.gz").unlink(missing_ok=True)

    def wait_idle(self, timeout: float) -> bool:
        """True once no task is queued or processing (tests, the demo)."""
        deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
        while dt.datetime.now() < deadline:
            rows = self.store.query("SELECT count(*) FROM api_exports WHERE status IN (?, ?)",
                                    [QUEUED, PROCESSING])
            if int(rows[0][0]) == 0:
                return True
            self._stop.wait(0.05)
        return False


__all__ = ["COMPLETE", "CSV_COLUMNS", "FAILED", "PROCESSING", "QUEUED", "REJECTED", "UNKNOWN",
           "Exports", "Submitted", "Task", "write_csv_gz"]
