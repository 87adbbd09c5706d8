"""`inlink demo` end to end: serve the world, crawl three days, rank, match the ground truth."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console

from inlink.api.admin import server_file
from inlink.demo import DEMO_DB, run_demo
from inlink.handoff import find_server
from inlink.settings import Settings


def test_demo_index_matches_the_world_truth(tmp_path: Path) -> None:
    out = io.StringIO()
    answers: dict[str, Any] = {}

    def on_ready(base: str, key: str) -> None:
        # the served API answers over real HTTP on loopback, with the demo key
        printed = out.getvalue()
        assert key in printed and base in printed
        for line in printed.splitlines():
            if "/v1/backlinks/summary?" in line:
                url = line.split("'")[1]
                with urllib.request.urlopen(url, timeout=10) as r:
                    answers["summary"] = json.loads(r.read())
        with urllib.request.urlopen(base + "/healthz", timeout=10) as r:
            answers["healthz"] = json.loads(r.read())
        # the CLI would hand its work to this server (docs/cli.md)
        server = find_server(tmp_path / DEMO_DB)
        answers["server_url"] = server.url if server is not None else None

    figures = run_demo(Settings(db=tmp_path / DEMO_DB), seed=3, hosts=60, duration=0,
                       console=Console(file=out, width=120), port=0, on_ready=on_ready)
    printed = out.getvalue()
    assert figures["links_match"] == 1 and figures["events_match"] == 1, printed
    assert figures["live_links"] == figures["truth_live_links"] > 1000
    assert figures["events"] == figures["truth_events"]
    for reason in ("page_not_found", "crawl_error", "redirect", "noindex", "link_removed"):
        assert reason in printed
    assert "curl --connect-to" in printed
    assert answers["healthz"]["status"] == "ok"
    (row,) = answers["summary"]["summary"]
    assert row["backlinks"] > 0 and row["refdomains"] > 0
    assert printed.count("curl -s ") >= 8
    assert answers["server_url"] == f"http://127.0.0.1:{figures['api_port']}"
    assert not server_file(tmp_path / DEMO_DB).exists()    # gone with the server


def test_kill_stops_the_demo_like_ctrl_c(tmp_path: Path) -> None:
    """`kill PID` (SIGTERM): the demo shuts its servers down and exits 0, leaving no server
    file behind."""
    db = tmp_path / "d.duckdb"
    proc = subprocess.Popen([sys.executable, "-m", "inlink.cli", "--db", str(db), "demo",
                             "--hosts", "40", "--port", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 120
        lines = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "Ctrl-C stops" in line or not line:
                break
        assert server_file(db).exists(), "".join(lines)
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
        assert proc.returncode == 0, "".join(lines) + rest
        assert "stopped." in rest
        assert not server_file(db).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_demo_refuses_to_overwrite_another_index(tmp_path: Path) -> None:
    import pytest

    from inlink.errors import InvalidInput

    other = tmp_path / "precious.duckdb"
    other.write_bytes(b"not mine")
    with pytest.raises(InvalidInput):
        run_demo(Settings(db=other), hosts=40, duration=0, console=Console(file=io.StringIO()))
    assert other.read_bytes() == b"not mine"
