"""Serves a `World` over real HTTP/1.1 on loopback: one socket per host IP, one shared port.

Raw asyncio streams so broken hosts can misbehave precisely (reset, truncated, trickle).
Also the resolve-file format (`host=ip:port`) that points a crawler at the served world.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import random
import resource
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from inlink.errors import InvalidInput
from inlink.world.model import World
from inlink.world.render import Response, renderer

SESSION_PARAMS = frozenset({"phpsessid", "sid", "sessionid", "jsessionid"})
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
MAX_HEAD = 16 * 1024


def _lookup_path(target: str) -> str:
    """Request target -> path+query in key form (what `World.page_at` indexes)."""
    if target.startswith(("http://", "https://")):
        rest = target.split("://", 1)[1]
        slash = rest.find("/")
        target = rest[slash:] if slash >= 0 else "/"
    target = target.split("#", 1)[0]
    path, _, query = target.partition("?")
    if "%" not in path:
        return _drop_session_params(path or "/", query)
    out: list[str] = []
    i = 0
    while i < len(path):  # decode %XX only for unreserved characters (RFC 3986 2.3)
        if path[i] == "%" and i + 2 < len(path) + 0 and i + 3 <= len(path):
            ch = unquote(path[i:i + 3])
            if len(ch) == 1 and ch in _UNRESERVED:
                out.append(ch)
                i += 3
                continue
        out.append(path[i])
        i += 1
    return _drop_session_params("".join(out) or "/", query)


def _drop_session_params(path: str, query: str) -> str:
    if query:
        params = [p for p in query.split("&")
                  if p and p.split("=", 1)[0].lower() not in SESSION_PARAMS]
        if params:
            return f"{path}?{'&'.join(params)}"
    return path


@dataclass
class ServerStats:
    requests: int = 0
    connections: int = 0
    refused: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


class WorldServer:
    """An asyncio HTTP/1.1 server for one world; `await start()`, `await stop()`."""

    def __init__(
        self,
        world: World,
        day: int = 1,
        *,
        port: int = 0,
        max_connections: int = 512,
        idle_timeout: float = 10.0,
        trickle_max: float = 8.0,
        slow_delay: float | None = None,
        cache_bytes: int = 0,
        prerender: bool = False,
    ) -> None:
        world.date_of(day)
        self.world = world
        self.day = day
        self.port = port
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.trickle_max = trickle_max
        self.slow_delay = slow_delay
        self.stats = ServerStats()
        self._render = renderer(world)
        # Responses by (host, path, day), up to `cache_bytes` of bodies: a response only
        # depends on those (the world does not change while served), so serving from the
        # cache is identical, and benchmarks measure the crawler rather than page rendering.
        self.cache_bytes = cache_bytes
        self.prerender = prerender
        self._cache: dict[tuple[int, str, int], Response] = {}
        self._cached = 0
        self._servers: list[asyncio.base_events.Server] = []
        self._sockets: list[socket.socket] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._sem: asyncio.Semaphore | None = None
        ips = {world.ip_of_host(h) for h in range(world.n_hosts)}
        self.ips = sorted(ips, key=lambda s: tuple(int(x) for x in s.split(".")))
        for ip in self.ips:
            addr = ipaddress.IPv4Address(ip)
            # Loopback only, and never the address real local services use.
            if not addr.is_loopback or ip == "127.0.0.1":
                raise InvalidInput("ip", f"world address {ip} is not a private loopback address")

    def set_day(self, day: int) -> None:
        """Serve `day` from the next request on (thread-safe: a single int store)."""
        self.world.date_of(day)
        self.day = day

    @property
    def resolve_map(self) -> dict[str, tuple[str, int]]:
        w = self.world
        return {w.hosts.key[h]: (w.ip_of_host(h), self.port) for h in range(w.n_hosts)}

    def bound_addresses(self) -> list[tuple[str, int]]:
        return [s.getsockname() for s in self._sockets]

    def _raise_fd_limit(self) -> None:
        need = len(self.ips) + self.max_connections * 2 + 256
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft >= need:
            return
        if hard != resource.RLIM_INFINITY and hard < need:
            raise InvalidInput(
                "hosts", f"serving needs ~{need} file descriptors but the hard limit is {hard}; "
                "serve a smaller world or raise `ulimit -Hn`")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

    def _bind_all(self, port: int) -> list[socket.socket]:
        socks: list[socket.socket] = []
        try:
            for ip in self.ips:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((ip, port))
                if port == 0:
                    port = s.getsockname()[1]
                s.listen(128)
                s.setblocking(False)
        except OSError:
            for s in socks:
                s.close()
            raise
        return socks

    def prerender_day(self, day: int | None = None) -> int:
        """Render every robots.txt and page of `day` (default: the served day) into the cache,
        until `cache_bytes` is reached; returns how many responses are cached."""
        w = self.world
        day = self.day if day is None else day
        for h in range(w.n_hosts):
            for path in ["/robots.txt", *(w.paths[p] for p in w.host_pages(h))]:
                if self._cached >= self.cache_bytes:
                    return len(self._cache)
                self._respond_cached(h, _lookup_path(path), day)
        return len(self._cache)

    async def start(self) -> None:
        if self.prerender:
            self.prerender_day()
        self._raise_fd_limit()
        self._sem = asyncio.Semaphore(self.max_connections)
        rnd = random.Random()
        for attempt in range(30):
            want = self.port if self.port else (0 if attempt == 0 else rnd.randint(20000, 60000))
            try:
                socks = self._bind_all(want)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or self.port:
                    raise
                continue
            break
        else:
            raise OSError(errno.EADDRINUSE, "no free port shared by all world addresses")
        self.port = socks[0].getsockname()[1]
        self._sockets = socks
        for s in socks:
            ip = s.getsockname()[0]
            srv = await asyncio.start_server(self._make_handler(ip), sock=s,
                                             limit=MAX_HEAD)
            self._servers.append(srv)

    async def stop(self) -> None:
        for srv in self._servers:
            srv.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        for srv in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(srv.wait_closed(), 2)
        for s in self._sockets:
            s.close()
        self._servers.clear()
        self._sockets.clear()

    # --- request handling -----------------------------------------------------------------
    def respond(self, ip: str, host: str, target: str) -> Response:
        """The response for one request (no I/O)."""
        w = self.world
        name = host.strip().lower().rsplit(":", 1)[0] if not host.startswith("[") else host
        h = w.host_index(name)
        if h is None:
            return Response(404, [("Content-Type", "text/plain")], b"unknown host\n")
        if w.ip_of_host(h) != ip:
            # Virtual hosting is per address: a host is only served on its own IP.
            return Response(421, [("Content-Type", "text/plain")], b"misdirected request\n")
        path = _lookup_path(target)
        if self.cache_bytes:
            return self._respond_cached(h, path, self.day)
        return self._respond(h, path, self.day)

    def _respond_cached(self, h: int, path: str, day: int) -> Response:
        key = (h, path, day)
        resp = self._cache.get(key)
        if resp is None:
            resp = self._respond(h, path, day)
            if self._cached + len(resp.body) <= self.cache_bytes:
                self._cache[key] = resp
                self._cached += len(resp.body)
        return resp

    def _respond(self, h: int, path: str, day: int) -> Response:
        w = self.world
        if path == "/robots.txt":
            resp = self._render.robots(h, day)
        else:
            page = w.page_at(h, path)
            if page is None:
                resp = Response(404, [("Content-Type", "text/html; charset=utf-8")],
                                b"<html><body><h1>Not Found</h1></body></html>")
            else:
                resp = self._render.render(page, day)
        if resp.delay and self.slow_delay is not None:
            resp.delay = self.slow_delay
        return resp

    def _make_handler(
        self, ip: str,
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], None]:
        def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # Tracked so stop() can cancel connections that are still open.
            task = asyncio.ensure_future(self._serve_connection(ip, reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return handler

    async def _serve_connection(self, ip: str, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        assert self._sem is not None
        self.stats.connections += 1
        try:
            try:
                await asyncio.wait_for(self._sem.acquire(), self.idle_timeout)
            except TimeoutError:
                self.stats.refused += 1
                return
            try:
                while await self._serve_one(ip, reader, writer):
                    pass
            finally:
                self._sem.release()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError, ValueError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve_one(self, ip: str, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection should end."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.idle_timeout)
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
            await writer.drain()
            return False
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0") or 0)
        if length:
            await reader.readexactly(min(length, 1 << 20))
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        self.stats.requests += 1
        if method not in ("GET", "HEAD"):
            resp = Response(405, [("Allow", "GET, HEAD")], b"")
        else:
            resp = self.respond(ip, headers.get("host", ""), target)
        self.stats.by_status[resp.status] = self.stats.by_status.get(resp.status, 0) + 1
        if resp.delay:
            await asyncio.sleep(resp.delay)
        if resp.misbehave == "reset":
            sock = writer.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER 0 makes close() send RST instead of FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        body = resp.body
        status = f"HTTP/1.1 {resp.status} {resp.reason}\r\n"
        hdrs = "".join(f"{k}: {v}\r\n" for k, v in resp.headers)
        declared = len(body)
        if resp.misbehave == "trickle":
            declared = len(body) + 10_000_000
        conn = "keep-alive" if keep and resp.misbehave is None else "close"
        raw = (f"{status}{hdrs}Content-Length: {declared}\r\nConnection: {conn}\r\n\r\n"
               ).encode("latin-1")
        if resp.misbehave == "truncated":
            writer.write(raw + body[: len(body) // 2])
            await writer.drain()
            writer.transport.abort()
            return False
        if resp.misbehave == "trickle":
            writer.write(raw)
            deadline = time.monotonic() + self.trickle_max
            sent = 0
            while time.monotonic() < deadline:
                writer.write(body[sent % len(body): sent % len(body) + 1] or b" ")
                await writer.drain()
                sent += 1
                await asyncio.sleep(0.25)
            writer.transport.abort()
            return False
        writer.write(raw + (b"" if method == "HEAD" else body))
        await writer.drain()
        return conn == "keep-alive"


# --- running in a thread / in the foreground ------------------------------------------------

class RunningWorld:
    """Handle on a world served from a background thread (see `serve_in_thread`)."""

    def __init__(self, server: WorldServer, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self._loop = loop

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def resolve(self) -> dict[str, tuple[str, int]]:
        return self.server.resolve_map

    def set_day(self, day: int) -> None:
        self._loop.call_soon_threadsafe(self.server.set_day, day)
        self.server.world.date_of(day)
        self.server.day = day


@contextlib.contextmanager
def serve_in_thread(world: World, day: int = 1, *, timeout: float = 60.0,
                    **options: float | int) -> Iterator[RunningWorld]:
    """Serve `world` from a background thread for the `with` block; yields a handle.

    Example: `with serve_in_thread(World(seed=1)) as run: fetch(run.resolve[host], ...)`.
    """
    server = WorldServer(world, day, **options)  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop_ev: list[asyncio.Event] = []
    failure: list[BaseException] = []

    async def main() -> None:
        stop_ev.append(asyncio.Event())
        try:
            await server.start()
        except BaseException as exc:
            failure.append(exc)
            started.set()
            return
        started.set()
        await stop_ev[0].wait()
        await server.stop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(main())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name="inlink-world-server", daemon=True)
    thread.start()
    if not started.wait(timeout):
        raise TimeoutError("world server did not start in time")
    if failure:
        thread.join(timeout)
        raise failure[0]
    try:
        yield RunningWorld(server, loop)
    finally:
        loop.call_soon_threadsafe(stop_ev[0].set)
        thread.join(timeout)


def run_world_server(
    world: World,
    day: int = 1,
    *,
    port: int = 0,
    resolve_out: Path | None = None,
    duration: float | None = None,
    on_ready: Callable[[WorldServer], None] | None = None,
    **options: float | int,
) -> ServerStats:
    """Serve `world` in the foreground until Ctrl-C, SIGTERM or `duration` seconds."""

    async def main() -> ServerStats:
        server = WorldServer(world, day, port=port, **options)  # type: ignore[arg-type]
        await server.start()
        if resolve_out is not None:
            write_resolve_file(resolve_out, server.resolve_map)
        if on_ready is not None:
            on_ready(server)
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, done.set)
        try:
            if duration is None:
                await done.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), duration)
        finally:
            await server.stop()
        return server.stats

    return asyncio.run(main())


# --- resolve files --------------------------------------------------------------------------

def write_resolve_file(path: Path | str,
                       mapping: Mapping[str, tuple[str, int | None]]) -> None:
    """Write `host=ip:port` lines (`host=ip` when the port is not known yet)."""
    lines = ["# inlink world resolve map: host=ip:port (loopback only)"]
    for host in sorted(mapping):
        ip, port = mapping[host]
        lines.append(f"{host}={ip}:{port}" if port is not None else f"{host}={ip}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_resolve_file(path: Path | str) -> dict[str, tuple[str, int | None]]:
    """Read a resolve file; `#` starts a comment, blank lines are ignored."""
    out: dict[str, tuple[str, int | None]] = {}
    text = Path(path).read_text(encoding="utf-8")
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        host, sep, addr = line.partition("=")
        if not sep or not host.strip() or not addr.strip():
            raise InvalidInput("resolve", f"{path}:{n}: expected host=ip:port, got {raw!r}")
        ip, _, port_s = addr.strip().partition(":")
        try:
            ipaddress.IPv4Address(ip)
            port = int(port_s) if port_s else None
        except ValueError as exc:
            raise InvalidInput("resolve", f"{path}:{n}: bad address {addr!r}") from exc
        out[host.strip().lower()] = (ip, port)
    return out
