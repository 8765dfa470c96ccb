"""Profile the gateway under load: `python -m bench.profile [--kind chat|stream|embed] [--seconds N]`.

Starts the mock and the gateway as `make bench` does (pinned the same way), drives one scenario at 32
connections and has py-spy (`pip install py-spy`) sample the gateway's web process meanwhile. Prints
the functions with the most samples, by own time and with their callees, and leaves the collapsed
stacks (for flamegraph tools) next to the run's logs.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import features as feature_registry
from bench.driver import CHAT, EMBED_INPUT, EMBEDDINGS, PROMPT, pick_cpus
from bench.gateway import prepare
from bench.procs import BIN, Proc, free_port, start_mock, web_command
from bench.soak import loadgen


def summarize(collapsed: Path, top: int) -> str:
    own: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        total += count
        # One entry per function, not per line: py-spy names a frame "func (file:line)".
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        own[frames[-1]] += count
        where = re.search(r"\(([^/)]+)", frames[-1])
        by_package[where.group(1) if where else "?"] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples"]
    sections = (("own time by package", by_package), ("own time", own), ("with callees", inclusive))
    for title, counter in sections:
        lines.append(f"\n-- {title} --")
        for frame, count in counter.most_common(top):
            lines.append(f"{100 * count / total:6.1f}%  {frame}")
    return "\n".join(lines)


def cpu_ms(result: dict[str, Any], pid: int) -> float:
    if result["errors"]:
        raise SystemExit(f"{result['errors']} requests failed: {result['statuses']}")
    return 1000 * result["cpu_s"][str(pid)] / max(result["requests"], 1)


CALLGRIND = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--dump-line=no"]


def count_instructions(
    args: argparse.Namespace, out: Path, web: Proc, load: subprocess.Popen[str], warmup: float
) -> int:
    """Instructions the web process ran per request in the measured window: instrumentation is switched
    on when the load generator's warm-up ends and off when it stops (in-flight requests at either edge
    are an error of 32 in thousands)."""
    time.sleep(warmup)
    subprocess.run(["callgrind_control", "--instr=on", str(web.pid)], check=True, capture_output=True)
    stdout, _ = load.communicate(timeout=args.seconds + 120)
    subprocess.run(["callgrind_control", "--instr=off", str(web.pid)], check=True, capture_output=True)
    subprocess.run(["callgrind_control", "--dump", str(web.pid)], check=True, capture_output=True)
    result = json.loads(stdout)
    if result["errors"]:
        raise SystemExit(f"{result['errors']} requests failed: {result['statuses']}")
    total = 0
    for dump in out.glob("callgrind.*"):
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
                break
    print(
        f"{args.kind}: {result['requests']} requests, {total:,} instructions,"
        f" {total / max(result['requests'], 1):,.0f} instructions/request"
    )
    print(f"callgrind files: {out}")
    return 0


def count_calls(args: argparse.Namespace, out: Path, web: Proc, load: subprocess.Popen[str], warmup: float) -> int:
    """Python function calls per request in the measured window, with the functions called most. A
    coroutine counts one call each time it resumes, so the figure moves a little with timing (about 1 %
    between runs of one tree); pure functions' counts do not."""
    time.sleep(warmup)
    os.kill(web.pid, signal.SIGUSR2)
    stdout, _ = load.communicate(timeout=args.seconds + 120)
    web.stop()  # SIGTERM: the wrapper writes the stats
    result = json.loads(stdout)
    if result["errors"]:
        raise SystemExit(f"{result['errors']} requests failed: {result['statuses']}")
    stats: dict[Any, Any] = pstats.Stats(str(out / "calls.prof")).stats  # type: ignore[attr-defined]
    calls: Counter[str] = Counter()
    for (path, _line, name), (_primitive, count, *_rest) in stats.items():
        calls[f"{re.sub(r'^.*?(site-packages/|/)(?=app/|bench/|[a-z_]+/)', '', path)}:{name}"] += count
    # Requests counted inside the profile: every chat or embedding request gets one id (`new_id`), and
    # the load generator's own count covers a window that starts a little later than the profile's.
    requests = max(sum(n for name, n in calls.items() if name.endswith("ids.py:new_id")), 1)
    print(f"{args.kind}: {requests} requests in the profile, {sum(calls.values()) / requests:.1f} calls/request")
    for name, count in calls.most_common(args.top):
        print(f"{count / requests:9.2f}  {name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=["gateway", "reference"], default="gateway")
    parser.add_argument("--kind", choices=["chat", "stream", "embed"], default="chat")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--rate", type=float, default=0, help="requests/s, paced (default: closed loop, as fast as it answers)"
    )
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--no-spy", action="store_true", help="measure CPU per request only, no sampling")
    parser.add_argument("--native", action="store_true", help="also sample C frames (py-spy --native)")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the gateway (repeatable)")
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="count the web process's instructions per request under valgrind (about 50x slower: give it "
        "--seconds 40 or more). Not a steady measure of a server: how many requests share a turn of the "
        "event loop changes the count per request, and that depends on the machine's load (seen: the same "
        "tree 1.23-1.31 M instructions per chat request, closed loop; 1.50-1.66 M paced at 40/s)",
    )
    parser.add_argument(
        "--calls",
        action="store_true",
        help="count the web process's Python function calls per request under cProfile (call counts do not "
        "depend on the machine's speed; compare two trees with the same options)",
    )
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if spy is None and not (args.no_spy or args.calls or args.callgrind):
        raise SystemExit("py-spy is not installed: pip install py-spy")

    out = Path(tempfile.mkdtemp(prefix="heytoken-profile-"))
    server, tools, _ = pick_cpus(True)
    mock, mock_port = start_mock(tools, out / "mock.log", 10)
    procs = [mock]
    try:
        gateway = prepare(out / "var", f"http://127.0.0.1:{mock_port}/v1")
        values = {"account": gateway.account_id, "key_id": gateway.key_id}
        models = ["bench-chat", "bench-slow", "bench-embedding"]
        for warning in feature_registry.run_setup(feature_registry.detect(), gateway.env, BIN, values, models):
            print(f"profile: WARNING {warning}")
        env = {**gateway.env, **dict(item.split("=", 1) for item in args.env)}
        port = free_port()
        headers = gateway.headers
        models = {"chat": "bench-chat", "embed": "bench-embedding"}
        if args.target == "reference":
            env = {**env, "BENCH_UPSTREAM": f"http://127.0.0.1:{mock_port}/v1"}
            headers, models = {}, {"chat": "mock-chat", "embed": "mock-embedding"}
            name, command = "reference", web_command(port, "bench.reference:create_app")
        else:
            name, command = "gateway", web_command(port)
        if args.callgrind:
            command = [*CALLGRIND, f"--callgrind-out-file={out}/callgrind.%p", *command]
        if args.calls:
            command = [str(BIN / "python"), "-m", "bench.cprofile_web", *command[1:]]
            env = {**env, "BENCH_CPROFILE_OUT": str(out / "calls.prof")}
        web = Proc(name, command, env, server, out / f"{name}.log")
        procs.append(web)
        web.wait_http(port, timeout=600 if args.callgrind else 60)
        body: dict[str, object]
        if args.kind == "embed":
            path, body = EMBEDDINGS, {"model": models["embed"], "input": EMBED_INPUT}
        else:
            path, body = CHAT, {"model": models["chat"], "messages": PROMPT, "stream": args.kind == "stream"}
        warmup = 20.0 if args.callgrind else 2.0
        load = loadgen(port, path, body, headers, args.connections, args.rate, args.seconds, warmup, tools, web.pid)
        if args.callgrind:
            return count_instructions(args, out, web, load, warmup)
        if args.calls:
            return count_calls(args, out, web, load, warmup)
        if args.no_spy:
            stdout, _ = load.communicate(timeout=args.seconds + 60)
            result = json.loads(stdout)
            print(
                f"{args.kind}: {result['rps']:.0f} req/s, {cpu_ms(result, web.pid):.3f} ms CPU/request,"
                f" peak RSS {web.peak_rss_mb():.0f} MB"
            )
            return 0
        time.sleep(2.0)  # the load generator's warm-up: sample steady state only
        assert spy is not None
        collapsed = out / f"{args.kind}.collapsed"
        record = [spy, "record", "--pid", str(web.pid), "--duration", str(int(args.seconds) - 1)]
        record += ["--rate", "250", "--format", "raw", "--output", str(collapsed), "--nonblocking"]
        if args.native:
            record.append("--native")
        subprocess.run(record, check=True, capture_output=True)
        stdout, _ = load.communicate(timeout=args.seconds + 60)
        result = json.loads(stdout)
        print(f"{args.kind}: {result['rps']:.0f} req/s, {cpu_ms(result, web.pid):.3f} ms CPU/request (sampled)")
        print(summarize(collapsed, args.top))
        print(f"\ncollapsed stacks: {collapsed}")
        return 0
    finally:
        for proc in reversed(procs):
            proc.stop()


if __name__ == "__main__":
    raise SystemExit(main())
