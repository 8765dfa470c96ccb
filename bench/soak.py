"""`python -m bench.soak`: the gateway, every feature on, at about half its measured maximum for a while.

It starts the mock upstream and one gateway web process (the Procfile's line, pinned as in `python -m
bench`), measures the gateway's closed-loop maximum for the mix (chat, streams and embeddings at once,
11 connections each) unless `--rate` is given, then drives that mix paced (a third of the rate each)
at `--load` of that maximum for `--warmup` + `--duration` seconds, sampling the web process's RSS
every `--sample` seconds. It reports the RSS after the warm-up (start), at the end and the peak, the
growth from start to end, the requests, their errors and latency. Samples and the result go to
bench/out/soak-*/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import features as feature_registry
from bench.driver import CHAT, EMBED_INPUT, EMBEDDINGS, PROMPT, STREAM_CHUNKS, pick_cpus
from bench.gateway import prepare
from bench.procs import BIN, ROOT, Proc, free_port, start_mock, web_command

MIX = (
    ("chat", CHAT, {"model": "bench-chat", "messages": PROMPT}),
    ("stream", CHAT, {"model": "bench-chat", "messages": PROMPT, "stream": True}),
    ("embed", EMBEDDINGS, {"model": "bench-embedding", "input": EMBED_INPUT}),
)
PROBE_CONNECTIONS = 11


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set of `pid`, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def loadgen(
    port: int,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    connections: int,
    rate: float,
    seconds: float,
    warmup: float,
    tools: set[int] | None,
    pid: int,
) -> subprocess.Popen[str]:
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "path": path,
        "body": json.dumps(body, separators=(",", ":")),
        "headers": {"content-type": "application/json", **headers},
        "connections": connections,
        "duration": seconds,
        "warmup": warmup,
        "rate": rate,
        "pids": [pid],
        "cpus": sorted(tools) if tools else [],
    }
    command = [sys.executable, "-m", "bench.loadgen", json.dumps(spec)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def finish(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{err[-2000:]}")
    result: dict[str, Any] = json.loads(out)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="measured seconds (default: 10 minutes)")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds at load before the start sample")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between two RSS samples")
    parser.add_argument("--load", type=float, default=0.5, help="share of the measured maximum (default 0.5)")
    parser.add_argument("--rate", type=float, default=0.0, help="requests per second (default: --load × max)")
    parser.add_argument("--connections", type=int, default=16, help="connections per request kind")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True, help="pin as python -m bench")
    parser.add_argument("--database-url", default="", help="the gateway's database (default: SQLite in the run dir)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"), help="where logs and the JSON result go")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out) / time.strftime("soak-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    server, tools, pinning = pick_cpus(args.pin)
    print(f"soak: {pinning}", flush=True)
    mock, mock_port = start_mock(tools, out / "mock.log", STREAM_CHUNKS)
    procs = [mock]
    try:
        gateway = prepare(out / "var", f"http://127.0.0.1:{mock_port}/v1", args.database_url)
        found = feature_registry.detect()
        values = {"account": gateway.account_id, "key_id": gateway.key_id}
        for warning in feature_registry.run_setup(found, gateway.env, BIN, values, ["bench-chat", "bench-embedding"]):
            print(f"soak: WARNING {warning}", flush=True)
        print("soak: features on: " + ", ".join(f.name for f in found if f.present), flush=True)
        port = free_port()
        web = Proc("soak-gateway", web_command(port), gateway.env, server, out / "gateway.log")
        procs.append(web)
        web.wait_http(port)

        rate = args.rate
        if not rate:
            # The maximum of the mix itself, all three kinds at once: streams cost more than chat, so half
            # of chat's maximum would run the mix near saturation, not at half load.
            probes = [
                loadgen(port, path, body, gateway.headers, PROBE_CONNECTIONS, 0, 5, 1, tools, web.pid)
                for _, path, body in MIX
            ]
            peak_rps = sum(r["requests"] / r["elapsed"] for r in (finish(p, 120) for p in probes))
            rate = args.load * peak_rps
            print(
                f"soak: maximum {peak_rps:,.0f} req/s (the mix, {PROBE_CONNECTIONS} connections per kind, closed loop);"
                f" soaking at {rate:,.0f} req/s",
                flush=True,
            )

        samples: list[tuple[float, float]] = []
        t0 = time.perf_counter()
        total = args.warmup + args.duration
        gens = [
            loadgen(
                port,
                path,
                body,
                gateway.headers,
                args.connections,
                rate / len(MIX),
                args.duration,
                args.warmup,
                tools,
                web.pid,
            )
            for _, path, body in MIX
        ]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(args.sample):
                samples.append((time.perf_counter() - t0, rss_mb(web.pid)[0]))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        results = {kind: finish(gen, total + 120) for (kind, _, _), gen in zip(MIX, gens, strict=True)}
        stop.set()
        sampler.join()
        end_rss, peak_rss = rss_mb(web.pid)
        report = summarize(samples, args.warmup, end_rss, peak_rss, results, rate)
        report.update({"duration_s": args.duration, "warmup_s": args.warmup, "pinning": pinning})
        print(render(report), flush=True)
        (out / "result.json").write_text(json.dumps({**report, "samples": samples, "loadgen": results}, indent=1))
        print(f"soak: samples and result in {out}", flush=True)
        return 0
    finally:
        for proc in reversed(procs):
            proc.stop()


def summarize(
    samples: list[tuple[float, float]],
    warmup: float,
    end_rss: float,
    peak_rss: float,
    results: dict[str, dict[str, Any]],
    rate: float,
) -> dict[str, Any]:
    after = [rss for at, rss in samples if at >= warmup]
    start_rss = after[0] if after else end_rss
    requests = sum(r["requests"] for r in results.values())
    return {
        "rate": rate,
        "requests": requests,
        "achieved_rps": sum(r["rps"] for r in results.values()),
        "errors": sum(r["errors"] for r in results.values()),  # the load generator counts non-2xx too
        "p50_ms": {kind: (r.get("latency_ms") or {}).get("p50") for kind, r in results.items()},
        "p99_ms": {kind: (r.get("latency_ms") or {}).get("p99") for kind, r in results.items()},
        "rss_start_mb": start_rss,
        "rss_end_mb": end_rss,
        "rss_peak_mb": peak_rss,
        "rss_growth_pct": 100 * (end_rss - start_rss) / start_rss if start_rss else None,
    }


def render(r: dict[str, Any]) -> str:
    p50 = ", ".join(f"{k} {v:.2f}" for k, v in r["p50_ms"].items() if v is not None)
    p99 = ", ".join(f"{k} {v:.2f}" for k, v in r["p99_ms"].items() if v is not None)
    return "\n".join(
        [
            f"\n### soak: {r['duration_s']:.0f} s after a {r['warmup_s']:.0f} s warm-up, paced {r['rate']:,.0f} req/s "
            "(chat, stream, embeddings: a third each)\n",
            "| RSS start MB | RSS end MB | RSS peak MB | growth | requests | req/s | errors |",
            "|---|---|---|---|---|---|---|",
            f"| {r['rss_start_mb']:.1f} | {r['rss_end_mb']:.1f} | {r['rss_peak_mb']:.1f} "
            f"| {r['rss_growth_pct']:+.1f} % | {r['requests']:,} | {r['achieved_rps']:,.0f} | {r['errors']} |",
            f"\nlatency p50 ms: {p50}; p99 ms: {p99}",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
