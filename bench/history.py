"""The `history` scenario: the same chat load against a job log pre-filled with 0, 1M, 10M … rows.

    python -m bench.history [--rows 0,1000000,10000000] [--database-url postgresql+asyncpg://…/db]

For each size: a fresh database (a new SQLite file; on PostgreSQL a scratch database created next to
the given one and dropped afterwards), the bench account, key and channel (bench/gateway.py), then
`rows` chat rows of that account bulk-inserted by the database itself (a recursive CTE on SQLite,
generate_series on PostgreSQL: seconds per million, no Python per row) spread over the last 28 days —
inside the retention window, so they stay — with their usage rollups. Then the gateway serves
`--connections` closed-loop chat connections for `--duration` s, and GET /v1/usage for the month is
timed. The table: rows, per-request CPU of the web process, p50/p99, requests/s, /v1/usage ms, size.
Servers pinned as in `python -m bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench import features as feature_registry
from bench.driver import STREAM_CHUNKS, Scenario, Target, pick_cpus, run_loadgen
from bench.gateway import Gateway, prepare
from bench.procs import BIN, ROOT, Proc, free_port, http_request, start_mock, web_command

DAYS = 28
CHUNK = 1_000_000
"""Rows per INSERT statement (one transaction each): bounds the SQLite WAL and PostgreSQL's undo."""
USAGE_JSON = '{"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}'
ATTEMPTS_JSON = '[{"channel": "ch_bench", "outcome": "ok", "status": 200, "ms": 3}]'
COLUMNS = (
    "id, kind, status, account_id, api_key_id, model, channel_id, stream, usage, latency_ms, http_status,"
    " attempts_log, created_at, completed_at, prompt_tokens, completion_tokens, hold_amount, cost, billing_state"
)


def _fill_sql(sqlite: bool) -> str:
    # Ids sort before the gateway's own (ULIDs of today start '01'), in creation order, as real ones do.
    if sqlite:
        at = "strftime('%Y-%m-%d %H:%M:%S', :t0 + n * :step, 'unixepoch') || '.000000'"
        return (
            "WITH RECURSIVE seq(n) AS (SELECT :first UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < :last)"
            f" INSERT INTO jobs ({COLUMNS}) SELECT printf('chatcmpl-00%024d', n), 'chat', 'completed', :account,"
            f" :key, 'bench-chat', NULL, 0, '{USAGE_JSON}', 3 + n % 7, 200, '{ATTEMPTS_JSON}', {at}, {at},"
            " 12, 30, 2000, 1250, 'captured' FROM seq"
        )
    at = "to_timestamp(:t0 + n * :step)"
    return (
        f"INSERT INTO jobs ({COLUMNS}) SELECT 'chatcmpl-00' || lpad(n::text, 24, '0'), 'chat', 'completed',"
        f" :account, :key, 'bench-chat', NULL, false, '{USAGE_JSON}'::jsonb, 3 + n % 7, 200,"
        f" '{ATTEMPTS_JSON}'::jsonb, {at}, {at}, 12, 30, 2000, 1250, 'captured'"
        " FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint) - 1) AS n"
    )


async def prefill(gateway: Gateway, rows: int) -> float:
    """Insert `rows` chat rows of the bench account and their rollups; seconds it took."""
    started = time.perf_counter()
    url = gateway.settings.resolved_database_url()
    sqlite = url.startswith("sqlite")
    engine = create_async_engine(url)
    t0 = time.time() - (DAYS + 1) * 86_400
    step = DAYS * 86_400 / max(rows, 1)
    params = {"account": gateway.account_id, "key": gateway.key_id, "t0": t0, "step": step}
    day = "substr(created_at, 1, 10)" if sqlite else "to_char(timezone('UTC', created_at), 'YYYY-MM-DD')"
    rollups = (
        "INSERT INTO usage_rollups (account_id, day, model, bucket, requests, prompt_tokens, completion_tokens, cost)"
        f" SELECT account_id, {day}, model, -1, count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost)"
        f" FROM jobs WHERE account_id = :account GROUP BY account_id, {day}, model"
    )
    try:
        for first in range(0, rows, CHUNK):
            async with engine.begin() as conn:
                await conn.execute(
                    text(_fill_sql(sqlite)), {**params, "first": first, "last": min(rows, first + CHUNK)}
                )
            if sqlite:
                async with engine.connect() as conn:
                    await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        if rows:
            async with engine.begin() as conn:
                await conn.execute(text(rollups), {"account": gateway.account_id})
            if not sqlite:
                async with engine.connect() as conn:
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                    await conn.execute(text("VACUUM ANALYZE jobs"))
                    # The pre-fill and the vacuum leave gigabytes of WAL to write back: flushed now, not
                    # by a checkpoint in the middle of the measured rounds (seen: CPU per request rising
                    # 0.30 -> 0.41 ms over three rounds at 10M rows).
                    await conn.execute(text("CHECKPOINT"))
    finally:
        await engine.dispose()
    return time.perf_counter() - started


async def _admin(url: str, statement: str) -> None:
    """Run `statement` outside a transaction on `url`'s server (CREATE / DROP DATABASE)."""
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


def usage_ms(port: int, headers: dict[str, str], tries: int = 5) -> float:
    """Median wall-clock ms of GET /v1/usage for the last 30 days (the default window)."""
    times = []
    for _ in range(tries):
        started = time.perf_counter()
        status, body = http_request(port, "GET", "/v1/usage", headers=headers, timeout=60)
        times.append(1000 * (time.perf_counter() - started))
        if status != 200:
            raise RuntimeError(f"/v1/usage answered {status}: {body[:300]!r}")
    return statistics.median(times)


def memory_mb(pid: int) -> dict[str, float]:
    """The process's resident memory now: anonymous (its heap) and file-backed (mapped libraries)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "RssAnon:", "RssFile:")):
            name, kb = line.split()[:2]
            fields[name.rstrip(":")] = int(kb) / 1024
    return fields


def db_size_mb(gateway: Gateway) -> float | None:
    url = gateway.settings.resolved_database_url()
    if not url.startswith("sqlite"):
        return None
    path = Path(make_url(url).database or "")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6


def run_size(rows: int, args: argparse.Namespace, mock_port: int, cpus: tuple[Any, Any], out: Path) -> dict[str, Any]:
    server, tools = cpus
    var = out / f"rows-{rows}-{uuid.uuid4().hex[:6]}"  # a size may be repeated (interleaved runs)
    database_url, scratch = args.database_url, f"ht_history_{uuid.uuid4().hex[:8]}"
    if database_url:
        asyncio.run(_admin(args.database_url, f'CREATE DATABASE "{scratch}"'))
        database_url = make_url(args.database_url).set(database=scratch).render_as_string(hide_password=False)
    try:
        gateway = prepare(var, f"http://127.0.0.1:{mock_port}/v1", database_url, args.redis_url)
        # Money, prices and limits for the bench account, as `python -m bench` sets them.
        values = {"account": gateway.account_id, "key_id": gateway.key_id}
        for warning in feature_registry.run_setup(feature_registry.detect(), gateway.env, BIN, values, ["bench-chat"]):
            print(f"bench.history: WARNING {warning}", flush=True)
        fill_s = asyncio.run(prefill(gateway, rows))
        port = free_port()
        proc = Proc(f"gateway-{rows}", web_command(port), gateway.env, server, var / "gateway.log")
        try:
            proc.wait_http(port, timeout=120)
            idle = memory_mb(proc.pid)
            target = Target("gateway", port, proc, {"chat": "bench-chat"}, gateway.headers)
            scenario = Scenario("history-chat", "chat", "chat", args.connections, rate=args.rate)
            spy = None
            if args.py_spy:
                # A profile of the web process through the load (`py-spy` must be installed).
                command = [str(BIN / "py-spy"), "record", "--pid", str(proc.pid), "--format", "raw", "--nonblocking"]
                spy = subprocess.Popen([*command, "-o", str(out / f"py-spy-{rows}.txt")], stdout=subprocess.DEVNULL)
            measured = [run_loadgen(target, scenario, args, tools) for _ in range(args.rounds)]
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
            usage = usage_ms(port, gateway.headers)
            rss = proc.peak_rss_mb()
            loaded = memory_mb(proc.pid)
        finally:
            proc.stop()
        return {
            "rows": rows,
            "prefill_s": fill_s,
            "cpu_ms": statistics.median(m["cpu_ms_per_request"] for m in measured),
            "cpu_ms_by_round": [m["cpu_ms_per_request"] for m in measured],
            "p50": statistics.median(m["latency_ms"]["p50"] for m in measured),
            "p99": statistics.median(m["latency_ms"]["p99"] for m in measured),
            "rps": statistics.median(m["requests"] / m["elapsed"] for m in measured),
            "errors": sum(m["errors"] for m in measured),
            "usage_ms": usage,
            "db_mb": db_size_mb(gateway),
            "peak_rss_mb": rss,
            "memory_idle_mb": idle,
            "memory_after_mb": loaded,
        }
    finally:
        if database_url:
            asyncio.run(_admin(args.database_url, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))


def render(results: list[dict[str, Any]], database: str) -> str:
    lines = [
        f"### history ({database})",
        "",
        "| job rows | CPU ms/req | p50 ms | p99 ms | req/s | /v1/usage ms (month) | DB MB | peak RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        db = f"{r['db_mb']:.0f}" if r["db_mb"] is not None else "–"
        lines.append(
            f"| {r['rows']:,} | {r['cpu_ms']:.3f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['rps']:.0f} |"
            f" {r['usage_ms']:.1f} | {db} | {r['peak_rss_mb'] or 0:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="0,1000000,10000000", help="comma-separated pre-fill sizes")
    parser.add_argument("--database-url", default="", help="PostgreSQL: a database whose server may host scratch ones")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="requests/s, paced (p99 without queueing); 0: closed loop"
    )
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3, help="load runs per size (the median is shown)")
    parser.add_argument("--py-spy", action="store_true", help="profile the web process (raw py-spy output)")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.rows.split(",") if s]
    out = Path(args.out) / time.strftime("history-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    server, tools, pinning = pick_cpus(args.pin)
    print(f"bench.history: {pinning}; load average {os.getloadavg()[0]:.2f}", flush=True)
    mock, mock_port = start_mock(tools, out / "mock.log", STREAM_CHUNKS)
    results = []
    try:
        for rows in sizes:
            result = run_size(rows, args, mock_port, (server, tools), out)
            print(f"  {rows:>11,} rows: {json.dumps(result)}", flush=True)
            results.append(result)
    finally:
        mock.stop()
    database = "PostgreSQL" if args.database_url.startswith("postgresql") else "SQLite"
    print(render(results, database))
    (out / "result.json").write_text(json.dumps({"database": database, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
