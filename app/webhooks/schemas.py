"""Webhook shapes: the event types, the endpoint request bodies and the public objects."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from app.core.db import to_unix
from app.core.edge import NO_NUL, ObjectId
from app.core.errors import InvalidRequest
from app.core.validation import wrong_type
from app.jobs.events import DEFAULT_EVENTS, parse_events
from app.webhooks.models import (
    DeliveryState,
    EndpointStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookSecret,
)

MAX_ENDPOINTS = 20
ENDPOINT_FIELDS = ("url", "events", "description", "status")


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
    """Only the fields it names change (`description: null` clears the description)."""

    url: EndpointUrl | None = None
    events: EventList | None = None
    description: Description | None = None
    status: Literal["enabled", "disabled"] | None = None


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


def parse_endpoint(body: dict[str, Any], *, creating: bool) -> EndpointBody:
    unknown = sorted(set(body) - set(ENDPOINT_FIELDS if not creating else ENDPOINT_FIELDS[:3]))
    if unknown:
        raise InvalidRequest(f"Unrecognized request argument supplied: {unknown[0]}.", param=unknown[0])
    parsed = EndpointBody(given=set(body))
    url = body.get("url")
    if creating and url is None:
        raise InvalidRequest("Missing required parameter: 'url'.", param="url", code="missing_required_parameter")
    if "url" in body:
        if not isinstance(url, str):
            raise wrong_type("url", "a string", url)
        parsed.url = url
    parsed.events = parse_events(body.get("events"), "events")
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 500):
        raise InvalidRequest("'description' must be a string of at most 500 characters.", param="description")
    parsed.description = description
    status = body.get("status")
    if "status" in body and status not in tuple(EndpointStatus):
        raise InvalidRequest("'status' must be 'enabled' or 'disabled'.", param="status", code="invalid_value")
    parsed.status = status
    return parsed


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
