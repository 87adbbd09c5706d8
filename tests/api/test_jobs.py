"""The server's jobs and admin surface (`/admin/jobs`, `/admin/keys`), and the CLI handing
its work to a running server (inlink.handoff): the index a job builds is the index the CLI
would have built itself."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # see conftest.py
    from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sources"))

from warcgen import many_pages, write_warc  # noqa: E402

from inlink import handoff  # noqa: E402
from inlink.api import admin  # noqa: E402
from inlink.api.app import create_app  # noqa: E402
from inlink.api.jobs import JobRunner, parse_job  # noqa: E402
from inlink.cli import app as cli  # noqa: E402
from inlink.demo import _ApiServer  # noqa: E402
from inlink.errors import InvalidInput  # noqa: E402
from inlink.index.ingest import ingest  # noqa: E402
from inlink.index.store import Store, StoreLocked  # noqa: E402
from inlink.index.writer import load_manifest  # noqa: E402
from inlink.settings import Settings  # noqa: E402

DEADLINE = 60.0              # seconds any one job may take in these tests


def rows_hash(store: Store) -> str:
    """The links and pages an ingest wrote, without ids that depend on batching."""
    h = hashlib.sha256()
    for sql in ("SELECT * EXCLUDE (first_fetch_id, last_fetch_id, first_batch_id) FROM links "
                "ORDER BY link_id",
                "SELECT * EXCLUDE (fetch_id) FROM pages ORDER BY url_key"):
        for row in store.query(sql):
            h.update(repr(row).encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jobs") / "pages.warc.gz"
    write_warc(path, many_pages(120, links_per_page=20))
    return path


@pytest.fixture(scope="module")
def expected(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The rows of the archive ingested by the CLI's own path (no server)."""
    with Store(tmp_path_factory.mktemp("direct") / "direct.duckdb") as store:
        ingest(store, [archive], compact=False)
        return rows_hash(store)


def settings_for(db: Path) -> Settings:
    return Settings(db=db, refresh_aggregates=False)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(settings_for(tmp_path / "index.duckdb"))
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {app.state.admin_token}"
        yield c


def wait(client: TestClient, job_id: str) -> dict[str, Any]:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        job: dict[str, Any] = client.get(f"/admin/jobs/{job_id}").json()["job"]
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not end in {DEADLINE} s")


# ---------------------------------------------------------------- the admin surface

def test_admin_calls_need_the_token(client: TestClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"},
                    {"Authorization": "Token " + client.app.state.admin_token}):
        r = client.get("/admin/jobs", headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["param"] == "authorization"
    assert client.get("/admin/jobs").json() == {"jobs": []}


def test_admin_token_from_the_environment(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INLINK_ADMIN_TOKEN", "s3cret-admin")
    with TestClient(create_app(settings_for(tmp_path / "i.duckdb"))) as c:
        assert c.get("/admin/jobs", headers={"Authorization": "Bearer s3cret-admin"}
                     ).status_code == 200


@pytest.mark.parametrize(("body", "param"), [
    ({"kind": "dance"}, "kind"),
    ({"files": ["/x"]}, "kind"),
    ({"kind": "ingest", "files": ["relative.warc.gz"]}, "files"),
    ({"kind": "ingest", "files": ["/no/such/file.warc.gz"]}, "files"),
    ({"kind": "ingest", "files": []}, "files"),
    ({"kind": "ingest", "files": ["/etc/hostname"], "workers": -1}, "workers"),
    ({"kind": "ingest", "files": ["/etc/hostname"], "batch_size": True}, "batch_size"),
    ({"kind": "ingest", "files": ["/etc/hostname"], "seeds": ["http://a.example/"]}, "seeds"),
    ({"kind": "crawl", "seeds": []}, "seeds"),
    ({"kind": "crawl", "seeds": ["http://a.example/"], "as_of": "2026-13-01"}, "as_of"),
    ({"kind": "crawl", "seeds": ["http://a.example/"], "scope": "planet"}, "scope"),
    ({"kind": "crawl", "seeds": ["http://a.example/"], "delay": -1}, "delay"),
    ({"kind": "crawl", "seeds": ["http://a.example/"], "resolve": {"a": ["1.2.3.4", 0]}},
     "resolve"),
    ({"kind": "rank", "as_of": 20260101}, "as_of"),
])
def test_bad_jobs_are_refused_with_the_field(client: TestClient, body: dict[str, Any],
                                             param: str) -> None:
    r = client.post("/admin/jobs", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert client.get("/admin/jobs").json() == {"jobs": []}


def test_bad_bodies_and_unknown_jobs(client: TestClient) -> None:
    r = client.post("/admin/jobs", content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["param"] == "body"
    r = client.post("/admin/jobs", content=b"[1, 2]")
    assert r.status_code == 400 and r.json()["error"]["param"] == "body"
    assert client.get("/admin/jobs/nope").status_code == 404
    assert client.delete("/admin/jobs/nope").status_code == 404
    r = client.get("/admin/nothing")
    assert r.status_code == 404 and "error" in r.json()
    assert client.put("/admin/jobs").status_code == 405


def test_an_ingest_job_builds_what_the_cli_builds(client: TestClient, archive: Path,
                                                  expected: str) -> None:
    r = client.post("/admin/jobs", json={"kind": "ingest", "files": [str(archive)]})
    assert r.status_code == 202
    job = wait(client, r.json()["job"]["id"])
    assert job["state"] == "done", job
    assert job["result"]["files"][0]["status"] == "ingested"
    assert job["result"]["files"][0]["pages"] == 120
    assert job["progress"]["position"] == job["progress"]["size"] == archive.stat().st_size
    store: Store = client.app.state.store
    assert rows_hash(store) == expected
    # The same file again is a no-op, as on the command line.
    again = wait(client, client.post("/admin/jobs", json={
        "kind": "ingest", "files": [str(archive)]}).json()["job"]["id"])
    assert again["result"]["files"][0]["status"] == "already_done"
    listed = client.get("/admin/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [again["id"], job["id"]]


def test_the_api_answers_with_a_jobs_batches(client: TestClient, archive: Path) -> None:
    key = client.post("/admin/keys", json={"dialect": "data", "credits": 10_000}).json()["key"]
    target = many_pages(120, links_per_page=20)[0].url.split("/")[2]
    url = f"/v1/backlinks/summary?apikey={key}&target={target}&mode=host"
    before = client.get(url)
    assert before.status_code == 200 and before.json()["summary"][0]["backlinks"] == 0
    wait(client, client.post("/admin/jobs", json={"kind": "ingest",
                                                  "files": [str(archive)]}).json()["job"]["id"])
    store: Store = client.app.state.store
    live = store.query("SELECT count(*) FROM links WHERE live AND NOT internal "
                       "AND target_host = ?", [target])[0][0]
    after = client.get(url)
    assert after.json()["summary"][0]["backlinks"] == live > 0   # not the cached answer
    keys = client.get("/admin/keys").json()["keys"]
    assert [(k["key_prefix"], k["balance"]) for k in keys] == [
        (key[:8], 10_000 - 2 * int(before.headers["x-credits-cost"]))]


def test_admin_keys_are_checked(client: TestClient) -> None:
    assert client.post("/admin/keys", json={"dialect": "nope"}).json()["error"]["param"] \
        == "--dialect"
    assert client.post("/admin/keys", json={"dialect": "data", "credits": -5}
                       ).status_code == 400
    assert client.post("/admin/keys", json={"dialect": "data", "credit": 5}
                       ).json()["error"]["param"] == "credit"


# ---------------------------------------------------------------- the runner

def test_parse_job_normalizes() -> None:
    kind, params = parse_job({"kind": "crawl", "seeds": ["http://a.example/"],
                              "resolve": {"a.example": ["127.0.0.1", 8080]}, "delay": 0})
    assert kind == "crawl"
    assert params["resolve"] == {"a.example": ("127.0.0.1", 8080)}
    assert params["delay"] == 0.0 and params["scope"] == "domain" and params["dns"] is True
    with pytest.raises(InvalidInput):
        parse_job({"kind": "rank", "extra": 1})


def test_a_cancelled_ingest_keeps_its_batches_and_resumes(tmp_path: Path, archive: Path,
                                                          expected: str) -> None:
    with Store(tmp_path / "c.duckdb") as store:
        runner = JobRunner(store, settings_for(store.path))
        runner.start()
        try:
            # 120 pages, one per batch: the job is caught after a few commits.
            job = runner.submit("ingest", {"files": [str(archive)], "workers": 0,
                                           "batch_size": 1})
            queued = runner.submit("rank", {"as_of": None})
            end = time.monotonic() + DEADLINE
            while not (runner.get(job.id) or {}).get("progress") and time.monotonic() < end:
                time.sleep(0.001)
            assert runner.cancel(queued.id)["state"] == "cancelled"   # never started
            runner.cancel(job.id)
            while not job.finished and time.monotonic() < end:
                time.sleep(0.01)
            assert job.state == "cancelled", job
            name = f"ingest:{hashlib.sha256(archive.read_bytes()).hexdigest()}"
            manifest = load_manifest(store, name)
            assert manifest is not None and not manifest["done"]
            assert 0 < manifest["position"] < archive.stat().st_size
            committed = store.query("SELECT count(*) FROM pages")[0][0]
            assert 0 < committed < 120
            # The same job again resumes where the last committed batch ended.
            again = runner.submit("ingest", {"files": [str(archive)], "workers": 0,
                                             "batch_size": None})
            while not again.finished and time.monotonic() < end:
                time.sleep(0.01)
            assert again.state == "done" and again.result is not None
            assert again.result["files"][0]["status"] == "resumed"
            assert rows_hash(store) == expected
        finally:
            runner.stop()
        assert runner.list()[0]["state"] == "done"


def test_stopping_the_runner_cancels_what_waits(tmp_path: Path, archive: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        runner = JobRunner(store, settings_for(store.path))
        # Not started: both jobs wait.
        first = runner.submit("ingest", {"files": [str(archive)], "workers": 0,
                                         "batch_size": None})
        second = runner.submit("rank", {"as_of": None})
        runner.stop()
        assert first.state == second.state == "cancelled"
        with pytest.raises(Exception, match="stopping"):
            runner.submit("rank", {"as_of": None})


# ---------------------------------------------------------------- hand-off from the CLI

def test_the_cli_hands_its_work_to_the_server(tmp_path: Path, archive: Path,
                                              expected: str) -> None:
    db = tmp_path / "served.duckdb"
    runner = CliRunner()
    with _ApiServer(settings_for(db), 0, Console(file=io.StringIO())) as base:
        info = handoff.find_server(db)
        assert info is not None and info.url == base and info.pid == os.getpid()
        assert admin.server_file(db).stat().st_mode & 0o077 == 0   # the token is private
        result = runner.invoke(cli, ["--db", str(db), "ingest", str(archive)])
        assert result.exit_code == 0, result.output
        assert "handing the work to it" in result.stderr
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary["files"][0]["status"] == "ingested"
        assert summary["files"][0]["pages"] == 120
        result = runner.invoke(cli, ["--db", str(db), "keys", "create", "--dialect", "data",
                                     "--credits", "7"])
        assert result.exit_code == 0, result.output
        key = result.stdout.strip().splitlines()[-1]
        listed = runner.invoke(cli, ["--db", str(db), "keys", "list"])
        assert json.loads(listed.stdout.strip())["key_prefix"] == key[:8]
        missing = runner.invoke(cli, ["--db", str(db), "rank", "--as-of", "2026-02-30"])
        assert isinstance(missing.exception, InvalidInput)   # refused before any hand-off
        result = runner.invoke(cli, ["--db", str(db), "rank", "--as-of", "2026-01-02"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout.strip().splitlines()[-1])["day"] == "2026-01-02"
    assert not admin.server_file(db).exists()      # removed when the server stopped
    assert handoff.find_server(db) is None
    with Store(db) as store:                        # what the server wrote, as the CLI would
        assert rows_hash(store) == expected
        assert store.query("SELECT count(*) FROM rank_runs")[0][0] == 1


def test_a_stale_server_file_is_ignored(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    admin.server_file(db).write_text(json.dumps({"pid": 2 ** 22 + 12345, "url": "http://x",
                                                 "token": "t", "db": str(db)}))
    assert handoff.find_server(db) is None
    admin.server_file(db).write_text("{broken")
    assert handoff.find_server(db) is None
    admin.server_file(db).write_text(json.dumps({"pid": os.getpid(), "url": "http://x",
                                                 "token": "t", "db": "/other.duckdb"}))
    assert handoff.find_server(db) is None


def test_a_lock_held_by_another_cli_is_a_clear_error(tmp_path: Path) -> None:
    """No server file: the lock's holder is not a server, so there is no one to hand to."""
    db = tmp_path / "held.duckdb"
    Store(db).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from inlink.index.store import Store; "
         "s = Store(sys.argv[1]); print('open', flush=True); time.sleep(30)", str(db)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreLocked, match=f"PID {holder.pid}"):
            Store(db)
        result = CliRunner().invoke(cli, ["--db", str(db), "rank"])
        assert result.exit_code != 0
        assert isinstance(result.exception, StoreLocked)
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()


# ---------------------------------------------------------------- crawl jobs, against truth

def test_crawl_jobs_match_the_worlds_truth_even_when_cancelled(client: TestClient) -> None:
    """Day 1 crawled by a job; day 2 by a job cancelled mid-crawl and then resumed by the
    same job again: the index equals the synthetic web's truth of day 2."""
    from inlink.world import World, serve_in_thread

    world = World(seed=11, hosts=40, days=2)
    store: Store = client.app.state.store
    with serve_in_thread(world, 1, slow_delay=0.2, trickle_max=0.5,
                         idle_timeout=3.0) as served:
        body = {"kind": "crawl", "seeds": world.seeds(), "scope": "any", "delay": 0.01,
                "dns": False, "resolve": {h: list(t) for h, t in served.resolve.items()}}
        day1 = wait(client, client.post("/admin/jobs", json={
            **body, "as_of": world.date_of(1).isoformat()}).json()["job"]["id"])
        assert day1["state"] == "done", day1
        assert day1["result"]["pages_ok"] > 0
        served.set_day(2)
        job = client.post("/admin/jobs", json={**body, "as_of": world.date_of(2).isoformat()}
                          ).json()["job"]
        end = time.monotonic() + DEADLINE
        while (client.get(f"/admin/jobs/{job['id']}").json()["job"]["progress"]
               .get("committed", 0) == 0 and time.monotonic() < end):
            time.sleep(0.01)
        client.delete(f"/admin/jobs/{job['id']}")
        cancelled = wait(client, job["id"])
        assert cancelled["state"] in ("cancelled", "done")   # it may have just finished
        resumed = wait(client, client.post("/admin/jobs", json={
            **body, "as_of": world.date_of(2).isoformat()}).json()["job"]["id"])
        assert resumed["state"] == "done", resumed
        if cancelled["state"] == "cancelled":
            assert resumed["result"]["resumed"] is True
    live = set(store.query("SELECT source_key, target_key, kind, anchor, image_url "
                           "FROM links WHERE live"))
    assert live == {link.identity for link in world.live_links(2)}
    events = set(store.query(
        "SELECT day, source_key, target_key, kind, anchor, image_url, event, reason "
        "FROM link_events e JOIN links USING (link_id, source_key, target_key)"))
    assert events == {(e.date, e.source_key, e.target_key, e.kind, e.anchor, e.image_url,
                       e.event, e.reason) for e in world.events(2)}
