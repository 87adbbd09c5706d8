"""The command line: every command has help, documented names and settings, real exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from inlink.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _commands(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for info in group.registered_commands:
        name = info.name or (info.callback.__name__ if info.callback else "")
        found.append((*prefix, name))
    for sub in group.registered_groups:
        assert sub.name is not None and sub.typer_instance is not None
        found.append((*prefix, sub.name))
        found.extend(_commands(sub.typer_instance, (*prefix, sub.name)))
    return found


COMMANDS = _commands(app)


def test_the_design_names_are_there() -> None:
    names = {" ".join(c) for c in COMMANDS}
    for expected in ("demo", "crawl", "ingest", "rank", "rank explain", "world", "world serve",
                     "world export", "bench", "url"):
        assert expected in names


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_is_documented(command: tuple[str, ...]) -> None:
    docs = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert f"inlink {' '.join(command)}" in docs


def test_every_setting_is_documented() -> None:
    docs = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "inlink").rglob("*.py"))
    for name in sorted(set(re.findall(r"INLINK_[A-Z_]+", sources))):
        assert name in docs, f"{name} is read by the code but not documented in docs/"


def test_url_command_prints_json_and_fails_on_bad_input() -> None:
    result = runner.invoke(app, ["url", "HTTP://Www.Example.COM:80/a/../b#x"])
    assert result.exit_code == 0
    row = json.loads(result.stdout)
    assert row["key"] == "http://www.example.com/b" and row["domain"] == "example.com"
    bad = runner.invoke(app, ["url", "not a url"])
    assert bad.exit_code == 2
    assert "error" in json.loads(bad.stdout)


def test_console_script_runs_and_reports_errors_without_traceback(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "inlink.cli", "--version"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("inlink ")
    missing = subprocess.run(
        [sys.executable, "-m", "inlink.cli", "--db", str(tmp_path / "none.duckdb"), "rank",
         "explain", "example.com"], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr and "no index" in missing.stderr


def test_ingest_rejects_a_missing_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "inlink.cli", "--db", str(tmp_path / "x.duckdb"), "ingest",
         str(tmp_path / "nope.warc.gz")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_serve_logs_requests_with_the_key_masked(tmp_path: Path) -> None:
    """`inlink serve`: uvicorn's access log (which prints `?apikey=KEY` as sent) is off and
    inlink's masked one is on; `--no-access-log` turns it off."""
    import http.client
    import os
    import signal
    import socket
    import time

    db = tmp_path / "i.duckdb"
    inlink = [sys.executable, "-m", "inlink.cli", "--db", str(db)]
    key = subprocess.run([*inlink, "keys", "create", "--dialect", "data", "--credits", "1000"],
                         capture_output=True, text=True, check=True, timeout=120
                         ).stdout.strip().splitlines()[-1]
    env = {**os.environ, "INLINK_REFRESH_AGGREGATES": "0"}
    for flags, expect_lines in (([], True), (["--no-access-log"], False)):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([*inlink, "serve", "--port", str(port), *flags], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", f"/v1/backlinks/metrics?target=example.com&apikey={key}")
                    assert conn.getresponse().status == 200
                    conn.close()
                    break
                except (ConnectionError, OSError):
                    assert proc.poll() is None and time.monotonic() < deadline
                    time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        assert key not in out and key not in err
        logged = [line for line in out.splitlines() if "/v1/backlinks/metrics" in line]
        if expect_lines:
            assert len(logged) == 1 and "apikey=*** HTTP/1.1\" 200" in logged[0], out
        else:
            assert logged == [], out
