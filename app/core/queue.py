"""Sending work to the Dramatiq workers, by actor name, only after the database commit.

`app` never imports `workers`: a message is built from the actor's name (`ActorName`) and handed to
the broker (`RedisBroker.enqueue` does not need the actor declared in this process). Inside
`transaction(...)`, `defer(...)` only buffers; the buffer is sent after the commit and dropped on
rollback, so a worker never sees a job the database does not have. A crash between commit and send
leaves the job overdue, and the reconciler sends it again.

The broker's Redis namespace comes from `redis_prefix`, so deployments (and parallel test runs) that
share one Redis never see each other's queues.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.db import SessionMaker
from app.core.settings import Settings

log = logging.getLogger("heytoken.queue")


class QueueName(enum.StrEnum):
    JOB_STARTS = "job_starts"
    """Only the first step of a job (submit), so a new job never waits behind other jobs' polls and
    stores (a store of a large video holds a worker thread for minutes). Workers also rank it first
    among the messages they have fetched (actor priority, workers/jobs.py)."""
    JOBS = "jobs"
    WEBHOOKS = "webhooks"


class ActorName(enum.StrEnum):
    """Every actor, named `<domain>.<verb>`; the workers declare actors under exactly these names."""

    JOB_SUBMIT = "job.submit"
    JOB_POLL = "job.poll"
    JOB_STORE = "job.store"
    JOB_CANCEL_UPSTREAM = "job.cancel_upstream"
    WEBHOOK_DELIVER = "webhook.deliver"


QUEUE_OF: dict[ActorName, QueueName] = {
    ActorName.JOB_SUBMIT: QueueName.JOB_STARTS,
    ActorName.JOB_POLL: QueueName.JOBS,
    ActorName.JOB_STORE: QueueName.JOBS,
    ActorName.JOB_CANCEL_UPSTREAM: QueueName.JOBS,
    ActorName.WEBHOOK_DELIVER: QueueName.WEBHOOKS,
}
ARGUMENT_OF: dict[ActorName, str] = {ActorName.WEBHOOK_DELIVER: "delivery_id"}
"""The name of the one id an actor takes (default `job_id`)."""


def broker_namespace(settings: Settings) -> str:
    return f"{settings.redis_prefix}dramatiq"


@dataclass(frozen=True, slots=True)
class Send:
    actor: ActorName
    object_id: str
    """The id the actor takes: a job's, or a webhook delivery's."""
    delay_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Credit:
    """Money the database gave back to an account (a job's hold released); the Redis balance mirror
    follows after the commit."""

    account_id: str
    amount: int


class Sender(Protocol):
    async def send(self, sends: list[Send]) -> None: ...

    async def credit(self, credits: list[Credit]) -> None: ...


class Mirror(Protocol):
    async def credit(self, account_id: str, amount: int) -> None: ...


class BrokerSender:
    """Sends through a Dramatiq broker (the worker's own, or a producer-only one in the web process),
    and moves the Redis balance mirror (`mirror`, the billing Gate) after commits that released money.

    Give `broker`, or `connect` to build it at the first send (see create_producer)."""

    def __init__(
        self, broker: Any = None, mirror: Mirror | None = None, connect: Callable[[], Any] | None = None
    ) -> None:
        if broker is None and connect is None:
            raise ValueError("BrokerSender needs a broker or a way to connect one")
        self._broker = broker
        self._connect = connect
        self._lock = threading.Lock()
        self.mirror = mirror

    @property
    def broker(self) -> Any:
        if self._broker is None:
            # Sends run in worker threads (asyncio.to_thread): two first sends must not build two.
            with self._lock:
                if self._broker is None:
                    assert self._connect is not None
                    self._broker = self._connect()
        return self._broker

    async def credit(self, credits: list[Credit]) -> None:
        if self.mirror is None:
            log.warning("queue.credit_without_mirror credits=%d", len(credits))
            return
        for item in credits:
            await self.mirror.credit(item.account_id, item.amount)

    async def send(self, sends: list[Send]) -> None:
        if sends:
            # The Redis broker's client is synchronous: keep it off the event loop.
            await asyncio.to_thread(self._send_all, sends)

    def _send_all(self, sends: list[Send]) -> None:
        import dramatiq

        for item in sends:
            message: Any = dramatiq.Message(
                queue_name=QUEUE_OF[item.actor],
                actor_name=item.actor.value,
                args=(),
                kwargs={ARGUMENT_OF.get(item.actor, "job_id"): item.object_id},
                options={},
            )
            self.broker.enqueue(message, delay=item.delay_ms)

    def close(self) -> None:
        if self._broker is not None:
            self._broker.close()


def create_producer(settings: Settings, mirror: Mirror | None = None) -> BrokerSender:
    """A broker for sending only (no middleware, no consumers): what the web process needs.

    Built at the first send, not at start-up: a web process that serves only chat and embeddings never
    sends a message, and then never loads Dramatiq (a little resident memory and start-up time)."""

    def connect() -> Any:
        from app.core.wake import WakingRedisBroker

        return WakingRedisBroker(
            wake=settings.broker_wake, url=settings.redis_url, namespace=broker_namespace(settings), middleware=[]
        )

    return BrokerSender(mirror=mirror, connect=connect)


_outbox: ContextVar[list[Send | Credit] | None] = ContextVar("heytoken_outbox", default=None)


def defer(actor: ActorName, object_id: str, *, delay_seconds: float | None = None) -> None:
    """Buffer a message (to `actor`, about `object_id`) until the surrounding `transaction` commits."""
    outbox = _outbox.get()
    if outbox is None:
        raise RuntimeError("defer() called outside app.core.queue.transaction()")
    delay = None if delay_seconds is None or delay_seconds <= 0 else max(1, int(delay_seconds * 1000))
    outbox.append(Send(actor, object_id, delay))


def defer_credit(account_id: str, amount: int) -> None:
    """Move the account's Redis balance mirror by `amount` once the surrounding `transaction` commits."""
    outbox = _outbox.get()
    if outbox is None:
        raise RuntimeError("defer_credit() called outside app.core.queue.transaction()")
    outbox.append(Credit(account_id, amount))


@asynccontextmanager
async def transaction(sessionmaker: SessionMaker, sender: Sender) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit, then send what was deferred; on error roll back and send nothing."""
    outbox: list[Send | Credit] = []
    token = _outbox.set(outbox)
    try:
        async with sessionmaker() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            await session.commit()
    finally:
        _outbox.reset(token)
    credits = [item for item in outbox if isinstance(item, Credit)]
    if credits:
        # A mirror that misses a credit only looks poorer than the ledger until its account is
        # quiet and the billing reconciler resyncs it: never richer.
        await sender.credit(credits)
    sends = [item for item in outbox if isinstance(item, Send)]
    try:
        await sender.send(sends)
    except Exception:
        # The rows are committed; the reconciler re-sends whatever is overdue, so a broker outage
        # delays jobs but loses none, and the caller's request still succeeds.
        log.warning("queue.send_failed messages=%d", len(sends), exc_info=True)
