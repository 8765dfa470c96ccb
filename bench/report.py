"""The printed table of a benchmark run (plain text, also pasted into bench/RESULTS.md)."""

from __future__ import annotations

from typing import Any

STREAMS = ("c32-stream", "slow-stream")


def _f(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "–"
    return f"{value / base:.2f}×"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        cells = [
            c.ljust(w) if i == 0 or (i == len(row) - 1 and c[:1] not in "-–0123456789") else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def progress(round_no: int, scenario: str, target: str, m: dict[str, Any]) -> str:
    lat = m.get("latency_ms") or {}
    return (
        f"  round {round_no + 1} {scenario:<11} {target:<13} {m['rps']:>9,.0f} req/s  p50 {_f(lat.get('p50'))} ms"
        f"  p99 {_f(lat.get('p99'))} ms  errors {m['errors']}"
    )


def render(result: dict[str, Any], notes: dict[str, str]) -> str:
    out = [""]
    out.append(
        f"Pinning: {result['pinning']}. Load average {result['load_average']['start'][0]:.2f} at start, "
        f"{result['load_average']['end'][0]:.2f} at the end (other work on the machine makes figures noisy)."
    )
    out.append(
        "Features on in the gateway: " + ", ".join(f["name"] for f in result.get("features", []) if f["present"])
    )
    absent = [f"{f['name']} ({f['how']})" for f in result.get("features", []) if not f["present"]]
    if absent:
        out.append("Absent from this tree: " + "; ".join(absent))
    for warning in result.get("warnings", []):
        out.append(f"WARNING: {warning}")
    if "job_rows_written" in result:
        out.append(f"Job log: {result['job_rows_written']:,} job rows written by the gateway during the run.")
    targets_seen: list[str] = []
    for name, scenario in result.get("scenarios", {}).items():
        targets = scenario["targets"]
        targets_seen = list(targets)
        direct, ref = targets.get("direct", {}), targets.get("reference", {})
        header = ["target", "req/s", "× ref", "p50 ms", "p99 ms", "+p50 ms", "+p99 ms"]
        if name in STREAMS:
            header += ["1st chunk p50", "1st chunk p99"]
        header += ["CPU ms/req", "req/s per core", "× ref", "errors"]
        rows = []
        for target, s in targets.items():
            row = [
                target,
                _f(s["rps"], 0),
                _ratio(s["rps"], ref.get("rps")),
                _f(s["p50"]),
                _f(s["p99"]),
                "–" if target == "direct" else _f(_minus(s["p50"], direct.get("p50"))),
                "–" if target == "direct" else _f(_minus(s["p99"], direct.get("p99"))),
            ]
            if name in STREAMS:
                row += [_f(s["ttfb_p50"]), _f(s["ttfb_p99"])]
            errors = str(s["errors"])
            if s["errors"]:
                errors += " " + ",".join(f"{k}:{v}" for k, v in s["statuses"].items() if not k.startswith("2"))
            capacity, ref_capacity = _per_core(s["cpu_ms"]), _per_core(ref.get("cpu_ms"))
            row += [_f(s["cpu_ms"], 3), _f(capacity, 0), _ratio(capacity, ref_capacity), errors]
            rows.append(row)
        out += ["", f"### {name}: {scenario['title']}", "", _table(header, rows)]
        gw = targets.get("gateway", {})
        if gw.get("overhead_p50") is not None:
            out.append("")
            out.append(
                f"x-heytoken-overhead-ms (gateway's own account): p50 {_f(gw['overhead_p50'], 3)}, "
                f"p99 {_f(gw['overhead_p99'], 3)}"
            )

    summary_rows = []
    for target in targets_seen:
        summary_rows.append(
            [
                target,
                _f(result.get("peak_rss_mb", {}).get(target), 0),
                _f(result.get("startup_s", {}).get(target)),
                notes.get(target, ""),
            ]
        )
    if summary_rows:
        out += [
            "",
            "### per process",
            "",
            _table(["target", "peak RSS MB", "start-up to first 200, s", "what"], summary_rows),
        ]

    cost = _observability_cost(result)
    if cost:
        out += ["", "### cost of metrics + overhead header (gateway vs gateway-bare)", "", cost]
    micro = result.get("observability_micro_us")
    if micro:
        out.append("")
        out.append(
            f"In isolation (bench/micro.py): the ASGI wrapper {micro['middleware_us']:.1f} µs, the upstream-wait "
            f"accounting {micro['upstream_timing_us']:.1f} µs (a 10-read stream), the job observer "
            f"{micro['job_observer_us']:.2f} µs: {micro['total_us']:.1f} µs per request (for scale: reading such a "
            f"stream with no network at all costs {micro['stream_read_no_network_us']:.0f} µs)."
        )
    ceiling = _ceiling(result)
    if ceiling:
        out += ["", ceiling]
    clients = result.get("clients")
    if clients:
        rows = [
            [k, _f(v.get("rps"), 0), _f(v.get("cpu_ms_per_request"), 3), str(v.get("errors", v.get("error", "")))]
            for k, v in clients.items()
        ]
        out += [
            "",
            "### upstream HTTP clients, 32 connections, chat against the mock (client pinned alone)",
            "",
            _table(["client", "req/s", "client CPU ms/req", "errors"], rows),
        ]
    jobs = result.get("jobs")
    if jobs:
        out += ["", "### jobs: video jobs to the local provider, zero-delay profile", ""]
        if jobs.get("skipped"):
            out.append(f"skipped: {jobs['skipped']}")
        else:
            out.append(f"{jobs.get('pinning', '')}; queue-to-start from the jobs table's started_at")
            out.append("")
            out.append(
                _table(
                    [
                        "rate/s",
                        "submitted",
                        "answered p50 ms",
                        "queue-to-start p50 ms",
                        "p99 ms",
                        "completed",
                        "failed",
                        "done/s per worker",
                        "web CPU ms/job",
                        "worker CPU ms/job",
                    ],
                    [_jobs_row(b) for b in jobs["rates"]],
                )
            )
    out += _realtime(result.get("realtime"))
    return "\n".join(out)


def _jobs_row(b: dict[str, Any]) -> list[str]:
    q = b.get("queue_to_start_ms") or {}
    s = b.get("submit_latency_ms") or {}
    return [
        _f(b["rate"], 0),
        f"{b['submitted']} at {b['submit_rate']:.0f}/s",
        _f(s.get("p50")),
        _f(q.get("p50")),
        _f(q.get("p99")),
        str(b["completed"]),
        str(b["failed"] + b["unfinished"]),
        _f(b.get("completed_per_s_per_worker"), 1),
        _f(b.get("web_cpu_ms_per_job")),
        _f(b.get("worker_cpu_ms_per_job")),
    ]


def jobs_line(b: dict[str, Any]) -> str:
    """One batch's progress line, printed as it ends."""
    q = b.get("queue_to_start_ms") or {}
    return (
        f"  jobs at {b['rate']:.0f}/s: {b['submitted']} submitted ({b['submit_errors']} errors), "
        f"{b['completed']} completed; queue-to-start p50 {_f(q.get('p50'))} ms, p99 {_f(q.get('p99'))} ms; "
        f"worker CPU {_f(b.get('worker_cpu_ms_per_job'))} ms/job"
    )


def _realtime(rt: dict[str, Any] | None) -> list[str]:
    if not rt:
        return []
    out = ["", "### realtime: WS /v1/realtime relaying a mock OpenAI Realtime upstream", ""]
    if rt.get("error"):
        return [*out, f"error: {rt['error']}"]
    rows = []
    for name in ("direct", "gateway"):
        m = rt[name]
        lat = m["latency_ms"]
        rows.append([name, _f(m["frames_per_s"], 0), _f(lat["p50"]), _f(lat["p99"]), str(m["errors"])])
    added = rt["added_ms"]
    return [
        *out,
        f"{rt['sessions']} sessions × {rt['responses']} responses × {rt['frames_per_response']} audio deltas each",
        "",
        _table(["path", "frames/s", "event latency p50 ms", "p99 ms", "errors"], rows),
        "",
        f"added by the gateway per event: p50 {_f(added['p50'])} ms, p99 {_f(added['p99'])} ms",
    ]


def _per_core(cpu_ms: float | None) -> float | None:
    """What one core would serve if the server got it whole: robust when other work shares the machine."""
    return 1000 / cpu_ms if cpu_ms else None


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _observability_cost(result: dict[str, Any]) -> str:
    rows = []
    for name, scenario in result.get("scenarios", {}).items():
        gw, bare = scenario["targets"].get("gateway"), scenario["targets"].get("gateway-bare")
        if not gw or not bare:
            continue
        rows.append(
            [
                name,
                _ratio(gw["rps"], bare["rps"]),
                _f(_minus(gw["p50"], bare["p50"]), 3),
                _f(_minus(gw["cpu_ms"], bare["cpu_ms"]), 3),
            ]
        )
    if not rows:
        return ""
    return _table(["scenario", "req/s with / without", "Δ p50 ms", "Δ CPU ms/req"], rows)


def _ceiling(result: dict[str, Any]) -> str:
    direct = result.get("scenarios", {}).get("c32-chat", {}).get("targets", {}).get("direct")
    if not direct or not direct.get("loadgen_cpu_ms"):
        return ""
    return (
        f"Load generator ceiling: direct to the mock at 32 connections it made {direct['rps']:,.0f} req/s "
        f"while sharing one core with the mock, spending {direct['loadgen_cpu_ms'] * 1000:.1f} µs of CPU per request "
        f"(alone: about {1000 / direct['loadgen_cpu_ms']:,.0f} req/s); the mock spent "
        f"{_f(direct['cpu_ms'] and direct['cpu_ms'] * 1000, 1)} µs per request."
    )
