"""Request metrics for the HTTP services: Prometheus text and a JSON summary with percentiles."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# The *_created series double the output and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Recent latencies kept per (method, route) for exact percentiles in the JSON view.
SAMPLES_PER_ROUTE = 2048
UNMATCHED_ROUTE = "<unmatched>"


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


@dataclass
class _RouteStats:
    count_by_status: dict[int, int] = field(default_factory=dict)
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES_PER_ROUTE))


class _PoolCollector(Collector):
    def __init__(self, read_pool: Callable[[], dict[str, int]]) -> None:
        self._read_pool = read_pool

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "db_pool_connections", "Database pool connections by state", labels=["state"]
        )
        for state, value in self._read_pool().items():
            family.add_metric([state], value)
        yield family


class HttpMetrics:
    """Counts and times requests by route template (never by raw path, so cardinality stays bounded)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.started_at = time.time()
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._requests = Counter(
            "http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self._latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        uptime = Gauge("process_uptime_seconds", "Seconds since the service started", registry=self.registry)
        uptime.set_function(self.uptime_s)
        self._routes: dict[tuple[str, str], _RouteStats] = {}
        self._read_pool: Callable[[], dict[str, int]] | None = None

    def uptime_s(self) -> float:
        return round(time.time() - self.started_at, 3)

    def watch_pool(self, read_pool: Callable[[], dict[str, int]]) -> None:
        """Report a database pool, read at scrape time."""
        if self._read_pool is None:
            self.registry.register(_PoolCollector(lambda: self._read_pool() if self._read_pool else {}))
        self._read_pool = read_pool

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self._requests.labels(method, route, str(status)).inc()
        self._latency.labels(method, route).observe(seconds)
        stats = self._routes.setdefault((method, route), _RouteStats())
        stats.count_by_status[status] = stats.count_by_status.get(status, 0) + 1
        stats.samples.append(seconds)

    def prometheus_text(self) -> bytes:
        return generate_latest(self.registry)

    def summary(self) -> dict[str, object]:
        routes = []
        total = 0
        for (method, route), stats in sorted(self._routes.items(), key=lambda item: (item[0][1], item[0][0])):
            ordered = sorted(stats.samples)
            count = sum(stats.count_by_status.values())
            total += count
            routes.append(
                {
                    "method": method,
                    "route": route,
                    "count": count,
                    "by_status": {str(k): v for k, v in sorted(stats.count_by_status.items())},
                    "latency_ms": {
                        "samples": len(ordered),
                        "p50": round(percentile(ordered, 0.50) * 1000, 3),
                        "p95": round(percentile(ordered, 0.95) * 1000, 3),
                        "p99": round(percentile(ordered, 0.99) * 1000, 3),
                        "max": round(ordered[-1] * 1000, 3),
                    },
                }
            )
        return {
            "service": self.service,
            "uptime_s": self.uptime_s(),
            "requests_total": total,
            "routes": routes,
            "db_pool": self._read_pool() if self._read_pool else None,
        }
