"""The gateway's Prometheus metrics: plain dicts and lists on the request path, text at scrape time.

prometheus-client's own metric objects take a lock on every `labels()` and `inc()`; a web process
runs one event loop, so the request path here only bumps ints in dicts (a bisect for a histogram
bucket), and a collector turns them into metric families when /metrics is scraped. Label values
are bounded: routes are path templates, models and channels come from the catalog.

With `WEB_CONCURRENCY` > 1, each uvicorn worker counts its own requests and /metrics shows the
worker that answered the scrape.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlmodel import col

from app.cache.store import CacheMetrics
from app.core.timing import RequestTiming, current
from app.jobs.models import TERMINAL_STAGES, Job, JobKind, JobStatus, Stage
from app.realtime.session import Traffic

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from app.cache.store import CacheStore
    from app.jobs.recorder import JobRecorder
    from app.jobs.records import JobRecord


class MetricsResources(Protocol):
    """What /metrics reads from the process's resources (app/api/resources.py passes them in)."""

    engine: AsyncEngine
    recorder: JobRecorder
    cache: CacheStore


log = logging.getLogger("heytoken.metrics")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
# Attempt outcomes that are not the upstream's fault.
NOT_UPSTREAM_ERRORS = frozenset({"ok", "client_disconnected"})
IN_FLIGHT = (JobStatus.QUEUED, JobStatus.IN_PROGRESS)
OPEN_STAGES = [stage.value for stage in Stage if stage not in TERMINAL_STAGES]
"""The stages of the in-flight statuses."""
JOBS_GAUGE_MAX_AGE = 5.0
JOBS_GAUGE_TIMEOUT = 2.0


class Histogram:
    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += count
            out.append((_le(bound), float(running)))
        return out


def _le(bound: float) -> str:
    return "+Inf" if bound == math.inf else repr(bound)


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.duration: dict[tuple[str, str, str], Histogram] = {}
        self.overhead: dict[str, Histogram] = {}
        self.ttft: dict[tuple[str, str], Histogram] = {}
        self.upstream_errors: dict[tuple[str, str], int] = {}
        self.jobs_in_flight: dict[tuple[str, str], int] | None = None
        self.job_log_pending = 0
        self.job_log_dropped = 0
        self.overruns = 0
        self.overrun_units = 0
        self.cache = CacheMetrics()
        """The response cache's counters (app/cache/store.py), the process's own object once scraped."""
        self._jobs_read_at = -math.inf
        self.realtime: Traffic | None = None
        """The realtime sockets' counters (app.api.routes.realtime), read at scrape time."""
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    # --- the request path: no I/O, no await, no lock ---

    def observe_overhead(self, route: str, seconds: float) -> None:
        hist = self.overhead.get(route)
        if hist is None:
            hist = self.overhead[route] = Histogram(OVERHEAD_BUCKETS)
        hist.observe(seconds)

    def observe_request(self, route: str, method: str, status: int, timing: RequestTiming, seconds: float) -> None:
        key = (route, method, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        hkey = (route, timing.model, timing.channel)
        hist = self.duration.get(hkey)
        if hist is None:
            hist = self.duration[hkey] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)

    def observe_job(self, rec: JobRecord) -> None:
        """Called by the job recorder for every chat/embedding request it records."""
        if rec.overrun > 0:
            self.overruns += 1
            self.overrun_units += rec.overrun
        attempts = rec.attempts_log or ()
        channel = str(attempts[-1].get("channel", "")) if attempts else ""
        timing = current()
        if timing is not None:
            timing.model, timing.channel = rec.model, channel
        for attempt in attempts:
            outcome = str(attempt.get("outcome", ""))
            if outcome not in NOT_UPSTREAM_ERRORS:
                key = (str(attempt.get("channel", "")), outcome)
                self.upstream_errors[key] = self.upstream_errors.get(key, 0) + 1
        if rec.ttft_ms is not None:
            tkey = (rec.model, channel)
            hist = self.ttft.get(tkey)
            if hist is None:
                hist = self.ttft[tkey] = Histogram(LATENCY_BUCKETS)
            hist.observe(rec.ttft_ms / 1000)

    # --- scrape time ---

    async def refresh(self, res: MetricsResources) -> None:
        """Read what lives outside this module: the job log's queue, and in-flight jobs from the database
        (at most every few seconds, however often /metrics is scraped)."""
        self.job_log_pending = res.recorder.pending
        self.job_log_dropped = res.recorder.dropped
        self.cache = res.cache.metrics
        now = time.monotonic()
        if now - self._jobs_read_at < JOBS_GAUGE_MAX_AGE:
            return
        self._jobs_read_at = now
        # Only media jobs are ever in flight (a job-log row is written finished), and their open stages
        # are found through the media jobs' partial index: `status IN (…)` had no index and read every
        # row of the table, the job log's millions included, at every scrape (issue #23).
        stmt = (
            select(Job.kind, Job.status, func.count())  # type: ignore[call-overload]
            .where(col(Job.stage).in_(OPEN_STAGES))
            .group_by(Job.kind, Job.status)
        )
        try:
            async with asyncio.timeout(JOBS_GAUGE_TIMEOUT), res.engine.connect() as conn:
                rows = (await conn.execute(stmt)).all()
        except Exception as exc:
            log.warning("metrics.jobs_gauge_failed error=%s", type(exc).__name__)
            self.jobs_in_flight = None
            return
        self.jobs_in_flight = {(str(kind), str(status)): int(count) for kind, status, count in rows}


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        requests = CounterMetricFamily(
            "heytoken_http_requests",
            "API requests answered, by route, method and status.",
            labels=["route", "method", "status"],
        )
        for labels, count in list(m.requests.items()):
            requests.add_metric(list(labels), count)
        yield requests

        duration = HistogramMetricFamily(
            "heytoken_request_duration_seconds",
            "Time from request to last byte, by route, model and channel (upstream included).",
            labels=["route", "model", "channel"],
        )
        for labels, hist in list(m.duration.items()):
            duration.add_metric(list(labels), hist.cumulative(), hist.total)
        yield duration

        overhead = HistogramMetricFamily(
            "heytoken_overhead_seconds",
            "Time spent in the gateway up to the response start, the upstream wait excluded.",
            labels=["route"],
        )
        for route, hist in list(m.overhead.items()):
            overhead.add_metric([route], hist.cumulative(), hist.total)
        yield overhead

        ttft = HistogramMetricFamily(
            "heytoken_time_to_first_token_seconds",
            "Streams: time to the first relayed chunk.",
            labels=["model", "channel"],
        )
        for (model, channel), hist in list(m.ttft.items()):
            ttft.add_metric([model, channel], hist.cumulative(), hist.total)
        yield ttft

        errors = CounterMetricFamily(
            "heytoken_upstream_errors",
            "Failed upstream attempts, by channel and outcome.",
            labels=["channel", "outcome"],
        )
        for (channel, outcome), count in list(m.upstream_errors.items()):
            errors.add_metric([channel, outcome], count)
        yield errors

        yield GaugeMetricFamily(
            "heytoken_job_log_pending",
            "Job rows of finished requests waiting for the batched writer.",
            m.job_log_pending,
        )
        yield CounterMetricFamily(
            "heytoken_job_log_dropped", "Job rows dropped because the writer's queue was full.", m.job_log_dropped
        )
        yield CounterMetricFamily(
            "heytoken_billing_overruns", "Requests whose upstream usage cost more than their hold.", m.overruns
        )
        yield CounterMetricFamily(
            "heytoken_billing_overrun_usd_micros",
            "What usage beyond the holds cost, booked to the house account (never to the customer).",
            m.overrun_units,
        )
        yield from _cache_families(m.cache)
        if m.realtime is not None:
            yield from _realtime(m.realtime)
        if m.jobs_in_flight is not None:
            jobs = GaugeMetricFamily(
                "heytoken_jobs",
                "Jobs not finished yet, by kind and status (read from the database).",
                labels=["kind", "status"],
            )
            for kind in JobKind:
                for status in IN_FLIGHT:
                    jobs.add_metric([kind.value, status.value], m.jobs_in_flight.get((kind.value, status.value), 0))
            yield jobs


def _cache_families(cache: CacheMetrics) -> Iterator[Metric]:
    yield CounterMetricFamily("heytoken_cache_hits", "Requests answered from the response cache.", cache.hits)
    yield CounterMetricFamily(
        "heytoken_cache_misses", "Cacheable requests that went upstream (their answer is stored).", cache.misses
    )
    yield CounterMetricFamily(
        "heytoken_cache_coalesced",
        "Requests that waited for an identical request in flight instead of calling the upstream.",
        cache.coalesced,
    )
    yield CounterMetricFamily("heytoken_cache_stored_bytes", "Bytes written to the response cache.", cache.stored_bytes)
    yield CounterMetricFamily(
        "heytoken_cache_saved_usd_micros",
        "What hits and coalesced requests would have cost at full price, minus what they were charged.",
        cache.saved,
    )
    yield CounterMetricFamily("heytoken_cache_errors", "Cache reads and writes that failed (Redis).", cache.errors)


def _realtime(t: Traffic) -> Iterator[Metric]:
    yield GaugeMetricFamily("heytoken_realtime_sessions", "Realtime sessions open in this process.", t.open_sessions)
    yield CounterMetricFamily("heytoken_realtime_sessions_opened", "Realtime sessions opened.", t.sessions_total)
    frames = CounterMetricFamily(
        "heytoken_realtime_frames", "Realtime frames relayed, by direction (in: from the client).", labels=["direction"]
    )
    frames.add_metric(["in"], t.frames_in)
    frames.add_metric(["out"], t.frames_out)
    yield frames
    sizes = CounterMetricFamily(
        "heytoken_realtime_bytes", "Realtime frame bytes relayed, by direction.", labels=["direction"]
    )
    sizes.add_metric(["in"], t.bytes_in)
    sizes.add_metric(["out"], t.bytes_out)
    yield sizes
