"""robots.txt: RFC 9309 outcome rules, parsing limits, and Google's conformance cases."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from pathlib import Path

import pytest

from inlink.sources.fetcher import Response
from inlink.sources.robots import (
    ROBOTS_MAX_BYTES,
    RobotsCache,
    Verdict,
    parse_robots,
    product_token,
    rules_from_response,
)

CASES = Path(__file__).parents[3] / "shared" / "conformance" / "robots" / "google_ctc.json"
AGENT = "inlink/0.1.0 (+https://github.com/inlink)"


def rules(status: int | None, body: bytes = b"", error: str | None = None) -> Verdict:
    resp = Response("http://x.test/robots.txt", status, body=body, error=error)
    return rules_from_response(resp, now=0.0, ttl=10.0, retry_after=1.0).verdict


def test_outcome_rules() -> None:
    assert rules(200, b"User-agent: *\nDisallow: /") is Verdict.RULES
    assert rules(404) is Verdict.ALLOW_ALL and rules(410) is Verdict.ALLOW_ALL
    assert rules(500) is Verdict.DISALLOW_ALL and rules(503) is Verdict.DISALLOW_ALL
    assert rules(429) is Verdict.DISALLOW_ALL
    assert rules(None, error="timeout") is Verdict.DISALLOW_ALL
    assert rules(301) is Verdict.ALLOW_ALL          # redirects beyond the limit


def test_unreachable_is_retried_sooner() -> None:
    down = rules_from_response(Response("u", 503), now=0.0, ttl=86400.0, retry_after=60.0)
    assert down.expires == 60.0
    up = rules_from_response(Response("u", 200), now=0.0, ttl=86400.0, retry_after=60.0)
    assert up.expires == 86400.0


def test_parse_limits_and_bom() -> None:
    assert product_token(AGENT) == "inlink"
    parsed = parse_robots(b"\xef\xbb\xbfUser-agent: *\nDisallow: /a\n")
    assert not parsed.can_fetch("http://x.test/a", "inlink")
    tail = b"User-agent: *\nDisallow: /early\n" + b"#" * ROBOTS_MAX_BYTES + b"\nDisallow: /late\n"
    parsed = parse_robots(tail)
    assert not parsed.can_fetch("http://x.test/early", "inlink")
    assert parsed.can_fetch("http://x.test/late", "inlink")


def test_cache_follows_redirects_and_fetches_once() -> None:
    calls: list[str] = []

    async def fetch(url: str) -> Response:
        calls.append(url)
        await asyncio.sleep(0.01)
        if url.endswith("/robots.txt"):
            return Response(url, 301, headers=[("Location", "/r1")])
        n = int(url.rsplit("r", 1)[1])
        if n < 5:
            return Response(url, 302, headers=[("Location", f"/r{n + 1}")])
        return Response(url, 200, body=b"User-agent: *\nDisallow: /x\nCrawl-delay: 2.5\n")

    async def main() -> None:
        cache = RobotsCache(fetch, AGENT)
        got = await asyncio.gather(*(cache.get("http://a.test") for _ in range(10)))
        assert all(g is got[0] for g in got)
        assert not got[0].allowed("http://a.test/x", cache.agent)
        assert got[0].crawl_delay(cache.agent) == 2.5
        assert len(calls) == 6                  # robots.txt + 5 redirects, once

    asyncio.run(main())


def test_google_conformance_cases() -> None:
    if not CASES.is_file():
        pytest.skip(f"{CASES} not present")
    cases = json.loads(CASES.read_text())["cases"]
    failures: Counter[str] = Counter()
    for case in cases:
        body = base64.b64decode(case["robotstxt_b64"])
        allowed = parse_robots(body).can_fetch(case["url"], case["user_agent"])
        if allowed != case["expected_allowed"]:
            failures[f"{case['file']} ({case['test_type']})"] += 1
    passed = len(cases) - sum(failures.values())
    # Measured: 379 of 400 (94.75%); docs/crawl.md lists the known differences.
    assert passed / len(cases) >= 0.945, (passed, failures.most_common())
    standard = [c for c in cases if c["test_type"] == "STANDARD"]
    std_failed = sum(v for k, v in failures.items() if "STANDARD" in k)
    assert std_failed <= 13, failures.most_common()
    assert len(standard) > 0
