"""The webhook actor: a thin wrapper that hands a delivery id to app/webhooks/delivery.py.

One message is one attempt; the next attempt is a new message sent with a delay, so a worker thread
is never held for longer than one attempt's budget (HEYTOKEN_WEBHOOK_TIMEOUT_SECONDS).
"""

from __future__ import annotations

import dramatiq

from app.core.queue import QUEUE_OF, ActorName
from app.webhooks import delivery
from workers.middleware import webhook_deps


@dramatiq.actor(actor_name=ActorName.WEBHOOK_DELIVER.value, queue_name=QUEUE_OF[ActorName.WEBHOOK_DELIVER].value)
async def webhook_deliver(delivery_id: str) -> None:
    await delivery.deliver(webhook_deps(), delivery_id)
