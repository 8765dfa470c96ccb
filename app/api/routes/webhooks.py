"""The webhook API, on the caller's own account:

GET  /v1/webhooks/secret                     whether a signing secret exists (never the secret)
POST /v1/webhooks/secret                     show the signing secret, once (created if needed)
POST /v1/webhooks/secret/rotate              a new secret; the old one signs on for an overlap
POST /v1/webhooks/endpoints                  add an endpoint (url, events, description)
GET  /v1/webhooks/endpoints[/{id}]           list / read
POST /v1/webhooks/endpoints/{id}             change url, events, description or status
DELETE /v1/webhooks/endpoints/{id}
GET  /v1/webhooks/events[/{id}]              events with their deliveries and attempts
POST /v1/webhooks/events/{id}/redeliver      send again (optionally to one endpoint_id)
GET  /v1/jobs/{id}/events                    one job's events
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, delete, get, post
from litestar.params import JSONBody, QueryParameter

from app.api.api_docs import docs
from app.api.deps import principal_of, resources_of
from app.api.lists import list_page
from app.core.errors import NotFound
from app.core.params import IdPath, IdQuery, Order, PageLimit
from app.core.queue import transaction
from app.jobs.events import EventType
from app.jobs.models import Job
from app.webhooks import service, signing
from app.webhooks.schemas import (
    Deleted,
    EndpointCreateBody,
    EndpointUpdateBody,
    RedeliverBody,
    RotateSecretBody,
    WebhookEndpointList,
    WebhookEndpointObject,
    WebhookEventList,
    WebhookEventObject,
    WebhookSecretObject,
    endpoint_body,
    endpoint_public,
    secret_public,
)


@get("/webhooks/secret", operation_id="retrieveWebhookSecret", responses=docs(WebhookSecretObject))
async def retrieve_webhook_secret(request: Request[Any, Any, Any]) -> dict[str, Any]:
    async with resources_of(request).sessionmaker() as session:
        return secret_public(await signing.describe(session, principal_of(request).account_id))


@post("/webhooks/secret", status_code=200, operation_id="revealWebhookSecret", responses=docs(WebhookSecretObject, 409))
async def reveal_webhook_secret(request: Request[Any, Any, Any]) -> dict[str, Any]:
    res = resources_of(request)
    key = res.settings.resolved_secret_key()
    async with transaction(res.sessionmaker, res.sender) as session:
        row, secret = await signing.reveal(session, principal_of(request).account_id, key)
    return secret_public(row, secret)


@post(
    "/webhooks/secret/rotate", status_code=200, operation_id="rotateWebhookSecret", responses=docs(WebhookSecretObject)
)
async def rotate_webhook_secret(
    request: Request[Any, Any, Any], data: JSONBody[RotateSecretBody | None] = None
) -> dict[str, Any]:
    res = resources_of(request)
    overlap = data.overlap_seconds if data is not None else None
    if overlap is None:
        overlap = res.settings.webhook_secret_overlap_seconds
    async with transaction(res.sessionmaker, res.sender) as session:
        row, secret = await signing.rotate(
            session, principal_of(request).account_id, res.settings.resolved_secret_key(), overlap
        )
    return secret_public(row, secret)


@post(
    "/webhooks/endpoints",
    status_code=200,
    operation_id="createWebhookEndpoint",
    responses=docs(WebhookEndpointObject, 409),
)
async def create_webhook_endpoint(
    request: Request[Any, Any, Any], data: JSONBody[EndpointCreateBody]
) -> dict[str, Any]:
    res = resources_of(request)
    body = endpoint_body(data)
    async with transaction(res.sessionmaker, res.sender) as session:
        endpoint = await service.create_endpoint(session, res.url_guard, principal_of(request).account_id, body)
    return endpoint_public(endpoint)


@get("/webhooks/endpoints", operation_id="listWebhookEndpoints", responses=docs(WebhookEndpointList))
async def list_webhook_endpoints(request: Request[Any, Any, Any]) -> dict[str, Any]:
    async with resources_of(request).sessionmaker() as session:
        endpoints = await service.list_endpoints(session, principal_of(request).account_id)
    return {"object": "list", "data": [endpoint_public(e) for e in endpoints], "has_more": False}


@get(
    "/webhooks/endpoints/{endpoint_id:str}",
    operation_id="retrieveWebhookEndpoint",
    responses=docs(WebhookEndpointObject, 404),
)
async def retrieve_webhook_endpoint(request: Request[Any, Any, Any], endpoint_id: IdPath) -> dict[str, Any]:
    async with resources_of(request).sessionmaker() as session:
        return endpoint_public(await service.get_endpoint(session, principal_of(request).account_id, endpoint_id))


@post(
    "/webhooks/endpoints/{endpoint_id:str}",
    status_code=200,
    operation_id="updateWebhookEndpoint",
    responses=docs(WebhookEndpointObject, 404),
)
async def update_webhook_endpoint(
    request: Request[Any, Any, Any], endpoint_id: IdPath, data: JSONBody[EndpointUpdateBody]
) -> dict[str, Any]:
    res = resources_of(request)
    body = endpoint_body(data)
    async with transaction(res.sessionmaker, res.sender) as session:
        endpoint = await service.update_endpoint(
            session, res.url_guard, principal_of(request).account_id, endpoint_id, body
        )
    return endpoint_public(endpoint)


@delete(
    "/webhooks/endpoints/{endpoint_id:str}",
    status_code=200,
    operation_id="deleteWebhookEndpoint",
    responses=docs(Deleted, 404),
)
async def delete_webhook_endpoint(request: Request[Any, Any, Any], endpoint_id: IdPath) -> dict[str, Any]:
    res = resources_of(request)
    async with transaction(res.sessionmaker, res.sender) as session:
        await service.delete_endpoint(session, principal_of(request).account_id, endpoint_id)
    return {"id": endpoint_id, "object": "webhook_endpoint.deleted", "deleted": True}


@get("/webhooks/events", operation_id="listWebhookEvents", responses=docs(WebhookEventList))
async def list_webhook_events(
    request: Request[Any, Any, Any],
    limit: PageLimit = 20,
    order: Order = "desc",
    event_type: Annotated[EventType | None, QueryParameter(name="type")] = None,
    job_id: IdQuery = None,
    after: IdQuery = None,
) -> dict[str, Any]:
    async with resources_of(request).sessionmaker() as session:
        events, has_more = await service.list_events(
            session,
            principal_of(request).account_id,
            job_id=job_id,
            event_type=event_type,
            after=after,
            limit=limit,
            descending=order == "desc",
        )
        data = await service.render_events(session, events)
    return list_page(data, has_more=has_more)


@get("/webhooks/events/{event_id:str}", operation_id="retrieveWebhookEvent", responses=docs(WebhookEventObject, 404))
async def retrieve_webhook_event(request: Request[Any, Any, Any], event_id: IdPath) -> dict[str, Any]:
    async with resources_of(request).sessionmaker() as session:
        event = await service.get_event(session, principal_of(request).account_id, event_id)
        return (await service.render_events(session, [event]))[0]


@post(
    "/webhooks/events/{event_id:str}/redeliver",
    status_code=200,
    operation_id="redeliverWebhookEvent",
    responses=docs(WebhookEventObject, 404),
)
async def redeliver_webhook_event(
    request: Request[Any, Any, Any], event_id: IdPath, data: JSONBody[RedeliverBody | None] = None
) -> dict[str, Any]:
    res = resources_of(request)
    endpoint_id = data.endpoint_id if data is not None else None
    account_id = principal_of(request).account_id
    async with transaction(res.sessionmaker, res.sender) as session:
        event = await service.redeliver(session, account_id, event_id, endpoint_id)
    async with res.sessionmaker() as session:
        return (await service.render_events(session, [event]))[0]


@get("/jobs/{job_id:str}/events", operation_id="listJobWebhookEvents", responses=docs(WebhookEventList, 404))
async def list_job_webhook_events(request: Request[Any, Any, Any], job_id: IdPath) -> dict[str, Any]:
    account_id = principal_of(request).account_id
    async with resources_of(request).sessionmaker() as session:
        job = await session.get(Job, job_id)
        if job is None or job.account_id != account_id or job.deleted_at is not None:
            raise NotFound(f"No job found with id '{job_id}'.", param="id", code="job_not_found")
        events, _ = await service.list_events(session, account_id, job_id=job_id, limit=100, descending=False)
        data = await service.render_events(session, events)
    return {"object": "list", "data": data, "has_more": False}


HANDLERS = [
    retrieve_webhook_secret,
    reveal_webhook_secret,
    rotate_webhook_secret,
    create_webhook_endpoint,
    list_webhook_endpoints,
    retrieve_webhook_endpoint,
    update_webhook_endpoint,
    delete_webhook_endpoint,
    list_webhook_events,
    retrieve_webhook_event,
    redeliver_webhook_event,
    list_job_webhook_events,
]
