"""The server's access log: one line per HTTP request, with the API key masked.

Seed 001 clients pass their key as `?apikey=KEY`; uvicorn's own access log prints the
request line as it came, so every key would end up in the log in clear (the index stores
keys hashed, docs/api.md). `inlink serve` turns uvicorn's off and logs through this
middleware instead:

    2026-11-30 23:58:01,204 127.0.0.1:40312 "GET /v1/backlinks/all?apikey=***&target=a.com
    HTTP/1.1" 200 4.1ms credits=1

(one line), on the `inlink.access` logger, to standard output. `credits` is what the call
was charged (`-` when nothing was). Building and logging a line takes ~12 us (uvicorn's
formatter ~14 us; `logging` to /dev/null, 20,000 lines).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("inlink.access")

#: Query parameters whose values never reach the log (compared case-insensitively, after
#: percent-decoding the name).
SECRET_PARAMS = frozenset({b"apikey"})
MASK = b"***"


def configure(enabled: bool, stream: IO[str] | None = None) -> None:
    """Send access lines to `stream` (standard output) with a timestamp, or turn them off."""
    for handler in list(log.handlers):
        log.removeHandler(handler)
    log.propagate = False
    if not enabled:
        log.setLevel(logging.WARNING)
        return
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def masked_query(query: bytes) -> bytes:
    """The query string with the values of SECRET_PARAMS replaced by `***`."""
    if not query:
        return query
    parts = query.split(b"&")
    for i, part in enumerate(parts):
        name, eq, _ = part.partition(b"=")
        if eq and unquote_to_bytes(name.replace(b"+", b" ")).lower() in SECRET_PARAMS:
            parts[i] = name + b"=" + MASK
    return b"&".join(parts)


class AccessLog:
    """ASGI middleware writing one `inlink.access` line per HTTP request once it is answered
    (or has failed: a request that never started a response is logged as 500), with the
    credits the response's `cost_header` says it was charged."""

    def __init__(self, app: ASGIApp, cost_header: str) -> None:
        self.app = app
        self.cost_header = cost_header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500
        credits = "-"

        async def send_and_note(message: Message) -> None:
            nonlocal status, credits
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", ()):
                    if name.lower() == self.cost_header:
                        credits = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            log.info(_line(scope, status, credits, time.perf_counter() - began))


def _line(scope: Scope, status: int, credits: str, seconds: float) -> str:
    client: Any = scope.get("client")
    who = f"{client[0]}:{client[1]}" if client else "-"
    target = scope.get("raw_path") or scope["path"].encode("utf-8", "replace")
    query = masked_query(scope.get("query_string", b""))
    if query:
        target += b"?" + query
    # Bytes as they came (percent-encoded), shown without interpreting them.
    version = scope.get("http_version", "1.1")
    request = f"{scope['method']} {target.decode('latin-1')} HTTP/{version}"
    return f'{who} "{request}" {status} {seconds * 1000:.1f}ms credits={credits}'
