"""API keys and credits, kept in the index file: keys are stored as sha256 hashes. Also the
server's persisted cursor secret.

Two ways to charge a key:
- `charge()`: one conditional UPDATE in the store's single writer (the CLI, tests, tools).
- `Ledger`: what the server uses. The server is the index file's only writer, so it keeps each
  key's balance in memory, charges under a lock (check and subtract are one step: concurrent
  calls never overspend or go negative) and writes the spent credits back in one transaction
  every `flush_interval` seconds and at shutdown. A request then costs no write transaction;
  a crash forgets at most the last interval's charges, in the customer's favour.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import threading
import uuid
from dataclasses import dataclass

import duckdb

from inlink.errors import InvalidInput, OutOfCredits
from inlink.index.store import Store, run

#: Dialects a key can be made for, and how their keys look (DESIGN.md "One server, four
#: dialects"). Only `data` is served so far; `project` keys can be created ahead of it.
KEY_FORMATS = {"data": "uuid4", "project": "hex40"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash   VARCHAR PRIMARY KEY,   -- sha256 hex of the key; the key itself is never stored
    key_prefix VARCHAR NOT NULL,      -- first 8 characters, to tell keys apart in listings
    dialect    VARCHAR NOT NULL,
    balance    BIGINT  NOT NULL,
    created_at TIMESTAMP NOT NULL,
    label      VARCHAR
)
"""
_SECRET_KEY = "api_cursor_secret"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_prefix: str
    dialect: str
    balance: int
    created_at: dt.datetime
    label: str | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.strip().encode("utf-8")).hexdigest()


def ensure_schema(store: Store) -> None:
    """Create the key table if this index file has none yet (idempotent)."""
    store.write(lambda conn: run(conn, _SCHEMA))


def create_key(store: Store, dialect: str, credits: int, *, label: str | None = None,
               now: dt.datetime | None = None) -> str:
    """A new key for `dialect` with `credits` credits; returns the key (shown once)."""
    if dialect not in KEY_FORMATS:
        raise InvalidInput("--dialect", f"{dialect!r} is not one of {', '.join(KEY_FORMATS)}")
    if credits < 0:
        raise InvalidInput("--credits", f"must be 0 or more, got {credits}")
    key = str(uuid.uuid4()) if KEY_FORMATS[dialect] == "uuid4" else secrets.token_hex(20)
    created = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ensure_schema(store)
    store.write(lambda conn: run(
        conn, "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?)",
        [hash_key(key), key[:8], dialect, credits, created, label]))
    return key


def list_keys(store: Store) -> list[KeyInfo]:
    ensure_schema(store)
    rows = store.query("SELECT key_prefix, dialect, balance, created_at, label FROM api_keys "
                       "ORDER BY created_at, key_prefix")
    return [KeyInfo(str(p), str(d), int(b), c, lbl) for p, d, b, c, lbl in rows]


def lookup(store: Store, key: str) -> tuple[str, int] | None:
    """(dialect, balance) of a key, or None when the server does not know it."""
    rows = store.query("SELECT dialect, balance FROM api_keys WHERE key_hash = ?",
                       [hash_key(key)])
    return (str(rows[0][0]), int(rows[0][1])) if rows else None


def charge(store: Store, key: str, cost: int) -> int:
    """Take `cost` credits from a key in one conditional UPDATE; returns what is left.

    Raises OutOfCredits (balance untouched) when the balance does not cover the cost. The
    check and the subtraction are one statement inside the single writer's transaction, so
    two calls racing for the last credits cannot both win.
    """

    def fn(conn: duckdb.DuckDBPyConnection) -> int:
        h = hash_key(key)
        rows = run(conn, "UPDATE api_keys SET balance = balance - ? "
                         "WHERE key_hash = ? AND balance >= ? RETURNING balance",
                   [cost, h, cost])
        if rows:
            return int(rows[0][0])
        have = run(conn, "SELECT balance FROM api_keys WHERE key_hash = ?", [h])
        raise OutOfCredits(cost, int(have[0][0]) if have else 0)

    return store.write(fn)


log = logging.getLogger("inlink.api.keys")


@dataclass(slots=True)
class _Account:
    dialect: str
    balance: int          # what the key has now, pending charges included
    pending: int = 0      # charged in memory, not yet written to api_keys


class Ledger:
    """Balances of the keys a server has seen, charged in memory, written back in batches."""

    def __init__(self, store: Store, *, flush_interval: float = 0.25) -> None:
        self.store = store
        self.flush_interval = flush_interval
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._flusher, name="inlink-ledger",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def _flusher(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except Exception:  # keep charging in memory; the next flush retries
                log.exception("writing credit balances failed")

    def unwritten(self) -> int:
        """Credits charged in memory and not yet written to the index."""
        with self._lock:
            return sum(a.pending for a in self._accounts.values())

    def peek(self, key_hash: str) -> tuple[str, int] | None:
        """(dialect, balance) of a key the ledger holds; None when it has not read it yet."""
        with self._lock:
            acc = self._accounts.get(key_hash)
            return None if acc is None else (acc.dialect, acc.balance)

    def account(self, key: str) -> tuple[str, int] | None:
        """(dialect, balance) of a key, or None when the index does not know it. A known key
        is read from the index once and then served from memory."""
        key_hash = hash_key(key)
        known = self.peek(key_hash)
        if known is not None:
            return known
        rows = self.store.query("SELECT dialect, balance FROM api_keys WHERE key_hash = ?",
                                [key_hash])
        if not rows:
            return None
        with self._lock:
            acc = self._accounts.setdefault(key_hash,
                                            _Account(str(rows[0][0]), int(rows[0][1])))
            return acc.dialect, acc.balance

    def charge(self, key_hash: str, cost: int) -> int:
        """Take `cost` credits; returns the balance left. OutOfCredits (nothing taken) when
        the balance does not cover it. The key must have been looked up with `account`."""
        with self._lock:
            acc = self._accounts.get(key_hash)
            if acc is None:
                raise OutOfCredits(cost, 0)
            if acc.balance < cost:
                raise OutOfCredits(cost, acc.balance)
            acc.balance -= cost
            acc.pending += cost
            return acc.balance

    def refund(self, key_hash: str, cost: int) -> None:
        """Give back a charge whose work did not happen."""
        with self._lock:
            acc = self._accounts[key_hash]
            acc.balance += cost
            acc.pending -= cost

    def flush(self) -> int:
        """Write pending charges to the index in one transaction; returns how many keys.
        Flushes run one at a time: when this returns, every charge made before the call is
        in the index (a concurrent flush's included)."""
        with self._flushing:
            return self._flush()

    def _flush(self) -> int:
        with self._lock:
            due = {h: a.pending for h, a in self._accounts.items() if a.pending}
            for h in due:
                self._accounts[h].pending = 0
        if not due:
            return 0

        def fn(conn: duckdb.DuckDBPyConnection) -> None:
            for h, spent in due.items():
                run(conn, "UPDATE api_keys SET balance = balance - ? WHERE key_hash = ?",
                    [spent, h])

        try:
            self.store.write(fn, data=False)
        except BaseException:
            with self._lock:  # not written: charge them again next time
                for h, spent in due.items():
                    self._accounts[h].pending += spent
            raise
        return len(due)


def load_secret(store: Store) -> bytes:
    """The server's cursor-signing secret, made once and kept in the index's `meta` table so
    cursors survive restarts and every worker on the file accepts them."""

    def fn(conn: duckdb.DuckDBPyConnection) -> bytes:
        rows = run(conn, "SELECT value FROM meta WHERE key = ?", [_SECRET_KEY])
        if rows:
            return bytes.fromhex(str(rows[0][0]))
        value = secrets.token_bytes(32)
        run(conn, "INSERT INTO meta VALUES (?, ?)", [_SECRET_KEY, value.hex()])
        return value

    return store.write(fn)
