"""A Dramatiq Redis broker whose idle consumers wait for a message instead of polling for one.

Dramatiq's Redis consumer polls: when its queue is empty it sleeps 5 ms, 10 ms, 20 ms … up to the
worker's timeout and looks again, so a job sent to an idle worker waited half that on average (48.6 ms
at 5 jobs/s with 100 ms; issue #23), and polling more often costs CPU and Redis commands while nothing
happens. Here every send also pushes a token on its queue's wake list (`<namespace>:<queue>.wake`,
kept short), and a consumer that found its queue empty blocks on that list (BLPOP) for at most the
worker's timeout (`broker_wake_wait_ms`): a send wakes it at once, and it still looks again that often
(and notices a shutdown). A token nobody waited for costs one empty fetch later.

A delay queue's consumer waits the same way, but never past the earliest due time of the delayed
messages it holds: the worker releases those (sends them to their ready queue) between two looks,
so a wait that ran past a due time would release that message late. A delayed send wakes it too, so
it learns of a message due sooner than the ones it holds.

Built by the worker (workers/broker.py) and by the web process's producer (`app.core.queue`), which
imports this module only when it first sends (Dramatiq stays out of a web process that never does).
"""

from __future__ import annotations

import time
from typing import Any

import redis
from dramatiq.broker import Consumer
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis
from dramatiq.errors import ConnectionClosed

WAKE_TOKENS = 16
"""The most tokens a wake list keeps: tokens pile up only while no consumer waits (all busy), and
each one left over costs a consumer one empty fetch."""
FULL_NAP_SECONDS = 0.002
"""A consumer whose worker threads hold all it may prefetch naps this long before it looks again
(nothing to wait for in Redis: what it waits for is its own threads finishing). Also the shortest
wait on a wake list: Redis reads a BLPOP timeout of 0 as forever."""


def wake_key(namespace: str, queue_name: str) -> str:
    return f"{namespace}:{queue_name}.wake"


class WakingRedisBroker(RedisBroker):
    """A RedisBroker (same keys, same Lua scripts) whose sends wake the waiting consumers."""

    def __init__(self, *, wake: bool = True, **options: Any) -> None:
        super().__init__(**options)  # type: ignore[no-untyped-call]
        self.wake = wake

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        sent = super().enqueue(message, delay=delay)
        # A delayed message goes to the delay queue (`sent.queue_name` ends in `.DQ`), and wakes it.
        if self.wake:
            key = wake_key(self.namespace, sent.queue_name)
            try:
                pipe = self.client.pipeline(transaction=False)
                pipe.lpush(key, b"1")
                pipe.ltrim(key, 0, WAKE_TOKENS - 1)
                pipe.execute()
            except redis.RedisError:
                # The message is queued; a consumer that missed the wake finds it at its next look.
                self.logger.warning("wake.push_failed queue=%s", sent.queue_name, exc_info=True)
        return sent

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        if not self.wake:
            return super().consume(queue_name, prefetch, timeout)
        # The inner consumer's idle back-off capped at 1 ms is no sleep at all (Dramatiq rounds it
        # down to 0): the waiting is ours, on the wake list.
        inner = super().consume(queue_name, prefetch, 1)
        return WakingConsumer(inner, self.client, wake_key(self.namespace, queue_name), timeout)


class WakingConsumer(Consumer):
    """Dramatiq's Redis consumer, with BLPOP on the wake list where it would have slept."""

    def __init__(self, inner: Any, client: redis.Redis, key: str, wait_ms: int) -> None:
        self.inner = inner
        self.client = client
        self.key = key
        self.wait_seconds = max(wait_ms / 1000, FULL_NAP_SECONDS)
        self.due: dict[str, int] = {}
        """Delayed messages handed to the worker and not yet released: message id → due (epoch ms).
        Only a delay queue's consumer has any; they are handed out, released (acked) and requeued by
        its one consumer thread."""

    def __iter__(self) -> WakingConsumer:
        return self

    def __next__(self) -> Any:
        message = next(self.inner)
        if message is not None:
            eta = message.options.get("eta")
            if eta is not None:
                self.due[message.message_id] = int(eta)
            return message
        if self.inner.outstanding_message_count >= self.inner.prefetch:
            time.sleep(FULL_NAP_SECONDS)
            return None
        wait = self.wait_seconds
        if self.due:
            wait = min(wait, (min(self.due.values()) - current_millis()) / 1000)
            if wait < FULL_NAP_SECONDS:
                # Due now (or all but): back to the worker, which releases what is due.
                time.sleep(max(wait, 0.0))
                return None
        try:
            self.client.blpop([self.key], timeout=wait)
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
        return None

    def ack(self, message: Any) -> None:
        self.due.pop(message.message_id, None)
        self.inner.ack(message)

    def nack(self, message: Any) -> None:
        self.due.pop(message.message_id, None)
        self.inner.nack(message)

    def requeue(self, messages: Any) -> None:
        messages = list(messages)
        for message in messages:
            self.due.pop(message.message_id, None)
        self.inner.requeue(messages)

    def close(self) -> None:
        self.inner.close()
