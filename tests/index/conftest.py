"""Fixtures shared by the index tests: a fresh store, and its row-group merging setting."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from inlink.index.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "index.duckdb")
    yield s
    s.close()


@pytest.fixture
def vacuum_tasks(store: Store) -> Callable[[], int]:
    """DuckDB's `max_vacuum_tasks` on the store's connection (0: merging paused)."""
    return lambda: int(store.query("SELECT current_setting('max_vacuum_tasks')")[0][0])
