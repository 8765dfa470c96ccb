"""The web process's memory, idle and after load: resident, anonymous and file-backed (smaps_rollup).

Starts the mock upstream and the gateway as the Procfile starts it (the bench's account, channels and
prices; SQLite unless --database-url), reads `/proc/<pid>/smaps_rollup` 2 s after `/healthz`, then
after each of the bench's c32-chat, c32-stream and c32-embed scenarios. `--maps` also lists the
largest mappings (which shared library, the heap). Extra environment for the web process as NAME=VALUE arguments.

    python -m bench.memory [--seconds 6] [--maps] [--database-url URL] [--redis-url URL] [NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import collections
import re
import tempfile
import time
from pathlib import Path

from bench import features
from bench.driver import PUBLIC_MODELS, SCENARIOS, STREAM_CHUNKS, Target, run_loadgen
from bench.gateway import prepare
from bench.procs import BIN, Proc, free_port, start_mock, web_command

LOADS = ("c32-chat", "c32-stream", "c32-embed")
"""The bench's own scenarios, run one after the other against the one web process."""


def rollup(pid: int) -> str:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    peak = int(status["VmHWM"].split()[0]) / 1024
    return (
        f"RSS {fields['Rss']:.1f} MB (anonymous {fields['Anonymous']:.1f}, file-backed "
        f"{fields['Rss'] - fields['Anonymous']:.1f}), PSS {fields['Pss']:.1f}, peak {peak:.1f}"
    )


def largest_mappings(pid: int, count: int = 15) -> list[str]:
    sizes: collections.Counter[str] = collections.Counter()
    name = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            parts = line.split()
            name = parts[5] if len(parts) > 5 else "[anon]"
        elif line.startswith("Rss:"):
            sizes[name] += int(line.split()[1])
    return [f"{kb / 1024:7.1f} MB  {name}" for name, kb in sizes.most_common(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--maps", action="store_true")
    parser.add_argument("--database-url", default="", help="default: a new SQLite file")
    parser.add_argument("--redis-url", default="", help="default: the settings' (HEYTOKEN_REDIS_URL)")
    parser.add_argument("env", nargs="*", help="NAME=VALUE for the web process")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    mock, mock_port = start_mock({1}, out / "mock.log", STREAM_CHUNKS)
    web: Proc | None = None
    try:
        gateway = prepare(out / "var", f"http://127.0.0.1:{mock_port}/v1", args.database_url, args.redis_url)
        values = {"account": gateway.account_id, "key_id": gateway.key_id}
        features.run_setup(features.detect(), gateway.env, BIN, values, ["bench-chat", "bench-slow", "bench-embedding"])
        port = free_port()
        env = {**gateway.env, **dict(item.split("=", 1) for item in args.env)}
        web = Proc("web", web_command(port), env, {0}, out / "web.log")
        web.wait_http(port)
        time.sleep(2)
        print(f"idle                {rollup(web.pid)}", flush=True)
        if args.maps:
            print("\n".join(largest_mappings(web.pid)), flush=True)
        target = Target("gateway", port, web, PUBLIC_MODELS, gateway.headers)
        run_args = argparse.Namespace(duration=args.seconds, warmup=1.0)
        for scenario in (s for s in SCENARIOS if s.name in LOADS):
            statuses = run_loadgen(target, scenario, run_args, {1})["statuses"]
            print(f"after {scenario.name:<13} {rollup(web.pid)}; answers {statuses}", flush=True)
    finally:
        if web is not None:
            web.stop()
        mock.stop()


if __name__ == "__main__":
    main()
