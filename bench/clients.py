"""Upstream HTTP clients compared as plain clients against the mock: the measurement behind app/core/http.py.

    python -m bench.clients '<json spec>'     (one client kind; prints one JSON result)

Each kind runs `connections` concurrent loops of non-streaming chat requests for `duration` seconds
(after `warmup`), on uvloop, in its own process pinned to `cpus`; the driver runs them one after the
other against the same mock and prints requests per second and the client's CPU per request.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

KINDS = ("httpx-default", "httpx-aiohttp", "aiohttp")
BODY = b'{"model":"mock-chat","messages":[{"role":"user","content":"hi"}]}'
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}


async def _loop(call: Callable[[], Awaitable[int]], connections: int, warmup: float, duration: float) -> dict[str, Any]:
    start = time.perf_counter()
    t0, t1 = start + warmup, start + warmup + duration
    counts = {"done": 0, "errors": 0}
    cpu: list[float] = []

    async def worker() -> None:
        while (now := time.perf_counter()) < t1:
            try:
                status = await call()
            except Exception:
                status = 0
            if time.perf_counter() >= t0 and now >= t0:
                counts["done" if status == 200 else "errors"] += 1

    async def clock() -> None:
        await asyncio.sleep(warmup)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu.append(usage.ru_utime + usage.ru_stime)
        await asyncio.sleep(duration)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu.append(usage.ru_utime + usage.ru_stime)

    await asyncio.gather(clock(), *(worker() for _ in range(connections)))
    return {"requests": counts["done"], "errors": counts["errors"], "elapsed": duration, "cpu_s": cpu[1] - cpu[0]}


async def run(kind: str, url: str, connections: int, warmup: float, duration: float) -> dict[str, Any]:
    if kind == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=1000)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def call_aiohttp() -> int:
                async with session.post(url, data=BODY, headers=HEADERS) as response:
                    await response.read()
                    return response.status

            return await _loop(call_aiohttp, connections, warmup, duration)
    import httpx

    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=None)
    transport: httpx.AsyncBaseTransport
    if kind == "httpx-default":
        transport = httpx.AsyncHTTPTransport(limits=limits)
    else:
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(limits=limits, trust_env=False)
    async with httpx.AsyncClient(transport=transport, trust_env=False) as client:

        async def call_httpx() -> int:
            response = await client.post(url, content=BODY, headers=HEADERS)
            return response.status_code

        return await _loop(call_httpx, connections, warmup, duration)


def main(argv: list[str] | None = None) -> None:
    spec = json.loads((argv if argv is not None else sys.argv[1:])[0])
    if spec.get("cpus"):
        os.sched_setaffinity(0, spec["cpus"])
    import uvloop

    result = uvloop.run(run(spec["kind"], spec["url"], spec["connections"], spec["warmup"], spec["duration"]))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
