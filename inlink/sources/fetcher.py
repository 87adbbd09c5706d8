"""One HTTP GET with deadlines and caps, and host overrides (`--resolve`) instead of DNS.

The crawler's lowest layer (sources/crawl.py builds on it); knows nothing of robots or politeness.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from inlink import __version__
from inlink.errors import InvalidInput

DEFAULT_USER_AGENT = f"inlink/{__version__} (+https://github.com/inlink)"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})  # RFC 9110 §15.4
_CHUNK = 64 * 1024

Override = tuple[str, int | None]  # (ip, port or None = the URL's port)


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """Deadlines and caps of one fetch; every hostile response ends within them."""

    total_timeout: float = 30.0        # whole fetch: connect, headers and body
    connect_timeout: float = 10.0
    read_timeout: float = 10.0         # longest silence between two reads of the socket
    max_bytes: int = 8 * 1024 * 1024   # body bytes kept, counted after decompression
    max_headers: int = 100             # response header fields
    max_header_size: int = 8190        # bytes of the status line and of each header field


@dataclass(frozen=True, slots=True)
class Response:
    """What one GET produced. `status` is None when no HTTP response arrived (`error` says why)."""

    url: str
    status: int | None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    ip: str | None = None
    error: str | None = None
    truncated: bool = False            # body was cut at FetchLimits.max_bytes
    wire_bytes: int = 0                # bytes read from the socket (compressed)
    seconds: float = 0.0

    def header(self, name: str) -> str | None:
        """The first value of a header (names compare case-insensitively)."""
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None

    @property
    def content_type(self) -> str | None:
        return self.header("content-type")

    @property
    def is_redirect(self) -> bool:
        return self.status in REDIRECT_STATUSES and self.header("location") is not None


# ----------------------------------------------------------------------- host overrides

def parse_override(text: str, name: str = "--resolve") -> tuple[str, Override]:
    """Parse `HOST=IP[:PORT]` (IPv6 as `[::1]:8080`) into (host, (ip, port))."""
    host, sep, target = text.strip().partition("=")
    host = host.strip().lower().rstrip(".")
    target = target.strip()
    if not sep or not host or not target:
        raise InvalidInput(name, f"expected HOST=IP[:PORT], got {text!r}")
    port: int | None = None
    if target.startswith("["):
        ip, _, rest = target[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], text, name)
    elif target.count(":") == 1:
        ip, _, port_text = target.partition(":")
        port = _port(port_text, text, name)
    else:
        ip = target
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise InvalidInput(name, f"{ip!r} is not an IP address (in {text!r})") from None
    return host, (ip, port)


def _port(text: str, whole: str, name: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InvalidInput(name, f"bad port {text!r} in {whole!r}")
    return int(text)


def parse_overrides(lines: Iterable[str], name: str = "--resolve") -> dict[str, Override]:
    """Override map from `host=ip:port` lines; blank lines and `#` comments are skipped."""
    out: dict[str, Override] = {}
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if text:
            host, target = parse_override(text, name)
            out[host] = target
    return out


def load_resolve_file(path: Path | str) -> dict[str, Override]:
    """Read a resolve file (the synthetic web writes one): `host=ip:port` per line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput("--resolve-file", f"cannot read {path}: {exc.strerror}") from None
    return parse_overrides(text.splitlines(), f"--resolve-file {path}")


class OverrideResolver(AbstractResolver):
    """Resolve names from an override map first; the system resolver only when `dns`."""

    def __init__(self, overrides: Mapping[str, Override], *, dns: bool = True) -> None:
        self.overrides = {k.lower().rstrip("."): v for k, v in overrides.items()}
        self.dns = dns
        self._system: aiohttp.ThreadedResolver | None = None
        self.answers: dict[str, str] = {}     # host -> first address given out (see _peer_ip)

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        entry = self.overrides.get(host.lower().rstrip("."))
        if entry is not None:
            ip, mapped = entry
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            return [ResolveResult(hostname=host, host=ip, port=mapped or port, family=fam,
                                  proto=0, flags=socket.AI_NUMERICHOST)]
        if not self.dns:
            raise OSError(f"no --resolve entry for {host} and DNS is off (--no-dns)")
        if self._system is None:
            self._system = aiohttp.ThreadedResolver()
        found = await self._system.resolve(host, port, family)
        if found:
            self.answers[host.lower().rstrip(".")] = found[0]["host"]
        return found

    def address_of(self, host: str) -> str | None:
        """The address this resolver maps `host` to (override first, then the last DNS answer)."""
        key = host.lower().rstrip(".")
        entry = self.overrides.get(key)
        return entry[0] if entry is not None else self.answers.get(key)

    async def close(self) -> None:
        if self._system is not None:
            await self._system.close()


# ----------------------------------------------------------------------- decompression

class _Inflater:
    """Content-Encoding decoding that never produces more than the cap (RFC 9110 §8.4.1).

    zlib's `max_length` bounds every call, so a gzip bomb costs at most `cap` bytes of memory.
    """

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._d: zlib._Decompress | None = None
        self._raw_fallback = coding == "deflate"
        self._new()

    def _new(self) -> None:
        # gzip: header-aware (wbits 16+); deflate: zlib-wrapped per spec, raw in practice too.
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS if self.coding == "gzip"
                                     else zlib.MAX_WBITS)

    def feed(self, data: bytes, room: int) -> bytes:
        """Up to `room` decoded bytes from `data` (+ what earlier calls left unconsumed)."""
        assert self._d is not None
        out: list[bytes] = []
        while room > 0:
            try:
                chunk = self._d.decompress(data, room)
            except zlib.error:
                if self._raw_fallback:  # "deflate" sent as raw DEFLATE (common server bug)
                    self._raw_fallback = False
                    self._d = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise
            self._raw_fallback = False
            out.append(chunk)
            room -= len(chunk)
            if self._d.eof and self._d.unused_data and self.coding == "gzip":
                data = self._d.unused_data  # another gzip member follows
                self._new()
                continue
            data = self._d.unconsumed_tail
            if not data:
                break
        return b"".join(out)


# ----------------------------------------------------------------------- the fetcher

class Fetcher:
    """An aiohttp session configured for crawling: use `async with Fetcher(...) as f`."""

    def __init__(self, *, user_agent: str = DEFAULT_USER_AGENT,
                 limits: FetchLimits = FetchLimits(),
                 overrides: Mapping[str, Override] | None = None, dns: bool = True,
                 concurrency: int = 128) -> None:
        self.user_agent = user_agent
        self.limits = limits
        self.resolver = OverrideResolver(overrides or {}, dns=dns)
        self.concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Fetcher:
        connector = aiohttp.TCPConnector(
            resolver=self.resolver, limit=self.concurrency, limit_per_host=0,
            use_dns_cache=False, ssl=True)
        lim = self.limits
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=lim.connect_timeout,
                                          connect=lim.connect_timeout,
                                          sock_read=lim.read_timeout),
            # We decode ourselves so the size cap holds after decompression.
            auto_decompress=False,
            max_line_size=lim.max_header_size, max_field_size=lim.max_header_size,
            max_headers=lim.max_headers,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate",
                     "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"},
        )
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.resolver.close()

    async def get(self, url: str, *, max_bytes: int | None = None) -> Response:
        """GET `url` without following redirects; never raises for network trouble."""
        started = time.monotonic()
        state: dict[str, object] = {}
        try:
            async with asyncio.timeout(self.limits.total_timeout):
                return await self._get(url, max_bytes or self.limits.max_bytes, started, state)
        except TimeoutError:
            error = f"timeout: no complete response within {self.limits.total_timeout:g}s"
        except aiohttp.ClientConnectorDNSError as exc:
            error = f"dns: {exc.os_error}"
        except aiohttp.ClientConnectorError as exc:
            error = f"connect: {exc.os_error}"
        except aiohttp.ServerDisconnectedError:
            error = "reset: server closed the connection"
        except aiohttp.ClientOSError as exc:
            error = f"reset: {exc.strerror or _short(exc)}"
        except aiohttp.ClientPayloadError as exc:
            error = f"body: {_short(exc)}"
        except aiohttp.ClientResponseError as exc:
            error = f"bad response: {_short(exc)}"
        except aiohttp.ClientError as exc:
            error = f"http: {type(exc).__name__}: {_short(exc)}"
        except zlib.error as exc:
            error = f"body: bad {state.get('coding', 'compressed')} data ({exc})"
        except (ConnectionError, OSError) as exc:
            error = f"reset: {exc.strerror or exc}"
        ip = state.get("ip")
        return Response(url, None, ip=ip if isinstance(ip, str) else None, error=error,
                        seconds=time.monotonic() - started)

    def _address(self, url: str) -> str | None:
        host = (URL_HOST.match(url) or [None, ""])[1] or ""
        if host.startswith("["):
            return host[1:-1]
        return host if _is_ip(host) else self.resolver.address_of(host)

    async def _get(self, url: str, cap: int, started: float,
                   state: dict[str, object]) -> Response:
        if self._session is None:
            raise RuntimeError("use `async with Fetcher(...)`")
        async with self._session.get(url, allow_redirects=False) as resp:
            # aiohttp may have released a connection whose body it already read, so the peer
            # address is not always available (aiohttp#4645): then ask the resolver.
            ip = _peer_ip(resp) or self._address(url)
            state["ip"] = ip
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.raw_headers]
            coding = (resp.headers.get("Content-Encoding") or "identity").strip().lower()
            state["coding"] = coding
            if coding == "x-gzip":
                coding = "gzip"
            if coding not in ("identity", "gzip", "deflate", ""):
                return Response(url, resp.status, headers, b"", ip,
                                f"body: unsupported Content-Encoding {coding!r}",
                                seconds=time.monotonic() - started)
            inflater = _Inflater(coding) if coding in ("gzip", "deflate") else None
            parts: list[bytes] = []
            kept = wire = 0
            truncated = False
            while True:
                chunk = await resp.content.readany()
                if not chunk:
                    break
                wire += len(chunk)
                if inflater is not None:
                    chunk = inflater.feed(chunk, cap - kept + 1)
                if kept + len(chunk) > cap:
                    parts.append(chunk[: cap - kept])
                    kept = cap
                    truncated = True
                    break
                parts.append(chunk)
                kept += len(chunk)
                if wire > cap:  # compressed input beyond the cap: stop reading as well
                    truncated = True
                    break
            return Response(url, resp.status, headers, b"".join(parts), ip, None, truncated,
                            wire, time.monotonic() - started)


def _peer_ip(resp: aiohttp.ClientResponse) -> str | None:
    """The address the response actually came from (after overrides or DNS)."""
    conn = resp.connection
    transport = conn.transport if conn is not None else None
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return None


URL_HOST = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _short(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= 200 else text[:200] + "..."
