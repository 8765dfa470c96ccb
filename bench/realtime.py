"""The realtime scenario: frames relayed per second through WS /v1/realtime, and the latency the
gateway adds per event, against a direct connection to a mock OpenAI Realtime upstream.

`python -m bench.realtime --mock` runs the mock (it prints `READY <port>`): on each `response.create`
it sends `frames` audio deltas of 100 ms (4,800 bytes of PCM16 at 24 kHz, base64) then `response.done`
with usage. Each delta carries its send time (ns, wall clock) in its `event_id`; the gateway relays
frames unchanged, so the client reads each event's latency from the same clock on both paths.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import time
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

PAYLOAD = base64.b64encode(bytes(4800)).decode()
MODEL = "bench-realtime"


async def _mock_session(ws: ServerConnection, frames: int) -> None:
    await ws.send(json.dumps({"type": "session.created", "event_id": "evt_0", "session": {"model": MODEL}}))
    async for message in ws:
        event = json.loads(message)
        if event.get("type") == "session.update":
            await ws.send(json.dumps({"type": "session.updated", "event_id": "evt_1", "session": {}}))
        elif event.get("type") == "response.create":
            for _ in range(frames):
                delta = {"type": "response.output_audio.delta", "event_id": f"evt_{time.time_ns()}",
                         "response_id": "resp_1", "item_id": "item_1", "output_index": 0, "content_index": 0,
                         "delta": PAYLOAD}  # fmt: skip
                await ws.send(json.dumps(delta))
            usage = {
                "total_tokens": frames + 1,
                "input_tokens": 1,
                "output_tokens": frames,
                "input_token_details": {"text_tokens": 1},
                "output_token_details": {"audio_tokens": frames},
            }
            done = {"type": "response.done", "event_id": "evt_2", "response": {"id": "resp_1", "status": "completed",
                    "output": [], "usage": usage}}  # fmt: skip
            await ws.send(json.dumps(done))


async def run_mock(frames: int) -> None:
    async with serve(lambda ws: _mock_session(ws, frames), "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"READY {port}", flush=True)
        await asyncio.Future()


async def _session(url: str, headers: dict[str, str], responses: int, out: dict[str, Any]) -> None:
    async with connect(url, additional_headers=headers, max_size=None, compression=None) as ws:
        while json.loads(await ws.recv())["type"] != "session.created":
            pass
        for _ in range(responses):
            await ws.send('{"type": "response.create"}')
            while True:
                raw = await ws.recv()
                now = time.time_ns()
                event = json.loads(raw)
                kind = event["type"]
                if kind == "response.output_audio.delta":
                    out["frames"] += 1
                    out["bytes"] += len(raw)
                    out["latency_ns"].append(now - int(event["event_id"][4:]))
                elif kind == "response.done":
                    break
                elif kind == "error":
                    out["errors"] += 1
                    return


async def measure(url: str, headers: dict[str, str], sessions: int, responses: int) -> dict[str, Any]:
    out: dict[str, Any] = {"frames": 0, "bytes": 0, "errors": 0, "latency_ns": []}
    start = time.perf_counter()
    results = await asyncio.gather(
        *(_session(url, headers, responses, out) for _ in range(sessions)), return_exceptions=True
    )
    elapsed = time.perf_counter() - start
    out["errors"] += sum(1 for r in results if isinstance(r, BaseException))
    lat = sorted(out.pop("latency_ns"))

    def pct(p: float) -> float | None:
        return lat[min(len(lat) - 1, int(p * len(lat)))] / 1e6 if lat else None

    out.update(
        elapsed_s=elapsed,
        frames_per_s=out["frames"] / elapsed if elapsed else None,
        latency_ms={"p50": statistics.median(lat) / 1e6 if lat else None, "p99": pct(0.99)},
    )
    return out


def compare(direct: dict[str, Any], gateway: dict[str, Any]) -> dict[str, Any]:
    def minus(key: str) -> float | None:
        a, b = gateway["latency_ms"].get(key), direct["latency_ms"].get(key)
        return None if a is None or b is None else a - b

    return {"direct": direct, "gateway": gateway, "added_ms": {"p50": minus("p50"), "p99": minus("p99")}}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.realtime")
    parser.add_argument("--mock", action="store_true", help="run the mock realtime upstream")
    parser.add_argument("--frames", type=int, default=200, help="audio deltas per response")
    args = parser.parse_args()
    if not args.mock:
        parser.error("only --mock runs on its own; the scenario runs from `python -m bench --scenarios=realtime`")
    asyncio.run(run_mock(args.frames))


if __name__ == "__main__":
    sys.exit(main())
