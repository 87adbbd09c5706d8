"""API keys and credits, kept in the index file: keys are stored as sha256 hashes, and each
call is charged with one conditional UPDATE in the store's single writer, so concurrent calls
never overspend a balance or drive it negative. Also the server's persisted cursor secret."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
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
