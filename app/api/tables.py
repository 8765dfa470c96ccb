"""Imports every table model so `SQLModel.metadata` is complete (Alembic, tests)."""

from app.accounts.models import Account, ApiKey, Tier
from app.billing.models import LedgerEntry, Price, RedemptionCode
from app.channels.models import Channel, ChannelModel
from app.console.models import ConsoleSession, ConsoleUser, StripeCheckout
from app.idempotency.models import IdempotencyRecord
from app.jobs.models import Job, UsageRollup
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent, WebhookSecret

__all__ = [
    "Account",
    "ApiKey",
    "Channel",
    "ChannelModel",
    "ConsoleSession",
    "ConsoleUser",
    "IdempotencyRecord",
    "Job",
    "LedgerEntry",
    "Price",
    "RedemptionCode",
    "StripeCheckout",
    "Tier",
    "UsageRollup",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookSecret",
]
