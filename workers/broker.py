"""The worker's Dramatiq broker, built in one place with every middleware listed and explained."""

from __future__ import annotations

from typing import Any

from dramatiq.asyncio import EventLoopThread, set_event_loop_thread
from dramatiq.middleware import (
    AgeLimit,
    AsyncIO,
    Callbacks,
    CurrentMessage,
    Middleware,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from app.core.queue import broker_namespace
from app.core.settings import Settings
from app.core.wake import WakingRedisBroker


class DaemonAsyncIO(AsyncIO):
    """Dramatiq's AsyncIO middleware with a daemon event-loop thread.

    On a second SIGTERM (a process-group signal plus the main process forwarding its own) Dramatiq
    calls sys.exit in the worker process, which then waited forever on the non-daemon loop thread.
    The graceful path is unchanged: after_worker_shutdown still stops and joins the thread."""

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        thread = EventLoopThread(self.logger)
        thread.daemon = True
        thread.start(timeout=1.0)
        set_event_loop_thread(thread)


class IdlePoll(Middleware):
    """Sets the worker's `worker_timeout`: how long an idle consumer or worker thread waits before it
    looks again (1,000 ms unless the `dramatiq_worker_timeout` environment variable says otherwise,
    read once when dramatiq is imported). The consumers and threads are made after
    `before_worker_boot`, from this value.

    Polling (wake off): Dramatiq's Redis consumer backs off exponentially (5 ms, 10 ms, …) while its
    queue is empty, up to this; a job sent to a quiet worker waits up to that long, so it is short
    (`broker_idle_poll_ms`). Waking (on): consumers wait on their wake list and a send ends the wait,
    so it is long (`broker_wake_wait_ms`): at 100 ms an idle worker spent 4 % of a core on its looks."""

    def __init__(self, idle_ms: int) -> None:
        self.idle_ms = idle_ms

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        worker.worker_timeout = self.idle_ms


def build_broker(settings: Settings, *extra: Any) -> WakingRedisBroker:
    """A Redis broker under `<redis_prefix>dramatiq`, plus `extra` middleware (worker resources)."""
    middleware: list[Any] = [
        # Retries: for failures no step anticipated (a database outage, a bug). Bounded and quick: the
        # job row is the authority, and the reconciler re-sends whatever is still overdue afterwards.
        # Upstream errors never get here; the steps back off on their own, with a delayed message.
        Retries(max_retries=5, min_backoff=2_000, max_backoff=300_000),
        # TimeLimit: a step that hangs despite its httpx timeouts is interrupted. Generous, because a
        # store of a large video may legitimately take many minutes (its lease is renewed meanwhile).
        TimeLimit(time_limit=30 * 60_000),
        # AgeLimit: no default max_age; actors could set one. Listed so the option is available.
        AgeLimit(),
        # ShutdownNotifications + Callbacks: Dramatiq's defaults, kept for actors that opt in.
        ShutdownNotifications(),
        Callbacks(),
        # CurrentMessage: lets a step read its own message (e.g. the retry count) when logging.
        CurrentMessage(),
        # AsyncIO: runs `async def` actors on one event loop thread per process (not a default); ours
        # makes that thread a daemon, so a second SIGTERM ("Killing worker process") really exits.
        DaemonAsyncIO(),
        # IdlePoll: with `broker_wake` (the broker below) a job sent to an idle worker starts at once,
        # its consumers waiting on a wake list; without, within `broker_idle_poll_ms`, not a second.
        IdlePoll(settings.broker_wake_wait_ms if settings.broker_wake else settings.broker_idle_poll_ms),
        *extra,
    ]
    return WakingRedisBroker(
        wake=settings.broker_wake,
        url=settings.redis_url,
        namespace=broker_namespace(settings),
        middleware=middleware,
        # Dramatiq's defaults (60 s, 0.1 %) can leave a SIGKILLed worker's messages unclaimed for many
        # minutes; these make redelivery likelier. The reconciler is what guarantees it.
        heartbeat_timeout=settings.broker_heartbeat_timeout_ms,
        maintenance_chance=settings.broker_maintenance_chance,
    )
