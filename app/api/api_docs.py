"""The OpenAPI document's shared parts: the OpenAI error envelope as a component, one-line response
declarations for routes, the two bearer schemes, and the config that serves /schema.

A route declares what it answers with `responses=docs(Model, 404, 409)`: 200 (or `status`) with
`Model`, and the error envelope for the given codes plus those every /v1 route can answer (400, 401,
429, 500). Litestar's own default error schema (`{status_code, detail}`) never reaches the document,
since the gateway never answers with it (app.core.errors renders every error as the envelope).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme, Server

API_KEY = "ApiKey"
ADMIN_TOKEN = "AdminToken"


class ErrorDetail(msgspec.Struct, kw_only=True):
    message: str
    type: str
    """invalid_request_error, insufficient_quota, rate_limit_exceeded, server_error, …"""
    param: str | None
    """The request field, query or path parameter, or header at fault."""
    code: str | None
    """A stable code: invalid_json, missing_required_parameter, invalid_type, invalid_value,
    nesting_too_deep, invalid_header, unknown_parameter, not_found, invalid_api_key, …"""
    job_id: str | None = None
    """Only on 504 generation_timeout: the job that goes on; fetch it later by this id."""


class ErrorEnvelope(msgspec.Struct, kw_only=True):
    """The OpenAI error envelope: every 4xx and 5xx answer of the gateway,
    `{"error": {"message", "type", "param", "code"}}`."""

    error: ErrorDetail


ERRORS: dict[int, str] = {
    400: "The request is malformed: a field, parameter or header is missing, of the wrong type or out of range.",
    401: "No valid key in `Authorization: Bearer …`.",
    402: "The account's balance does not cover the request.",
    403: "The account or key may not do this.",
    404: "No such object, model or route.",
    405: "This path does not take this method.",
    409: "The request conflicts with the object's state or with an earlier request under the same Idempotency-Key.",
    413: "The request body is too large.",
    415: "Unsupported content type.",
    422: "The request is well-formed but cannot be processed.",
    429: "A rate limit was reached; `Retry-After` says when to try again.",
    500: "An upstream or internal failure.",
    503: "Overloaded or a dependency is down; `Retry-After` says when to try again.",
    504: "The result was not ready in time; the job goes on (`error.job_id`).",
}
COMMON = (400, 401, 429, 500)
"""What any authenticated route can answer: a malformed request, no key, a rate limit, a failure."""


def error_responses(*statuses: int, common: tuple[int, ...] = COMMON) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(data_container=ErrorEnvelope, description=ERRORS[status], generate_examples=False)
        for status in sorted({*common, *statuses})
    }


def docs(
    model: Any = None,
    *errors: int,
    status: int = 200,
    description: str = "OK",
    common: tuple[int, ...] = COMMON,
) -> dict[int, ResponseSpec]:
    """`responses=` of a route: its success answer (`model`; None keeps the handler's return type)
    and the error envelope for `errors` and the common codes."""
    responses = error_responses(*errors, common=common)
    if model is not None:
        responses[status] = ResponseSpec(data_container=model, description=description, generate_examples=False)
    return responses


def with_error_docs(handlers: Iterable[object], *statuses: int, common: tuple[int, ...] = COMMON) -> None:
    """Give every route handler among `handlers` the error envelope for `statuses` and the common
    codes, under what it declares itself (`responses=docs(...)` wins)."""
    for handler in handlers:
        if isinstance(handler, HTTPRouteHandler):
            handler.responses = {**error_responses(*statuses, common=common), **(handler.responses or {})}


def openapi_config(path: str = "/schema") -> OpenAPIConfig:
    from app.api.docs_page import render_plugins

    return OpenAPIConfig(
        title="HeyToken Gateway",
        version="0.1.0",
        description="An OpenAI-compatible AI gateway: one API and one key in front of many upstream providers.",
        path=path,
        servers=[Server(url="/")],
        components=Components(
            security_schemes={
                API_KEY: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="sk-ht-…",
                    description="An API key: `Authorization: Bearer sk-ht-…`.",
                ),
                ADMIN_TOKEN: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="The operator token (HEYTOKEN_ADMIN_TOKEN), for /admin only.",
                ),
            }
        ),
        security=[{API_KEY: []}],
        render_plugins=render_plugins(),
        create_examples=False,
    )
