"""`python -m bench`: direct-to-mock, the bare reference and the gateway, one scenario table.

Pinning: on a machine with two or more cores, the servers under test (reference, gateway) run on the
first core, the mock upstream and the load generator on the second. The servers are started once and
measured in turns (round 1: every scenario on every target, then round 2…), and the table shows the
median of the rounds. Results go to stdout and, as JSON, to bench/out/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import features as feature_registry
from bench import report
from bench.gateway import Gateway, job_rows, prepare
from bench.procs import BIN, ROOT, Proc, free_port, procfile_command, start_mock, web_command

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
PROMPT = [{"role": "user", "content": "Say hello in one short sentence."}]
EMBED_INPUT = "The quick brown fox jumps over the lazy dog."
PUBLIC_MODELS = {"chat": "bench-chat", "slow": "bench-slow", "embed": "bench-embedding"}
"""The gateway's models for each kind of request (bench.gateway.MODELS maps them to the mock's)."""
STREAM_CHUNKS = 10


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    kind: str  # chat | stream | slow | embed | cache
    connections: int
    rate: float = 0.0


SCENARIOS = [
    Scenario("c1-chat", "1 connection, chat (pure overhead)", "chat", 1),
    Scenario("c32-chat", "32 connections, chat", "chat", 32),
    Scenario("c32-stream", f"32 connections, stream ({STREAM_CHUNKS} chunks)", "stream", 32),
    Scenario("c32-embed", "32 connections, embeddings (1536 floats)", "embed", 32),
    Scenario("paced-100", "paced 100 req/s, chat (latency without queueing)", "chat", 16, rate=100),
    # Paced, not closed-loop: 8 closed-loop connections with streams of equal length stay in phase, so
    # every start arrives in a burst of 8 and the first chunk measures the queue behind 7 other starts.
    Scenario("slow-stream", "slow streams: 20 chunks 10 ms apart, paced 30 streams/s", "slow", 16, rate=30),
    Scenario("c128-chat", "128 connections, chat (saturation)", "chat", 128),
    # The same chat request with `x-heytoken-cache: on`: after the first, every answer is a cache hit
    # (docs/caching.md); targets without a cache ignore the header and go upstream.
    Scenario("c32-cache-hit", "32 connections, chat answered from the response cache", "cache", 32),
]
CACHE_HEADERS = {"x-heytoken-cache": "on"}
SPECIAL = ("startup", "jobs", "realtime")
ALL_TARGETS = ("direct", "reference", "reference-httpx", "gateway", "gateway-bare")
TARGET_NOTES = {
    "direct": "load generator straight to the mock upstream",
    "reference": "bench/reference.py: Litestar + aiohttp's own client (the gateway's), no features",
    "reference-httpx": "the same with httpx over httpx-aiohttp (the gateway's client before issue #8)",
    "gateway": "the gateway with every feature on",
    "gateway-bare": "the gateway with metrics and the overhead header off (their cost)",
    "litellm": "LiteLLM proxy, 1 worker, no DB",
}


@dataclass
class Target:
    name: str
    port: int
    proc: Proc
    models: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    ready_s: float | None = None
    """Seconds from its start to its first 200 on the health route."""

    def body(self, kind: str) -> dict[str, Any]:
        if kind == "embed":
            return {"model": self.models["embed"], "input": EMBED_INPUT}
        body: dict[str, Any] = {"model": self.models["slow" if kind == "slow" else "chat"], "messages": PROMPT}
        if kind in ("stream", "slow"):
            body["stream"] = True
        return body


def pick_cpus(pin: bool) -> tuple[set[int] | None, set[int] | None, str]:
    available = sorted(os.sched_getaffinity(0))
    if not pin:
        return None, None, "not pinned (--no-pin)"
    if len(available) < 2:
        return None, None, f"not pinned: only {len(available)} core available"
    server, tools = {available[0]}, {available[1]}
    return server, tools, f"servers on core {available[0]}, mock + load generator on core {available[1]}"


def run_loadgen(target: Target, scenario: Scenario, args: argparse.Namespace, tools: set[int] | None) -> dict[str, Any]:
    spec = {
        "host": "127.0.0.1",
        "port": target.port,
        "path": EMBEDDINGS if scenario.kind == "embed" else CHAT,
        "body": json.dumps(target.body(scenario.kind), separators=(",", ":")),
        "headers": {
            "content-type": "application/json",
            **target.headers,
            **(CACHE_HEADERS if scenario.kind == "cache" else {}),
        },
        "connections": scenario.connections,
        "duration": args.duration,
        "warmup": args.warmup,
        "rate": scenario.rate,
        "pids": [target.proc.pid],
        "cpus": sorted(tools) if tools else [],
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=args.duration + args.warmup + 60,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed on {target.name}/{scenario.name}:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    cpu = result["cpu_s"].get(str(target.proc.pid))
    result["cpu_ms_per_request"] = 1000 * cpu / result["requests"] if cpu is not None and result["requests"] else None
    return result


def measure_startup(name: str, gateway: Gateway | None, mock_port: int, cpus: set[int] | None, out: Path) -> float:
    """Seconds from spawning a fresh server to its first 200 on a real chat request."""
    port = free_port()
    if gateway is not None:
        command, env = web_command(port), gateway.env
        body, headers = {"model": "bench-chat", "messages": PROMPT}, gateway.headers
    else:
        command = web_command(port, "bench.reference:create_app")
        env = {**os.environ, "BENCH_UPSTREAM": f"http://127.0.0.1:{mock_port}/v1"}
        body, headers = {"model": "mock-chat", "messages": PROMPT}, {}
    proc = Proc(f"{name}-startup", command, env, cpus, out / f"{name}-startup-{port}.log")
    try:
        return proc.wait_http(port, CHAT, method="POST", body=body, headers=headers)
    finally:
        proc.stop()


def start_targets(
    args: argparse.Namespace, gateway: Gateway, mock: Proc, mock_port: int, server: set[int] | None, out: Path
) -> list[Target]:
    upstream_models = {"chat": "mock-chat", "slow": "mock-chat:c20:d10", "embed": "mock-embedding"}
    targets: list[Target] = []
    try:
        for name in args.targets:
            if name == "direct":
                targets.append(Target("direct", mock_port, mock, upstream_models))
                continue
            port = free_port()
            if name in ("reference", "reference-httpx"):
                env = {**os.environ, "BENCH_UPSTREAM": f"http://127.0.0.1:{mock_port}/v1"}
                env["BENCH_REFERENCE_CLIENT"] = "httpx-aiohttp" if name == "reference-httpx" else "aiohttp"
                proc = Proc(name, web_command(port, "bench.reference:create_app"), env, server, out / f"{name}.log")
                targets.append(Target(name, port, proc, upstream_models))
            elif name in ("gateway", "gateway-bare"):
                env = (
                    gateway.env
                    if name == "gateway"
                    else gateway.env_with(metrics_enabled="false", overhead_header="false")
                )
                proc = Proc(name, web_command(port), {**env, **dict(args.gateway_env)}, server, out / f"{name}.log")
                targets.append(Target(name, port, proc, PUBLIC_MODELS, gateway.headers))
            elif name == "litellm":
                targets.append(start_litellm(args, port, mock_port, server, out))
        for target in targets:
            if target.name != "direct":
                path = "/health/liveliness" if target.name == "litellm" else "/healthz"
                target.ready_s = target.proc.wait_http(target.port, path, timeout=120)
    except BaseException:
        # A target failed to start or to come up: stop the ones already started, or they outlive the run.
        for target in targets:
            if target.proc is not mock:
                target.proc.stop()
        raise
    return targets


def start_litellm(args: argparse.Namespace, port: int, mock_port: int, server: set[int] | None, out: Path) -> Target:
    """LiteLLM's proxy from its own virtualenv (`--litellm-bin`), routed to the same mock."""
    upstream = f"http://127.0.0.1:{mock_port}/v1"
    entries = []
    for public, model in (
        ("bench-chat", "mock-chat"),
        ("bench-slow", "mock-chat:c20:d10"),
        ("bench-embedding", "mock-embedding"),
    ):
        entries.append(
            f"  - model_name: {public}\n    litellm_params:\n      model: openai/{model}\n"
            f"      api_base: {upstream}\n      api_key: sk-mock\n"
        )
    config = out / "litellm.yaml"
    config.write_text("model_list:\n" + "".join(entries))
    master_key = "sk-bench-" + os.urandom(16).hex()
    env = {
        **os.environ,
        "LITELLM_MASTER_KEY": master_key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
    }
    command = [
        args.litellm_bin,
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    proc = Proc("litellm", command, env, server, out / "litellm.log")
    models = {"chat": "bench-chat", "slow": "bench-slow", "embed": "bench-embedding"}
    return Target("litellm", port, proc, models, {"authorization": f"Bearer {master_key}"})


def run_clients(args: argparse.Namespace, mock_port: int, server: set[int] | None) -> dict[str, Any]:
    from bench.clients import KINDS

    results: dict[str, Any] = {}
    for kind in KINDS:
        spec = {
            "kind": kind,
            "url": f"http://127.0.0.1:{mock_port}/v1/chat/completions",
            "connections": 32,
            "warmup": args.warmup,
            "duration": args.duration,
            "cpus": sorted(server) if server else [],
        }
        done = subprocess.run(
            [sys.executable, "-m", "bench.clients", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=args.duration + args.warmup + 60,
            cwd=ROOT,
        )
        if done.returncode != 0:
            results[kind] = {"error": done.stderr[-500:]}
            continue
        result = json.loads(done.stdout)
        result["rps"] = result["requests"] / result["elapsed"]
        result["cpu_ms_per_request"] = 1000 * result["cpu_s"] / result["requests"] if result["requests"] else None
        results[kind] = result
    return results


def job_counts(args: argparse.Namespace) -> list[tuple[float, int]]:
    """(rate, jobs) for each rate of `--job-rate`: `--job-seconds` of submissions, at least 20 jobs,
    at most `--jobs`."""
    rates = [float(r) for r in str(args.job_rate).split(",") if r.strip()]
    return [(rate, min(args.jobs, max(20, round(rate * args.job_seconds)))) for rate in rates]


def run_jobs_scenario(
    args: argparse.Namespace, gateway: Gateway, server: set[int] | None, tools: set[int] | None, out: Path
) -> dict[str, Any]:
    """The web process and a worker, then one batch per rate of `--job-rate` (lowest first, a pause
    between), each watched to its end. With pinning the worker has a core of its own (the second; the
    web process and this driver share the first), so the batch measures jobs per worker core."""
    from bench import jobs

    # The zero-delay profile: every local-provider delay (token delay, media queue and render time) at 0,
    # and tiny files (16×16, one frame a second), so the scenario measures the queue, not the encoder.
    zero = {
        name: "0"
        for name in type(gateway.settings).model_fields
        if name.startswith("local_") and ("delay" in name or name.endswith("_seconds"))
    }
    if "local_media_tiny" in type(gateway.settings).model_fields:
        zero["local_media_tiny"] = "true"
    env = gateway.env_with(**zero)
    port = free_port()
    web = Proc("jobs-web", web_command(port), env, server, out / "jobs-web.log")
    worker: Proc | None = None
    try:
        web.wait_http(port)
        base = f"http://127.0.0.1:{port}"
        model, why = asyncio.run(jobs.find_video_model(base, gateway.headers))
        if model is None:
            return {"skipped": why, "rates": []}
        # The Procfile's ${WORKER_THREADS:-8} and the like from this environment, as `heytoken run` would.
        command = procfile_command("worker", dict(os.environ))
        if command is None:
            return {"skipped": "the Procfile has no worker: line", "rates": []}
        worker = Proc("jobs-worker", command, env, tools if tools is not None else server, out / "jobs-worker.log")
        batches = []
        for rate, count in job_counts(args):
            cpu0: list[float] = []

            def batch_starts(cpu0: list[float] = cpu0) -> None:
                cpu0[:] = [web.group_cpu_seconds(), worker.group_cpu_seconds()]

            outcome = asyncio.run(
                jobs.run_jobs(
                    base,
                    gateway.headers,
                    model,
                    count,
                    rate,
                    args.job_timeout,
                    gateway.settings.resolved_database_url(),
                    gateway.account_id,
                    _worker_processes(command),
                    on_batch_start=batch_starts,
                )
            )
            cpu1 = (web.group_cpu_seconds(), worker.group_cpu_seconds())
            result = outcome.as_dict()
            result["rate"] = rate
            # From the end of the warm-up job; includes the watcher's reads of the jobs table (SQLite:
            # none in these processes) and whatever the worker does while idle.
            if outcome.submitted and cpu0:
                result["web_cpu_ms_per_job"] = 1000 * (cpu1[0] - cpu0[0]) / outcome.submitted
            if outcome.completed and cpu0:
                result["worker_cpu_ms_per_job"] = 1000 * (cpu1[1] - cpu0[1]) / outcome.completed
            batches.append(result)
            print(report.jobs_line(result), flush=True)
        return {
            "skipped": None,
            "rates": batches,
            "model": model,
            "zero_delay_settings": sorted(zero),
            "pinning": (
                f"web process on core {min(server)}, worker on core {min(tools)}"
                if server is not None and tools is not None
                else "not pinned"
            ),
        }
    finally:
        if worker is not None:
            worker.stop()
        web.stop()


def run_realtime_scenario(
    args: argparse.Namespace, gateway: Gateway, server: set[int] | None, tools: set[int] | None, out: Path
) -> dict[str, Any]:
    """WS /v1/realtime relaying a mock OpenAI Realtime upstream (bench/realtime.py), against a direct
    connection to the mock: frames per second and the latency added per event."""
    from bench import realtime

    command = [sys.executable, "-m", "bench.realtime", "--mock", "--frames", str(args.realtime_frames)]
    mock = Proc("realtime-mock", command, dict(os.environ), tools, out / "realtime-mock.log")
    web: Proc | None = None
    try:
        assert mock.popen.stdout is not None
        line = mock.popen.stdout.readline().decode()
        if not line.startswith("READY "):
            return {"error": f"the realtime mock did not start: {line!r}"}
        mock_port = int(line.split()[1])
        realtime_channel(gateway, f"http://127.0.0.1:{mock_port}/v1")
        port = free_port()
        web = Proc("realtime-web", web_command(port), gateway.env, server, out / "realtime-web.log")
        web.wait_http(port)
        sessions, responses = args.realtime_sessions, args.realtime_responses
        query = f"/v1/realtime?model={realtime.MODEL}"
        direct = asyncio.run(realtime.measure(f"ws://127.0.0.1:{mock_port}{query}", {}, sessions, responses))
        through = asyncio.run(realtime.measure(f"ws://127.0.0.1:{port}{query}", gateway.headers, sessions, responses))
        result = realtime.compare(direct, through)
        result.update(sessions=sessions, responses=responses, frames_per_response=args.realtime_frames)
        return result
    finally:
        if web is not None:
            web.stop()
        mock.stop()


def realtime_channel(gateway: Gateway, base_url: str) -> None:
    """An `openai` channel for bench-realtime (free: the scenario measures the relay, not the money)."""
    from app.billing import service as billing
    from app.channels import service as channels
    from app.core.db import create_engine, create_sessionmaker, unit_of_work

    async def add() -> None:
        engine = create_engine(gateway.settings)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                await channels.add_channel(
                    session,
                    secret_key=gateway.settings.resolved_secret_key(),
                    name=f"realtime-{gateway.key_id[-8:]}",
                    provider="openai",
                    base_url=base_url,
                    api_key="sk-mock",
                    models=["bench-realtime"],
                    priority=0,
                    weight=1,
                    options=None,
                )
                await billing.set_price(session, "bench-realtime")
        finally:
            await engine.dispose()

    asyncio.run(add())


def _worker_processes(command: list[str]) -> int:
    """`--processes N` of the Procfile's worker line (Dramatiq's default is one per core)."""
    if "--processes" in command:
        return int(command[command.index("--processes") + 1])
    return os.cpu_count() or 1


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def med(path: tuple[str, ...]) -> float | None:
        values = []
        for r in rounds:
            value: Any = r
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None:
                values.append(value)
        return statistics.median(values) if values else None

    return {
        "rps": med(("rps",)),
        "p50": med(("latency_ms", "p50")),
        "p99": med(("latency_ms", "p99")),
        "ttfb_p50": med(("ttfb_ms", "p50")),
        "ttfb_p99": med(("ttfb_ms", "p99")),
        "cpu_ms": med(("cpu_ms_per_request",)),
        "overhead_p50": med(("overhead_header_ms", "p50")),
        "overhead_p99": med(("overhead_header_ms", "p99")),
        "loadgen_cpu_ms": med(("loadgen_cpu_ms_per_request",)),
        "requests": sum(r["requests"] for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
        "statuses": {k: sum(r["statuses"].get(k, 0) for r in rounds) for r in rounds for k in r["statuses"]},
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = [s.name for s in SCENARIOS] + list(SPECIAL)
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(names), help=f"comma-separated, from: {', '.join(names)}")
    parser.add_argument("--targets", default=",".join(ALL_TARGETS), help=f"from: {', '.join(ALL_TARGETS)}, litellm")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per scenario and target")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each measurement")
    parser.add_argument("--rounds", type=int, default=3, help="the table shows the median of the rounds")
    parser.add_argument("--clients", action=argparse.BooleanOptionalAction, default=True, help="compare HTTP clients")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True, help="pin servers / tools")
    parser.add_argument("--jobs", type=int, default=1000, help="at most this many video jobs per rate")
    parser.add_argument(
        "--job-rate",
        default="5,20,50,100,200",
        help="video jobs submitted per second: one batch per comma-separated rate, lowest first",
    )
    parser.add_argument("--job-seconds", type=float, default=5.0, help="seconds of submissions per rate")
    parser.add_argument("--job-timeout", type=float, default=600.0, help="seconds to wait for the jobs to finish")
    parser.add_argument("--realtime-sessions", type=int, default=4, help="concurrent sessions, realtime scenario")
    parser.add_argument("--realtime-responses", type=int, default=20, help="responses per realtime session")
    parser.add_argument("--realtime-frames", type=int, default=200, help="audio deltas per realtime response")
    parser.add_argument("--database-url", default="", help="the gateway's database (default: SQLite in the run dir)")
    parser.add_argument("--redis-url", default="", help="the gateway's Redis (default: HEYTOKEN_REDIS_URL's default)")
    parser.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        type=lambda s: tuple(s.split("=", 1)),
        metavar="HEYTOKEN_X=value",
        help="extra environment for the gateway (repeatable)",
    )
    parser.add_argument("--litellm-bin", default="", help="the `litellm` executable of its own virtualenv")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"), help="where logs and the JSON result go")
    args = parser.parse_args(argv)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.targets = [t for t in args.targets.split(",") if t]
    unknown = [s for s in args.scenarios if s not in names] + [
        t for t in args.targets if t not in (*ALL_TARGETS, "litellm")
    ]
    if unknown:
        parser.error(f"unknown scenario or target: {', '.join(unknown)}")
    if "litellm" in args.targets and not args.litellm_bin:
        parser.error("the litellm target needs --litellm-bin")
    if "direct" not in args.targets:
        args.targets.insert(0, "direct")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out) / time.strftime("run-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    server, tools, pinning = pick_cpus(args.pin)
    found = feature_registry.detect()
    load_before = os.getloadavg()
    print(f"bench: {pinning}; {os.cpu_count()} cores; load average {load_before[0]:.2f} at start", flush=True)

    mock, mock_port = start_mock(tools, out / "mock.log", STREAM_CHUNKS)
    procs: list[Proc] = [mock]
    result: dict[str, Any] = {"args": {k: v for k, v in vars(args).items() if k != "gateway_env"}, "pinning": pinning}
    try:
        gateway = prepare(out / "var", f"http://127.0.0.1:{mock_port}/v1", args.database_url, args.redis_url)
        values = {"account": gateway.account_id, "key_id": gateway.key_id}
        warnings = feature_registry.run_setup(
            found, gateway.env, BIN, values, ["bench-chat", "bench-slow", "bench-embedding"]
        )
        for feature in found:
            print(f"bench: feature {feature.name}: {'ON' if feature.present else 'absent'} — {feature.how}", flush=True)
        for warning in warnings:
            print(f"bench: WARNING {warning}", flush=True)
        result["features"] = [f.__dict__ for f in found]
        result["warnings"] = warnings

        targets = start_targets(args, gateway, mock, mock_port, server, out)
        procs += [t.proc for t in targets if t.proc is not mock]
        scenarios = [s for s in SCENARIOS if s.name in args.scenarios]
        raw: dict[str, dict[str, list[dict[str, Any]]]] = {s.name: {t.name: [] for t in targets} for s in scenarios}
        startup: dict[str, list[float]] = {}
        for round_no in range(args.rounds):
            for scenario in scenarios:
                for target in targets:
                    measured = run_loadgen(target, scenario, args, tools)
                    measured["loadgen_cpu_ms_per_request"] = (
                        1000 * measured["loadgen_cpu_s"] / measured["requests"] if measured["requests"] else None
                    )
                    raw[scenario.name][target.name].append(measured)
                    print(report.progress(round_no, scenario.name, target.name, measured), flush=True)
            if "startup" in args.scenarios:
                for target in targets:
                    if target.name in ("reference", "gateway"):
                        gw = gateway if target.name == "gateway" else None
                        seconds = measure_startup(target.name, gw, mock_port, server, out)
                        startup.setdefault(target.name, []).append(seconds)
                        print(f"  round {round_no + 1} startup     {target.name:<13} {seconds:.2f} s", flush=True)

        result["scenarios"] = {
            s.name: {"title": s.title, "targets": {t: summarize(r) for t, r in raw[s.name].items()}} for s in scenarios
        }
        result["raw"] = raw
        result["startup_s"] = {name: statistics.median(v) for name, v in startup.items()}
        if "startup" in args.scenarios:
            # LiteLLM's start-up is timed once, to its health route, as it is started for the run.
            result["startup_s"].update({t.name: t.ready_s for t in targets if t.name == "litellm"})
        result["peak_rss_mb"] = {t.name: t.proc.peak_rss_mb() for t in targets}
        if "gateway" in args.targets and scenarios:
            result["job_rows_written"] = job_rows(gateway)
        for target in targets:
            if target.proc is not mock:
                target.proc.stop()
        if args.clients:
            result["clients"] = run_clients(args, mock_port, server)
        if "gateway-bare" in args.targets:
            from bench.micro import measure

            result["observability_micro_us"] = asyncio.run(measure())
        if "jobs" in args.scenarios:
            result["jobs"] = run_jobs_scenario(args, gateway, server, tools, out)
        if "realtime" in args.scenarios:
            result["realtime"] = run_realtime_scenario(args, gateway, server, tools, out)
        result["load_average"] = {"start": load_before, "end": os.getloadavg()}
        print(report.render(result, TARGET_NOTES), flush=True)
        path = out / "result.json"
        path.write_text(json.dumps(result, indent=1, default=str))
        print(f"bench: JSON result and logs in {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
        return 0
    finally:
        for proc in procs:
            proc.stop()
