"""Store: how it attaches the file (block and row-group sizes), and DuckDB's row-group
merging paused for bulk writes (`Store.vacuum_paused`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from inlink.index.store import BLOCK_SIZE, ROW_GROUP_SIZE, Store

ROW_GROUP = ROW_GROUP_SIZE


def test_pauses_nest_overlap_and_restore_the_setting(store: Store,
                                                    vacuum_tasks: Callable[[], int]) -> None:
    store.write(lambda c: c.execute("SET max_vacuum_tasks = 7"))
    a, b = store.vacuum_paused(), store.vacuum_paused()
    a.__enter__()
    assert vacuum_tasks() == 0
    b.__enter__()
    a.__exit__(None, None, None)       # the first job ends before the second
    assert vacuum_tasks() == 0
    b.__exit__(None, None, None)
    assert vacuum_tasks() == 7
    with pytest.raises(KeyboardInterrupt), store.vacuum_paused():
        raise KeyboardInterrupt
    assert vacuum_tasks() == 7


def test_partial_row_groups_stay_unmerged_while_paused(tmp_path: Path) -> None:
    """Batches a little over a row group each: DuckDB's checkpoint merges the partial groups
    with the full ones around them (rewriting those) unless the merging is paused."""
    groups = {}
    for paused in (False, True):
        with Store(tmp_path / f"p{paused}.duckdb") as s:
            s.write(lambda c: c.execute("CREATE TABLE t (x BIGINT, s VARCHAR)"))
            for i in range(3):
                s.write(lambda c, i=i: c.execute(
                    "INSERT INTO t SELECT r, 'text ' || (r % 977) FROM range(?, ?) r",
                    [i * 200_000, i * 200_000 + ROW_GROUP + 3_000]))
            if paused:
                with s.vacuum_paused():
                    s.checkpoint()
            else:
                s.checkpoint()
            groups[paused] = int(s.query(
                "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('t')")[0][0])
            assert s.query("SELECT count(*) FROM t")[0][0] == 3 * (ROW_GROUP + 3_000)
    assert groups[True] == 6            # three full groups, three partial ones
    assert groups[False] < groups[True]


def _row_group_sizes(s: Store, table: str) -> list[int]:
    return [int(n) for (n,) in s.query(
        f"SELECT max(count) FROM pragma_storage_info('{table}') GROUP BY row_group_id "
        "ORDER BY row_group_id")]


def test_a_new_file_gets_the_store_block_and_row_group_sizes(tmp_path: Path) -> None:
    with Store(tmp_path / "new.duckdb") as s:
        s.write(lambda c: c.execute("CREATE TABLE t AS SELECT range AS x FROM range(150000)"))
        s.checkpoint()
        full, rest = divmod(150_000, ROW_GROUP_SIZE)
        assert _row_group_sizes(s, "t") == [ROW_GROUP_SIZE] * full + [rest]
        assert s.query("SELECT block_size FROM pragma_database_size() "
                       "WHERE database_name = current_database()")[0][0] == BLOCK_SIZE
        # a reader thread's cursor uses the index too
        got: list[object] = []
        reader = threading.Thread(target=lambda: got.append(
            s.query("SELECT count(*) FROM t")[0][0]))
        reader.start()
        reader.join()
        assert got == [150_000]


def test_an_existing_file_keeps_its_block_size_and_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))          # DuckDB's defaults: 256 KiB, 122,880 rows
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(130000)")
    con.close()
    with Store(path) as s:
        assert _row_group_sizes(s, "t") == [122_880, 130_000 - 122_880]
        s.write(lambda c: c.execute("INSERT INTO t SELECT range FROM range(70000)"))
        s.checkpoint()
        assert s.query("SELECT count(*), sum(x) FROM t")[0] == (
            200_000, sum(range(130_000)) + sum(range(70_000)))
        assert s.query("SELECT block_size FROM pragma_database_size() "
                       "WHERE database_name = current_database()")[0][0] == 262_144
        assert _row_group_sizes(s, "t")[0] == 122_880
    with Store(path, read_only=True) as r:
        assert r.query("SELECT count(*) FROM t")[0][0] == 200_000
