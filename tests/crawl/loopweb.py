"""A tiny raw-socket HTTP/1.1 server on 127.0.0.x for crawler tests, with hostile behaviours.

Each host gets its own loopback address (port 0); routes answer (status, headers, body) or
write raw bytes themselves. The server counts requests in flight per host and keeps a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

Reply = tuple[int, list[tuple[str, str]], bytes]
Raw = Callable[[asyncio.StreamWriter], Awaitable[None]]
Route = Reply | Raw | Callable[[], Reply]

REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 404: "Not Found",
           500: "Internal Server Error", 503: "Service Unavailable", 429: "Too Many Requests"}


def html(body: str, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Reply:
    return status, [("Content-Type", "text/html; charset=utf-8"), *(headers or [])], \
        body.encode()


def redirect(to: str, status: int = 301) -> Reply:
    return status, [("Location", to), ("Content-Type", "text/html")], b""


def page_with_links(*hrefs: str) -> Reply:
    return html("<html><body>" + "".join(f'<a href="{h}">link {h}</a> ' for h in hrefs)
                + "</body></html>")


@dataclass
class Host:
    name: str
    routes: dict[str, Route] = field(default_factory=dict)
    delay: float = 0.0                       # seconds before answering each request
    ip: str = ""
    port: int = 0
    active: int = 0
    max_active: int = 0
    log: list[tuple[float, str]] = field(default_factory=list)


class LoopWeb:
    """Serve `hosts` from a background thread: `with LoopWeb(hosts) as web: web.resolve`."""

    def __init__(self, hosts: list[Host], first_ip: int = 10) -> None:
        self.hosts = {h.name: h for h in hosts}
        for i, h in enumerate(hosts):
            h.ip = f"127.0.{(first_ip + i) // 250 + 7}.{(first_ip + i) % 250 + 1}"
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.base_events.Server] = []
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def resolve(self) -> dict[str, tuple[str, int | None]]:
        return {h.name: (h.ip, h.port) for h in self.hosts.values()}

    def __enter__(self) -> LoopWeb:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        for h in self.hosts.values():
            server = await asyncio.start_server(self._conn, h.ip, 0)
            h.port = server.sockets[0].getsockname()[1]
            self._servers.append(server)

    async def _stop(self) -> None:
        for s in self._servers:
            s.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in self._servers:
            await s.wait_closed()

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                _method, target, _ = line.decode("latin-1").split(" ", 2)
                host_name = ""
                while True:
                    hl = await reader.readline()
                    if hl in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = hl.decode("latin-1").partition(":")
                    if k.strip().lower() == "host":
                        host_name = v.strip().split(":")[0].lower()
                host = self.hosts[host_name]
                host.active += 1
                host.max_active = max(host.max_active, host.active)
                host.log.append((time.monotonic(), target))
                try:
                    if host.delay:
                        await asyncio.sleep(host.delay)
                    route = host.routes.get(target)
                    if route is None:
                        route = (404, [("Content-Type", "text/html")], b"not found")
                    if callable(route) and not isinstance(route, tuple):
                        result = route() if _is_factory(route) else route(writer)
                        if isinstance(result, tuple):
                            route = result
                        else:
                            await result
                            return
                    status, headers, body = route
                    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'X')}",
                            f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers)]
                    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
                    await writer.drain()
                finally:
                    host.active -= 1
        except (ConnectionError, asyncio.CancelledError, ValueError, KeyError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


def _is_factory(fn: Callable[..., object]) -> bool:
    return getattr(fn, "__code__", None) is not None and fn.__code__.co_argcount == 0


@contextlib.contextmanager
def serve(hosts: list[Host]) -> Iterator[LoopWeb]:
    with LoopWeb(hosts) as web:
        yield web
