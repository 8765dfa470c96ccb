"""`kill -USR1 <pid>`: a web or worker process writes what every task and thread waits on to its log.

A request that hangs leaves no trace by itself (nothing failed, so nothing is logged). The signal asks
the process where each of its asyncio tasks is suspended and where each thread is, without stopping it:
the answer to "what is it waiting for" in one log record.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import signal
import sys
import traceback
from typing import Any

log = logging.getLogger("heytoken.dump")

SIGNAL = signal.SIGUSR1


def describe(loop: asyncio.AbstractEventLoop) -> str:
    """Every task of `loop` with the stack it is suspended in, then every thread's stack."""
    out = io.StringIO()
    tasks = asyncio.all_tasks(loop)
    out.write(f"{len(tasks)} asyncio task(s)\n")
    for task in sorted(tasks, key=lambda t: t.get_name()):
        out.write(f"--- task {task.get_name()}, awaiting (outermost first):\n")
        out.write("".join(traceback.format_list(_awaited(task.get_coro()))))
    if os.path.isdir("/proc/self/fd"):
        out.write(f"{len(os.listdir('/proc/self/fd'))} open file descriptor(s)\n")
    frames = sys._current_frames()
    out.write(f"{len(frames)} thread(s)\n")
    for ident, frame in frames.items():
        out.write(f"--- thread {ident}\n")
        out.write("".join(traceback.format_stack(frame, limit=30)))
    return out.getvalue()


def _awaited(coro: Any) -> list[traceback.FrameSummary]:
    """The chain of frames a suspended coroutine waits in, outermost first (`Task.print_stack` shows only
    the outermost frame on Python 3.11)."""
    frames: list[traceback.FrameSummary] = []
    seen: set[int] = set()
    while coro is not None and id(coro) not in seen and len(frames) < 60:
        seen.add(id(coro))
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or getattr(coro, "ag_frame", None)
        if frame is not None:
            frames.append(traceback.FrameSummary(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None) or getattr(coro, "ag_await", None)
    return frames


def install(loop: asyncio.AbstractEventLoop) -> None:
    """Answer SIGUSR1 with `describe` (a WARNING record). Only where signals can be handled: the main
    thread of a process on Unix."""
    if not hasattr(signal, "SIGUSR1"):
        return

    def dump() -> None:
        log.warning("process.dump (SIGUSR1)\n%s", describe(loop))

    with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):  # not the main thread, or no signals
        loop.add_signal_handler(SIGNAL, dump)


def install_for_thread(loop: asyncio.AbstractEventLoop) -> None:
    """The same for a process whose event loop runs in another thread (a Dramatiq worker process): the
    handler runs in the main thread and reads the loop's tasks from there, a read-only look that is
    good enough for a diagnosis. Call from the main thread."""
    if not hasattr(signal, "SIGUSR1"):
        return

    def dump(_signum: int, _frame: Any) -> None:
        log.warning("process.dump (SIGUSR1)\n%s", describe(loop))

    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(SIGNAL, dump)


def uninstall(loop: asyncio.AbstractEventLoop) -> None:
    if hasattr(signal, "SIGUSR1"):
        with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
            loop.remove_signal_handler(SIGNAL)
