"""Client-side probe for a request that never reaches a live gateway (diagnostics; installed by conftest).

Wraps httpcore's and httpcore2's HTTP/1.1 `_receive_response_headers`: if a response's headers have not
come within PROBE_AFTER seconds, it writes what the test process's side of the connection looks like,
while the request is still waiting (after the client's timeout the connection is closed and the evidence
gone): the socket the asyncio transport was made with (its recorded sockname/peername) against what its
fd number is now, whether the event loop's selector and the kernel's epoll set still watch that fd, the
process's fds and TCP sockets, and every thread's stack. Written to HEYTOKEN_STALL_PROBE_FILE (default
/tmp/stall-probe-<pid>.log) and, for a test that then fails, into its report (tests/conftest.py).

HEYTOKEN_STALL_PROBE_CLOSES=1 adds two costlier records: every Python-level close of an fd number (socket
objects, os.close, os.dup2) with its stack, so a report names who last closed the waiting connection's fd
number; and every non-thread-safe call into a running event loop from another thread (listed at the end
of the session in the probe file).
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import functools
import os
import subprocess
import threading
import time
from typing import Any

PROBE_AFTER = float(os.environ.get("HEYTOKEN_STALL_PROBE_SECONDS", "3"))


reports: dict[str, list[str]] = {}
"""The probe's reports by test (PYTEST_CURRENT_TEST's node id), for the failed test's report."""


def reports_of(nodeid: str) -> list[str]:
    return reports.pop(nodeid, [])


def _path() -> str:
    return os.environ.get("HEYTOKEN_STALL_PROBE_FILE", f"/tmp/stall-probe-{os.getpid()}.log")


def _describe_fd(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError as exc:
        return f"<{exc}>"


def _epoll_watches(fd: int) -> list[str]:
    """The epoll fds of this process whose kernel interest list holds `fd` (from /proc/self/fdinfo)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        if _describe_fd(int(name)) != "anon_inode:[eventpoll]":
            continue
        try:
            with open(f"/proc/self/fdinfo/{name}") as info:
                for line in info:
                    if line.startswith("tfd:") and int(line.split()[1]) == fd:
                        found.append(f"epoll fd {name}: {line.strip()}")
        except OSError:
            pass
    return found


def _wakeup_fd() -> str:
    import signal

    try:
        fd = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(fd)
    except ValueError as exc:  # not the main thread
        return f"<{exc}>"
    return f"{fd} -> {_describe_fd(fd)}" if fd >= 0 else "none"


def _snapshot(connection: Any, *, kernel: bool = True) -> dict[str, Any]:
    """What the connection's side looks like; `kernel` adds the epoll sets' interest in its fd (a walk
    of every fd of the process, ~2 ms with 260 open: only when a request has waited, not per request)."""
    out: dict[str, Any] = {"connection": repr(connection)}
    stream = getattr(getattr(connection, "_network_stream", None), "_stream", None)
    transport = getattr(stream, "_transport", None)
    out["transport"] = repr(transport)
    if transport is None:
        return out
    sock = transport.get_extra_info("socket")
    out["recorded sockname/peername"] = (transport.get_extra_info("sockname"), transport.get_extra_info("peername"))
    try:
        fd = sock.fileno()
    except Exception as exc:
        out["fd"] = f"<{exc!r}>"
        return out
    out["fd"] = fd
    out["fd target"] = _describe_fd(fd)
    try:
        out["live sockname/peername"] = (sock.getsockname(), sock.getpeername())
    except OSError as exc:
        out["live sockname/peername"] = f"<{exc!r}>"
    out["transport closing/paused"] = (transport.is_closing(), not transport.is_reading())
    loop = getattr(transport, "_loop", None)
    out["transport loop"] = f"{loop!r} closed={getattr(loop, 'is_closed', lambda: None)()}"
    selector = getattr(loop, "_selector", None)
    try:
        key = selector.get_key(fd) if selector is not None else None
        out["selector key"] = f"events={key.events} data={key.data!r}" if key else None
    except (KeyError, ValueError, RuntimeError) as exc:
        out["selector key"] = f"<none: {exc!r}>"
    if kernel:
        out["epoll interest"] = _epoll_watches(fd)
    return out


def _report(connection: Any, request: Any, before: dict[str, Any], started: float) -> None:
    lines = [
        f"=== stall probe pid {os.getpid()} at {time.strftime('%H:%M:%S')}: no response headers after "
        f"{time.monotonic() - started:.1f}s for {request.method!r} {request.url!r}",
        f"test: {os.environ.get('PYTEST_CURRENT_TEST')}",
        f"thread: {threading.current_thread().name}",
        "threads (native id, name): " + ", ".join(f"{t.native_id} {t.name}" for t in threading.enumerate()),
        "-- when the request started waiting:",
        *(f"   {k}: {v}" for k, v in before.items()),
        "-- now:",
        *(f"   {k}: {v}" for k, v in _snapshot(connection).items()),
        f"signal wakeup fd: {_wakeup_fd()}",
        "-- the last Python-level closes of that fd number (HEYTOKEN_STALL_PROBE_CLOSES=1):",
        *_closes_of(before.get("fd")),
        "-- fds of the test process:",
        *(f"   {name} -> {_describe_fd(int(name))}" for name in sorted(os.listdir("/proc/self/fd"), key=int)),
    ]
    try:
        ss = subprocess.run(["ss", "-tanpi"], capture_output=True, text=True, timeout=5, check=False).stdout
        mine = [line for line in ss.splitlines() if f"pid={os.getpid()}," in line]
        lines += ["-- this process's TCP sockets (ss -tanp):", *mine, "-- ss -tan (all):", ss]
    except Exception as exc:
        lines.append(f"ss failed: {exc!r}")
    text = "\n".join(lines) + "\n"
    current = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    reports.setdefault(current, []).append(text)
    with open(_path(), "a") as out:
        out.write(text)
        out.flush()
        out.write("-- thread stacks:\n")
        out.flush()
        faulthandler.dump_traceback(out, all_threads=True)


_closes: Any = None
"""(monotonic time, thread, fd, what, where) of the Python-level closes of this process, newest last."""


def _trace_closes() -> None:
    """Remember who closed which fd number (socket objects, os.close, os.dup2 onto a number)."""
    import collections
    import socket
    import traceback

    global _closes
    _closes = collections.deque(maxlen=50_000)

    def record(fd: int, what: str) -> None:
        if fd is not None and fd >= 0:
            where = "".join(traceback.format_stack(limit=8)[:-2])
            _closes.append((time.monotonic(), threading.current_thread().name, fd, what, where))

    real_close = socket.socket._real_close

    def _real_close(self: Any, *args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(Exception):
            record(self.fileno(), f"socket.close {self!r}")
        return real_close(self, *args, **kwargs)

    socket.socket._real_close = _real_close  # type: ignore[method-assign]
    real_detach = socket.socket.detach

    def detach(self: Any) -> Any:
        record(self.fileno(), f"socket.detach {self!r}")
        return real_detach(self)

    socket.socket.detach = detach  # type: ignore[method-assign]
    real_os_close, real_dup2 = os.close, os.dup2

    def os_close(fd: int) -> None:
        record(fd, f"os.close -> {_describe_fd(fd)}")
        real_os_close(fd)

    def dup2(fd: int, fd2: int, inheritable: bool = True) -> int:
        record(fd2, f"os.dup2({fd}, {fd2}) -> {_describe_fd(fd2)}")
        return real_dup2(fd, fd2, inheritable)

    os.close, os.dup2 = os_close, dup2


foreign: list[str] = []
"""Calls into an event loop from a thread other than the one running it (not thread-safe)."""


def _watch_loops() -> None:
    """Record every non-thread-safe call into a running event loop from another thread."""
    import traceback
    from asyncio import base_events, selector_events

    def guard(cls: Any, name: str) -> None:
        real = getattr(cls, name)

        def checked(self: Any, *args: Any, **kwargs: Any) -> Any:
            owner = self._thread_id
            if owner is not None and owner != threading.get_ident() and len(foreign) < 200:
                what = args[0] if args else None
                stack = "".join(traceback.format_stack(limit=14)[:-1])
                here = threading.current_thread().name
                foreign.append(f"[{here}] {name}({what!r}) on {self!r} (runs in thread {owner})\n{stack}")
            return real(self, *args, **kwargs)

        setattr(cls, name, checked)

    guard(base_events.BaseEventLoop, "call_soon")
    guard(base_events.BaseEventLoop, "call_later")
    guard(base_events.BaseEventLoop, "create_task")
    for name in ("_add_reader", "_remove_reader", "_add_writer", "_remove_writer"):
        guard(selector_events.BaseSelectorEventLoop, name)


def report_foreign() -> None:
    if foreign:
        with open(_path(), "a") as out:
            out.write(f"=== {len(foreign)} call(s) into an event loop from another thread (first ones):\n")
            out.write("\n".join(foreign[:40]) + "\n")


def _closes_of(fd: int) -> list[str]:
    if _closes is None or not isinstance(fd, int):
        return []
    now = time.monotonic()
    return [
        f"   {at - now:+.3f}s [{thread}] {what}\n{where}" for at, thread, n, what, where in list(_closes) if n == fd
    ][-10:]


def _wrap(cls: Any) -> None:
    original = cls._receive_response_headers
    if getattr(original, "_stall_probe", False):
        return

    @functools.wraps(original)
    async def probed(self: Any, request: Any) -> Any:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            before = _snapshot(self, kernel=False)
        except Exception as exc:
            before = {"snapshot failed": repr(exc)}
        handle = loop.call_later(PROBE_AFTER, _report, self, request, before, started)
        try:
            return await original(self, request)
        finally:
            handle.cancel()

    probed._stall_probe = True  # type: ignore[attr-defined]
    cls._receive_response_headers = probed


def install() -> None:
    if os.environ.get("HEYTOKEN_STALL_PROBE_CLOSES") == "1":
        _trace_closes()
        _watch_loops()
    import httpcore._async.http11
    import httpcore2._async.http11

    _wrap(httpcore._async.http11.AsyncHTTP11Connection)
    _wrap(httpcore2._async.http11.AsyncHTTP11Connection)
