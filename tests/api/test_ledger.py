"""The server's credit ledger: charges in memory never overspend under concurrency, and every
charge reaches the index (periodic write-back, and at shutdown)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from inlink.api.keys import Ledger, create_key, hash_key
from inlink.errors import OutOfCredits
from inlink.index.store import Store


def _balance(store: Store, key: str) -> int:
    return int(store.query("SELECT balance FROM api_keys WHERE key_hash = ?",
                           [hash_key(key)])[0][0])


def test_concurrent_charges_never_overspend(tmp_path: Path) -> None:
    with Store(tmp_path / "k.duckdb") as store:
        key = create_key(store, "data", 1000)
        ledger = Ledger(store, flush_interval=0.01)
        ledger.start()
        assert ledger.account(key) == ("data", 1000)
        ok, refused = [], []
        lock = threading.Lock()

        def spend() -> None:
            for _ in range(50):
                try:
                    left = ledger.charge(hash_key(key), 7)
                except OutOfCredits:
                    with lock:
                        refused.append(1)
                else:
                    with lock:
                        ok.append(left)

        threads = [threading.Thread(target=spend) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        ledger.stop()
        # 1000 // 7 = 142 charges fit; every other one was refused; nothing went negative
        assert len(ok) == 142 and len(refused) == 8 * 50 - 142
        assert min(ok) == 1000 - 142 * 7 >= 0
        assert sorted(ok, reverse=True) == [1000 - 7 * i for i in range(1, 143)]
        assert _balance(store, key) == 1000 - 142 * 7


def test_refund_and_write_back(tmp_path: Path) -> None:
    with Store(tmp_path / "k.duckdb") as store:
        key = create_key(store, "data", 100)
        ledger = Ledger(store, flush_interval=3600)  # no periodic flush: only explicit ones
        ledger.start()
        assert ledger.account("not-a-key") is None
        ledger.account(key)
        assert ledger.charge(hash_key(key), 30) == 70
        assert _balance(store, key) == 100  # not written yet
        ledger.refund(hash_key(key), 30)
        assert ledger.charge(hash_key(key), 40) == 60
        with pytest.raises(OutOfCredits):
            ledger.charge(hash_key(key), 61)
        assert ledger.flush() == 1 and _balance(store, key) == 60
        assert ledger.flush() == 0
        ledger.charge(hash_key(key), 10)
        ledger.stop()  # shutdown writes the last charges
        assert _balance(store, key) == 50


def test_a_flush_waits_for_one_in_progress(tmp_path: Path) -> None:
    """The background write-back may hold the pending charges when someone flushes: that
    flush returns only once they are in the index."""
    with Store(tmp_path / "k.duckdb") as store:
        key = create_key(store, "data", 100)
        ledger = Ledger(store, flush_interval=3600)
        ledger.account(key)
        ledger.charge(hash_key(key), 40)
        entered, release = threading.Event(), threading.Event()
        real_write = store.write

        def slow_write(fn, **kw):  # type: ignore[no-untyped-def]
            entered.set()
            release.wait(5)
            return real_write(fn, **kw)

        store.write = slow_write  # type: ignore[method-assign]
        background = threading.Thread(target=ledger.flush)
        background.start()
        assert entered.wait(5)
        done = threading.Event()
        waiter = threading.Thread(target=lambda: (ledger.flush(), done.set()))
        waiter.start()
        assert not done.wait(0.2)      # held back while the first write is in flight
        release.set()
        background.join(5)
        waiter.join(5)
        store.write = real_write  # type: ignore[method-assign]
        assert done.is_set() and _balance(store, key) == 60
