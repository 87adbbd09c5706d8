"""Store: DuckDB's row-group merging paused for bulk writes (`Store.vacuum_paused`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from inlink.index.store import Store

ROW_GROUP = 122_880     # DuckDB's rows per row group


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
