"""An HTTP/1.1 keep-alive load generator: raw asyncio protocols + httptools on uvloop.

    python -m bench.loadgen '<json spec>'      (prints one JSON result on stdout)

Closed loop (`rate` 0): each of `connections` sends its next request as soon as the last answer ended.
Paced (`rate` > 0): requests are scheduled at a fixed rate and latency counts from the scheduled time,
so a slow server shows as latency, not as fewer requests (no coordinated omission).

Only answers that end inside the measured window (after `warmup`) count. It records latency to the last
byte, time to the first body byte (the first SSE chunk of a stream), the status codes, the
`x-heytoken-overhead-ms` header, and the CPU the given server processes used in the window (from
/proc), so CPU per request needs no cooperation from the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httptools

CLK_TCK = os.sysconf("SC_CLK_TCK")
OVERHEAD_HEADER = b"x-heytoken-overhead-ms"


@dataclass
class Spec:
    host: str
    port: int
    path: str
    method: str = "POST"
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    connections: int = 1
    duration: float = 5.0
    warmup: float = 1.0
    rate: float = 0.0
    pids: list[int] = field(default_factory=list)
    cpus: list[int] = field(default_factory=list)

    def request_bytes(self) -> bytes:
        body = self.body.encode()
        lines = [f"{self.method} {self.path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        if body or self.method == "POST":
            lines.append(f"content-length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def percentiles(samples: list[float]) -> dict[str, float] | None:
    if not samples:
        return None
    ordered = sorted(samples)
    n = len(ordered)

    def at(q: float) -> float:
        return ordered[min(n - 1, int(q * n))]

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": ordered[-1],
        "mean": sum(ordered) / n,
    }


class Run:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.request = spec.request_bytes()
        self.loop = asyncio.get_running_loop()
        self.t0 = 0.0  # measured window
        self.t1 = 0.0
        self.sending = True
        self.latency: list[float] = []
        self.ttfb: list[float] = []
        self.overhead: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors = 0
        self.in_flight = 0
        self.idle: deque[Conn] = deque()
        self.backlog: deque[float] = deque()
        self.drained = asyncio.Event()

    def finished(self, conn: Conn, status: int, now: float) -> None:
        self.in_flight -= 1
        if self.t0 <= now <= self.t1:
            self.latency.append(now - conn.sent)
            self.ttfb.append((conn.first or now) - conn.sent)
            if conn.overhead is not None:
                self.overhead.append(conn.overhead)
            self.statuses[status] = self.statuses.get(status, 0) + 1
        self.next(conn)

    def failed(self, conn: Conn) -> None:
        self.in_flight -= 1
        if self.t0 <= time.perf_counter() <= self.t1:
            self.errors += 1

    def next(self, conn: Conn) -> None:
        if not self.sending:
            self.idle.append(conn)
            if self.in_flight == 0:
                self.drained.set()
            return
        if self.spec.rate <= 0:
            self.in_flight += 1
            conn.send(time.perf_counter())
        elif self.backlog:
            self.in_flight += 1
            conn.send(self.backlog.popleft())
        else:
            self.idle.append(conn)

    async def connect(self) -> Conn:
        _, conn = await self.loop.create_connection(lambda: Conn(self), self.spec.host, self.spec.port)
        return conn

    async def pace(self, until: float) -> None:
        interval = 1.0 / self.spec.rate
        scheduled = time.perf_counter()
        while scheduled < until:
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.idle:
                self.in_flight += 1
                self.idle.popleft().send(scheduled)
            else:
                self.backlog.append(scheduled)
            scheduled += interval

    async def run(self) -> dict[str, Any]:
        spec = self.spec
        conns = [await self.connect() for _ in range(spec.connections)]
        start = time.perf_counter()
        self.t0, self.t1 = start + spec.warmup, start + spec.warmup + spec.duration
        cpu0: dict[int, float] = {}
        if spec.rate > 0:
            self.idle.extend(conns)
            pacer = asyncio.ensure_future(self.pace(self.t1))
        else:
            for conn in conns:
                self.next(conn)
        await asyncio.sleep(max(0.0, self.t0 - time.perf_counter()))
        cpu0 = {pid: cpu_seconds(pid) for pid in spec.pids}
        self_cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.sleep(max(0.0, self.t1 - time.perf_counter()))
        cpu1 = {pid: cpu_seconds(pid) for pid in spec.pids}
        self_cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        elapsed = time.perf_counter() - self.t0
        self.sending = False
        if spec.rate > 0:
            await pacer
        if self.in_flight > 0:
            self.drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drained.wait(), timeout=10)
        for conn in conns:
            conn.close()
        ok = sum(count for status, count in self.statuses.items() if 200 <= status < 300)
        done = sum(self.statuses.values())
        ms = [1000 * x for x in self.latency]
        return {
            "requests": done,
            "ok": ok,
            "errors": self.errors + done - ok,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "elapsed": elapsed,
            "rps": done / elapsed if elapsed > 0 else 0.0,
            "latency_ms": percentiles(ms),
            "ttfb_ms": percentiles([1000 * x for x in self.ttfb]),
            "overhead_header_ms": percentiles(self.overhead),
            "cpu_s": {str(pid): cpu1[pid] - cpu0[pid] for pid in spec.pids},
            "loadgen_cpu_s": (self_cpu1.ru_utime + self_cpu1.ru_stime) - (self_cpu0.ru_utime + self_cpu0.ru_stime),
        }


class Conn(asyncio.Protocol):
    def __init__(self, run: Run) -> None:
        self.run = run
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.sent = 0.0
        self.first = 0.0
        self.overhead: float | None = None
        self.busy = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, at: float) -> None:
        if self.closed or self.transport is None:
            self.run.failed(self)
            return
        self.sent = at
        self.first = 0.0
        self.overhead = None
        self.busy = True
        self.transport.write(self.run.request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.connection_lost(None)

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == OVERHEAD_HEADER:
            self.overhead = float(value)

    def on_body(self, body: bytes) -> None:
        if not self.first:
            self.first = time.perf_counter()

    def on_message_complete(self) -> None:
        self.busy = False
        self.run.finished(self, self.parser.get_status_code(), time.perf_counter())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        if self.busy:
            self.busy = False
            self.run.failed(self)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


async def run_spec(spec: Spec) -> dict[str, Any]:
    return await Run(spec).run()


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    spec = Spec(**json.loads(args[0]))
    if spec.cpus:
        os.sched_setaffinity(0, spec.cpus)
    import uvloop

    result = uvloop.run(run_spec(spec))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
