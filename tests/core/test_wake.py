"""An idle worker's consumer waits on its queue's wake list and a send wakes it (app/core/wake.py): a
job sent to a quiet worker starts at once, not after the consumer's next look (issue #23)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis

from app.core.settings import Settings
from app.core.wake import WAKE_TOKENS, WakingRedisBroker, wake_key
from tests.support import poll

LONG_WAIT_MS = 60_000
"""Longer than any deadline below: a consumer that only looked again after it would fail the test."""


@pytest.fixture
def broker(settings: Settings) -> Iterator[WakingRedisBroker]:
    # Named connections: the test sees its own consumer waiting among everyone's on a shared Redis.
    name = f"wake-test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(settings.redis_url, client_name=name)
    broker = WakingRedisBroker(client=client, namespace=f"{settings.redis_prefix}{name}")
    yield broker
    broker.close()


def message(queue: str) -> Any:
    return dramatiq.Message(queue_name=queue, actor_name="job.submit", args=(), kwargs={"job_id": "j"}, options={})


def broker_url(broker: WakingRedisBroker) -> str:
    kwargs = broker.client.connection_pool.connection_kwargs
    return f"redis://{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def waiting_on(client: redis.Redis) -> bool:
    name = client.connection_pool.connection_kwargs["client_name"]
    return any(c.get("cmd") == "blpop" and c.get("name") == name for c in client.client_list())


def test_a_consumer_waiting_on_an_empty_queue_is_woken_by_a_send(broker: WakingRedisBroker) -> None:
    # Given a consumer of an empty queue that would not look again for a minute
    queue = "job_starts"
    broker.declare_queue(queue)
    consumer = broker.consume(queue, prefetch=1, timeout=LONG_WAIT_MS)
    got: list[Any] = []

    def consume() -> None:
        for item in consumer:
            if item is not None:
                got.append(item)
                return

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    poll(lambda: waiting_on(broker.client), timeout=10, message="the consumer waiting")
    # When a message is sent (by another process's producer)
    producer = WakingRedisBroker(client=redis.Redis.from_url(broker_url(broker)), namespace=broker.namespace)
    producer.enqueue(message(queue))
    producer.close()
    # Then the consumer has it long before its wait would have ended
    thread.join(timeout=10)
    assert not thread.is_alive() and got and got[0].actor_name == "job.submit"
    consumer.ack(got[0])
    consumer.close()


def test_wake_tokens_nobody_waited_for_stay_few(broker: WakingRedisBroker) -> None:
    queue = "jobs"
    for _ in range(WAKE_TOKENS * 3):
        broker.enqueue(message(queue))
    assert broker.client.llen(wake_key(broker.namespace, queue)) == WAKE_TOKENS
    # A delayed send wakes its delay queue's consumer, not the ready queue's
    broker.enqueue(message("webhooks"), delay=60_000)
    assert broker.client.llen(wake_key(broker.namespace, "webhooks")) == 0
    assert broker.client.llen(wake_key(broker.namespace, "webhooks.DQ")) == 1


def test_a_delay_queue_consumer_waits_but_hands_back_when_a_message_is_due(broker: WakingRedisBroker) -> None:
    """The worker releases a delayed message between two looks of its delay queue's consumer: that
    consumer waits on its wake list like the others (an idle worker asks Redis little), yet never past
    the due time of a message it holds, so nothing is released late (issue #23)."""
    # Given a delay queue's consumer that would not look again for a minute
    broker.declare_queue("jobs")
    consumer = broker.consume("jobs.DQ", prefetch=100, timeout=LONG_WAIT_MS)
    got: list[Any] = []
    handed_back_after_due = threading.Event()

    def consume() -> None:
        for item in consumer:
            if item is not None:
                got.append(item)
            elif got and time.time() * 1000 >= got[0].options["eta"]:
                consumer.ack(got[0])  # what the worker does when it releases the message
                handed_back_after_due.set()
                return

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    poll(lambda: waiting_on(broker.client), timeout=10, message="the delay queue's consumer waiting")
    # When a message due in half a second is sent
    producer = WakingRedisBroker(client=redis.Redis.from_url(broker_url(broker)), namespace=broker.namespace)
    producer.enqueue(message("jobs"), delay=500)
    producer.close()
    # Then the consumer takes it at once, and hands control back once it is due, not a minute later
    poll(lambda: bool(got), timeout=10, message="the delayed message fetched")
    assert handed_back_after_due.wait(timeout=10)
    thread.join(timeout=10)
    assert not thread.is_alive() and consumer.due == {}
    consumer.close()


def test_switched_off_it_is_dramatiqs_polling(settings: Settings) -> None:
    broker = WakingRedisBroker(wake=False, url=settings.redis_url, namespace=f"{settings.redis_prefix}nowake")
    try:
        broker.enqueue(message("jobs"))
        assert broker.client.llen(wake_key(broker.namespace, "jobs")) == 0
        assert type(broker.consume("jobs", timeout=5)).__name__ != "WakingConsumer"
    finally:
        broker.close()
