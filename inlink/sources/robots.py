"""robots.txt for the crawler (RFC 9309) on top of protego: fetch outcome rules, parse, cache.

Used by sources/crawl.py before any page of an origin is fetched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from protego import Protego

from inlink.sources.fetcher import Response
from inlink.urls import resolve_url

# RFC 9309 §2.5: crawlers MUST parse at least the first 500 kibibytes.
ROBOTS_MAX_BYTES = 500 * 1024
# RFC 9309 §2.3.1.2: follow at least five consecutive redirects.
ROBOTS_MAX_REDIRECTS = 5


class Verdict(StrEnum):
    RULES = "rules"                    # 2xx: the parsed rules apply
    ALLOW_ALL = "allow_all"            # 4xx "unavailable" (§2.3.1.3)
    DISALLOW_ALL = "disallow_all"      # 5xx / network "unreachable" (§2.3.1.4)


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """The robots.txt decision for one origin (scheme://host[:port], RFC 9309 §2.3)."""

    verdict: Verdict
    parser: Protego | None = None
    status: int | None = None
    error: str | None = None
    expires: float = 0.0               # monotonic time after which to fetch again

    def allowed(self, url: str, agent: str) -> bool:
        """May `agent` fetch `url`? The robots.txt URL itself is always allowed (§2.2.2)."""
        if self.verdict is Verdict.ALLOW_ALL:
            return True
        if self.verdict is Verdict.DISALLOW_ALL:
            return False
        assert self.parser is not None
        if url.endswith("/robots.txt") and url.count("/") == 3:
            return True
        return bool(self.parser.can_fetch(url, agent))

    def crawl_delay(self, agent: str) -> float | None:
        """Crawl-delay for `agent` (a non-standard extension RFC 9309 §2.2.4 allows)."""
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(agent)
        return float(delay) if delay is not None else None

    @property
    def unreachable(self) -> bool:
        return self.verdict is Verdict.DISALLOW_ALL


def product_token(user_agent: str) -> str:
    """The product token robots.txt groups are matched against (§2.2.1): `inlink/0.1 (+...)`
    -> `inlink`."""
    token = user_agent.split("/", 1)[0].split(" ", 1)[0]
    return "".join(c for c in token if c.isalnum() or c in "-_") or "inlink"


def parse_robots(body: bytes) -> Protego:
    """Parse robots.txt bytes: UTF-8 (§2.2), a leading BOM ignored, the first 500 KiB (§2.5)."""
    data = body[:ROBOTS_MAX_BYTES]
    if len(body) > ROBOTS_MAX_BYTES:
        # Keep whole lines only: a rule cut in half could disallow more than was written.
        cut = data.rfind(b"\n")
        data = data[: cut + 1] if cut >= 0 else b""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return Protego.parse(data.decode("utf-8", "replace"))


def rules_from_response(resp: Response, *, now: float, ttl: float,
                        retry_after: float) -> RobotsRules:
    """Turn the end of a robots.txt fetch into a decision (RFC 9309 §2.3.1)."""
    status = resp.status
    if status is not None and 200 <= status < 300:
        return RobotsRules(Verdict.RULES, parse_robots(resp.body), status, None, now + ttl)
    # 429 is treated as "unreachable" like a 5xx (as Google does), not as "unavailable".
    if status is not None and 400 <= status < 500 and status != 429:
        return RobotsRules(Verdict.ALLOW_ALL, None, status, None, now + ttl)
    if status is not None and 300 <= status < 400:
        # Too many redirects (or a 3xx without Location): §2.3.1.2 lets us treat the file
        # as unavailable, which §2.3.1.3 defines as "allow all".
        return RobotsRules(Verdict.ALLOW_ALL, None, status, "too many redirects", now + ttl)
    error = resp.error or f"robots.txt answered {status}"
    # Unreachable: disallow everything for now and ask again later (§2.3.1.4).
    return RobotsRules(Verdict.DISALLOW_ALL, None, status, error, now + retry_after)


class RobotsCache:
    """One robots.txt decision per origin, fetched once (single flight) and kept `ttl` seconds.

    RFC 9309 §2.4: caching beyond 24 hours is discouraged; unreachable answers are retried after
    `retry_after` seconds instead.
    """

    def __init__(self, fetch: Callable[[str], Awaitable[Response]], user_agent: str, *,
                 ttl: float = 86400.0, retry_after: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self.agent = product_token(user_agent)
        self.ttl = ttl
        self.retry_after = retry_after
        self.clock = clock
        self._rules: dict[str, RobotsRules] = {}
        self._pending: dict[str, asyncio.Future[RobotsRules]] = {}
        self.fetches = 0

    def cached(self, origin: str) -> RobotsRules | None:
        """The cached decision for an origin if it is still fresh."""
        rules = self._rules.get(origin)
        if rules is not None and rules.expires > self.clock():
            return rules
        return None

    async def get(self, origin: str) -> RobotsRules:
        """The decision for `origin` ("http://host:port"), fetching robots.txt when needed."""
        rules = self.cached(origin)
        if rules is not None:
            return rules
        pending = self._pending.get(origin)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[RobotsRules] = asyncio.get_running_loop().create_future()
        self._pending[origin] = future
        try:
            rules = await self._load(origin)
            self._rules[origin] = rules
            future.set_result(rules)
            return rules
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        finally:
            del self._pending[origin]

    async def _load(self, origin: str) -> RobotsRules:
        url = origin + "/robots.txt"
        resp: Response | None = None
        for _hop in range(ROBOTS_MAX_REDIRECTS + 1):
            self.fetches += 1
            resp = await self._fetch(url)
            location = resp.header("location") if resp.is_redirect else None
            target = resolve_url(location, url) if location else None
            if target is None:
                break
            url = target
        assert resp is not None
        return rules_from_response(resp, now=self.clock(), ttl=self.ttl,
                                   retry_after=self.retry_after)
