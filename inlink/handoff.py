"""The CLI's side of the server's jobs: when `inlink serve` holds the index file, `inlink
crawl`, `ingest` and `rank` hand their work to it instead of failing on the file's lock.

The server file beside the index (`<db>.server`, inlink.api.admin) gives the server's PID,
URL and admin token. The CLI submits the job (POST /admin/jobs), follows it (GET every
`POLL_SECONDS`), shows its progress and prints its result exactly as if it had run the work
itself; ^C cancels the job in the server (what was committed is kept, and the same command
resumes it). Only the URL the server wrote is called, without proxies.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inlink.errors import InlinkError, InvalidInput

POLL_SECONDS = 0.5
TIMEOUT = 30.0               # one HTTP call to the server
# No proxy: the server is this machine's (its URL came from the server file).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class HandoffError(InlinkError):
    """The server holding the index could not take or finish the work."""


@dataclass(frozen=True, slots=True)
class Server:
    pid: int
    url: str
    token: str


def server_file(db: Path) -> Path:
    """Where a server holding `db` says how to reach it (written by inlink.api.admin)."""
    return db.with_name(db.name + ".server")


def find_server(db: Path) -> Server | None:
    """The live server that says it holds `db`, or None (no file, a dead PID, another db)."""
    try:
        info = json.loads(server_file(db).read_text(encoding="utf-8"))
        pid, url, token = int(info["pid"]), str(info["url"]), str(info["token"])
        same_db = Path(info["db"]) == db.resolve()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not same_db or not _alive(pid) or not url.startswith(("http://", "https://")):
        return None
    return Server(pid, url.rstrip("/"), token)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def call(server: Server, method: str, path: str, body: dict[str, Any] | None = None
         ) -> dict[str, Any]:
    """One admin call; the server's error envelope becomes a HandoffError (or InvalidInput
    for a 400, so the CLI exits 2 as it would have on the same bad input)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=data, method=method, headers={
        "Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
    try:
        with _OPENER.open(request, timeout=TIMEOUT) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read())["error"]
            message, param = str(error["message"]), error.get("param")
        except (ValueError, KeyError, TypeError):
            message, param = f"HTTP {exc.code}", None
        if exc.code == 400:
            raise InvalidInput(str(param or "request"), message.removeprefix(
                f"{param}: ")) from None
        raise HandoffError(f"the server at {server.url} refused the job: {message}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise HandoffError(f"the server at {server.url} (PID {server.pid}) holds the index "
                           f"but did not answer: {exc}") from None


def run_job(server: Server, body: dict[str, Any],
            on_progress: Callable[[dict[str, Any]], None] | None = None,
            poll: float = POLL_SECONDS) -> dict[str, Any]:
    """Submit a job and wait for its end; returns its result. A failed or cancelled job is
    a HandoffError; ^C cancels the job in the server and re-raises."""
    job = call(server, "POST", "/admin/jobs", body)["job"]
    path = f"/admin/jobs/{job['id']}"
    try:
        while job["state"] not in ("done", "failed", "cancelled"):
            time.sleep(poll)
            job = call(server, "GET", path)["job"]
            if on_progress is not None and job["progress"]:
                on_progress(job["progress"])
    except KeyboardInterrupt:
        try:
            call(server, "DELETE", path)
        finally:
            raise KeyboardInterrupt from None
    if job["state"] != "done":
        raise HandoffError(f"job {job['id']} ({job['kind']}) in the server at {server.url} "
                           f"{job['state']}: {job['error']}")
    result: dict[str, Any] = job["result"]
    return result


__all__ = ["HandoffError", "Server", "call", "find_server", "run_job", "server_file"]
