"""Prometheus metrics of one server (`GET /metrics`, text exposition format).

Each app has its own registry (tests and embedders may run several apps in one process).
Request counts and latencies are labelled by the endpoint's route (never the raw path or a
parameter, so the label set stays small); the answer cache, the ledger's unwritten credits and
the export tasks are read when scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Latency buckets (seconds): the API's targets are 5 ms (small targets) and 50 ms (big).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _StateCollector(Collector):
    """Gauges read from the server's state at scrape time."""

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        state = self.read()
        cache = GaugeMetricFamily("inlink_answer_cache", "Answer cache counters and size",
                                  labels=["what"])
        for what in ("hits", "misses", "entries", "bytes"):
            cache.add_metric([what], float(state["cache"].get(what, 0)))
        yield cache
        exports = GaugeMetricFamily("inlink_export_tasks", "Export tasks by status",
                                    labels=["status"])
        for status, n in sorted(state["exports"].items()):
            exports.add_metric([status], float(n))
        yield exports
        yield GaugeMetricFamily("inlink_credits_unwritten",
                                "Credits charged in memory, not yet written to the index",
                                value=float(state["unwritten"]))
        yield GaugeMetricFamily("inlink_store_generation",
                                "Committed data transactions since the server started",
                                value=float(state["generation"]))


class ApiMetrics:
    def __init__(self, read_state: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("inlink_api_requests", "API requests by route, method and "
                                "status", ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("inlink_api_request_seconds", "API request latency by route",
                                 ["route"], buckets=BUCKETS, registry=self.registry)
        self.credits = Counter("inlink_credits_charged", "Credits charged, by route",
                               ["route"], registry=self.registry)
        self.registry.register(_StateCollector(read_state))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def charged(self, route: str, credits: int) -> None:
        if credits:
            self.credits.labels(route).inc(credits)

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["CONTENT_TYPE", "ApiMetrics"]
