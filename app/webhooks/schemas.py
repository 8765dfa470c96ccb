"""Webhook shapes: the event types, the endpoint request bodies and the public objects."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from app.core.db import to_unix
from app.core.edge import NO_NUL, ObjectId
from app.jobs.events import DEFAULT_EVENTS, parse_events
from app.webhooks.models import (
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookSecret,
)

MAX_ENDPOINTS = 20


EndpointUrl = Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=NO_NUL)]
Description = Annotated[str, msgspec.Meta(max_length=500, pattern=NO_NUL)]
EventList = (
    list[Annotated[str, msgspec.Meta(max_length=64, pattern=NO_NUL)]]
    | Annotated[str, msgspec.Meta(max_length=64, pattern=NO_NUL)]
)
MAX_OVERLAP_SECONDS = 7 * 86_400


class EndpointCreateBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: EndpointUrl
    events: EventList | None = None
    description: Description | None = None


class EndpointUpdateBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Only the fields it names change (`description: null` clears the description, `events: null`
    goes back to the default events)."""

    url: EndpointUrl | UnsetType = UNSET
    events: EventList | UnsetType | None = UNSET
    description: Description | UnsetType | None = UNSET
    status: Literal["enabled", "disabled"] | UnsetType = UNSET


class RotateSecretBody(msgspec.Struct, kw_only=True):
    overlap_seconds: Annotated[int, msgspec.Meta(ge=0, le=MAX_OVERLAP_SECONDS)] | None = None
    """How long the old secret keeps signing too (default: HEYTOKEN_WEBHOOK_SECRET_OVERLAP_SECONDS)."""


class RedeliverBody(msgspec.Struct, kw_only=True):
    endpoint_id: ObjectId | None = None
    """Send to this endpoint only (default: every endpoint the event went to)."""


@dataclass(slots=True)
class EndpointBody:
    """The fields a create or update request set (`given` tells which ones it named)."""

    given: set[str]
    url: str | None = None
    events: list[str] | None = None
    description: str | None = None
    status: str | None = None


def endpoint_body(data: EndpointCreateBody | EndpointUpdateBody) -> EndpointBody:
    """The service's view of a decoded create or update body: the fields it named, the event types
    checked against the known ones."""
    given = {name for name in data.__struct_fields__ if getattr(data, name) is not UNSET}
    values = {name: getattr(data, name) for name in given}
    return EndpointBody(
        given=given,
        url=values.get("url"),
        events=parse_events(values.get("events"), "events"),
        description=values.get("description"),
        status=values.get("status"),
    )


def endpoint_public(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "events": endpoint.events if endpoint.events is not None else sorted(DEFAULT_EVENTS),
        "description": endpoint.description,
        "status": endpoint.status,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": to_unix(endpoint.created_at),
        "updated_at": to_unix(endpoint.updated_at),
    }


def secret_public(row: WebhookSecret | None, plaintext: str | None = None) -> dict[str, Any]:
    public: dict[str, Any] = {
        "object": "webhook_secret",
        "created_at": to_unix(row.created_at) if row else None,
        "revealed": bool(row and row.revealed_at),
        "previous_expires_at": to_unix(row.previous_expires_at) if row else None,
    }
    if plaintext is not None:
        public["secret"] = plaintext
    return public


def attempt_public(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "attempted_at": to_unix(attempt.attempted_at),
        "address": attempt.address,
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "error": attempt.error,
        "response_body": attempt.response_body,
    }


def delivery_public(delivery: WebhookDelivery, url: str | None, attempts: list[WebhookAttempt]) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "object": "webhook.delivery",
        "endpoint_id": delivery.endpoint_id,
        "url": url,
        "status": delivery.state,
        "next_attempt_at": to_unix(delivery.next_attempt_at) if delivery.state == DeliveryState.PENDING else None,
        "delivered_at": to_unix(delivery.delivered_at),
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "attempts": [attempt_public(a) for a in attempts],
    }


def event_status(deliveries: list[WebhookDelivery]) -> str:
    """pending while any delivery may still go out; delivered when all went through; else failed."""
    states = {d.state for d in deliveries}
    if DeliveryState.PENDING in states:
        return "pending"
    return "delivered" if states <= {DeliveryState.DELIVERED} else "failed"


def event_public(
    event: WebhookEvent, deliveries: list[dict[str, Any]], states: list[WebhookDelivery]
) -> dict[str, Any]:
    return {
        "id": event.id,
        "object": "webhook.event",
        "type": event.type,
        "created_at": to_unix(event.created_at),
        "job_id": event.job_id,
        "status": event_status(states),
        "payload": json.loads(event.payload),
        "deliveries": deliveries,
    }


class WebhookSecretObject(msgspec.Struct, kw_only=True):
    object: Literal["webhook_secret"]
    created_at: int | None
    revealed: bool
    previous_expires_at: int | None
    secret: str | None = None
    """`whsec_…`: only in the answer that reveals or rotates it."""


class WebhookEndpointObject(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["webhook_endpoint"]
    url: str
    events: list[str]
    description: str | None
    status: str
    disabled_reason: str | None
    created_at: int | None
    updated_at: int | None


class WebhookEndpointList(msgspec.Struct, kw_only=True):
    object: Literal["list"]
    data: list[WebhookEndpointObject]
    has_more: bool


class Deleted(msgspec.Struct, kw_only=True):
    id: str
    object: str
    deleted: bool


class WebhookAttemptObject(msgspec.Struct, kw_only=True):
    attempted_at: int | None
    address: str | None
    status_code: int | None
    latency_ms: int | None
    error: str | None
    response_body: str | None


class WebhookDeliveryObject(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["webhook.delivery"]
    endpoint_id: str | None
    url: str | None
    status: str
    next_attempt_at: int | None
    delivered_at: int | None
    last_status: int | None
    last_error: str | None
    attempts: list[WebhookAttemptObject]


class WebhookEventObject(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["webhook.event"]
    type: str
    created_at: int | None
    job_id: str | None
    status: Literal["pending", "delivered", "failed"]
    payload: dict[str, Any]
    """The event as it is sent: OpenAI's envelope (`{"object": "event", "type", "data"}`)."""
    deliveries: list[WebhookDeliveryObject]


class WebhookEventList(msgspec.Struct, kw_only=True):
    object: Literal["list"]
    data: list[WebhookEventObject]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None
