"""Opaque, signed key-set cursors for paging listings (seed 001 raw `next`, seed 004
search_after_token): a cursor names the last row's sort key, the query it belongs to and the
rank run it read, so the next page continues exactly after that row.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from inlink.errors import InvalidInput

VERSION = 1
#: Seed 001: cursors "will be valid within the next 24 hours"; we honour them for 48.
MAX_AGE_SECONDS = 48 * 3600

# A process-wide secret for callers that do not pass one: cursors then stay valid only for
# this process's lifetime. Servers pass a persisted secret (settings) so cursors survive
# restarts and other workers accept them.
_PROCESS_SECRET = secrets.token_bytes(32)


@dataclass(frozen=True, slots=True)
class CursorState:
    fingerprint: str
    run_id: int | None
    key: list[Any]
    issued: float


def _enc_value(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return {"t": v.isoformat()}
    if isinstance(v, dt.date):
        return {"d": v.isoformat()}
    return v


def _dec_value(v: Any) -> Any:
    if isinstance(v, dict):
        if "t" in v:
            return dt.datetime.fromisoformat(v["t"])
        if "d" in v:
            return dt.date.fromisoformat(v["d"])
        raise ValueError("bad value")
    return v


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(state: CursorState, secret: bytes | None = None) -> str:
    payload = json.dumps({"v": VERSION, "f": state.fingerprint, "r": state.run_id,
                          "k": [_enc_value(v) for v in state.key], "i": int(state.issued)},
                         separators=(",", ":"), sort_keys=True).encode("utf-8")
    mac = hmac.new(secret or _PROCESS_SECRET, payload, hashlib.sha256).digest()[:16]
    return _b64(payload) + "." + _b64(mac)


def decode(token: str, fingerprint: str, secret: bytes | None = None, *,
           now: float | None = None, max_age: float = MAX_AGE_SECONDS) -> CursorState:
    """Check a cursor's signature, query and age; InvalidInput("cursor", why) otherwise."""
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 8192:
        raise InvalidInput("cursor", "malformed cursor; pass the value a previous page returned")
    body, mac = token.split(".")
    try:
        payload = _unb64(body)
        got = _unb64(mac)
    except (ValueError, TypeError):
        raise InvalidInput("cursor", "malformed cursor; pass the value a previous page "
                                     "returned") from None
    want = hmac.new(secret or _PROCESS_SECRET, payload, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(got, want):
        raise InvalidInput("cursor", "invalid cursor (altered, or issued by another server)")
    try:
        data = json.loads(payload)
        state = CursorState(str(data["f"]), None if data["r"] is None else int(data["r"]),
                            [_dec_value(v) for v in data["k"]], float(data["i"]))
        version = int(data["v"])
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("cursor", "malformed cursor payload") from None
    if version != VERSION:
        raise InvalidInput("cursor", "cursor from another inlink version; start over")
    if state.fingerprint != fingerprint:
        raise InvalidInput("cursor", "this cursor belongs to a different target or query; "
                                     "the other parameters must stay as in the first request")
    age = (time.time() if now is None else now) - state.issued
    if age > max_age:
        raise InvalidInput("cursor", f"cursor expired (older than {max_age / 3600:g} h); "
                                     "start over")
    return state


def fingerprint(*parts: Any) -> str:
    """A stable digest of a query's identity (everything but limit and cursor)."""
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()[:24]
