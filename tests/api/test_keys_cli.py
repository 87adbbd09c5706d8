"""`inlink keys create|list`: a UUID v4 Data API key, stored only as its hash."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from typer.testing import CliRunner

from inlink.api.keys import charge, hash_key, lookup
from inlink.cli import app
from inlink.index.store import Store


def test_keys_create_and_list(tmp_path: Path) -> None:
    db = tmp_path / "k.duckdb"
    runner = CliRunner()
    r = runner.invoke(app, ["--db", str(db), "keys", "create", "--dialect", "data",
                            "--credits", "120"])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[-1]
    assert uuid.UUID(key).version == 4
    r = runner.invoke(app, ["--db", str(db), "keys", "list"])
    (row,) = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert row["key_prefix"] == key[:8] and row["balance"] == 120 and row["dialect"] == "data"
    with Store(db) as store:
        assert not store.query("SELECT * FROM api_keys WHERE key_hash = ? OR key_prefix = ?",
                               [key, key])  # never stored in clear
        assert lookup(store, key) == ("data", 120)
        assert charge(store, key, 100) == 20
        assert store.query("SELECT balance FROM api_keys WHERE key_hash = ?",
                           [hash_key(key)])[0][0] == 20
    r = runner.invoke(app, ["--db", str(db), "keys", "create", "--dialect", "nope"])
    assert r.exit_code != 0
