"""The events a media job emits, and the hook that turns them into something.

A job's transitions are decided here in `app.jobs` (service.py), but what an event becomes (a webhook
event with its deliveries, app.webhooks.events) lives in a higher layer: the wiring registers it with
`on_job_event` at start-up (the web app's lifespan, the worker's boot), so jobs never import webhooks.
The hook runs inside the transaction of the change that caused the event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from app.core.errors import InvalidRequest
from app.core.validation import wrong_type
from storage import ObjectStore

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from app.jobs.models import Job, JobStatus

KINDS = ("video", "image")
TERMINAL = ("completed", "failed", "cancelled")
EventType = Literal[
    "video.queued", "video.in_progress", "video.completed", "video.failed", "video.cancelled",
    "image.queued", "image.in_progress", "image.completed", "image.failed", "image.cancelled",
]  # fmt: skip
EVENT_TYPES = frozenset(get_args(EventType))
"""`<kind>.<public status>`; the queued and in_progress ones are sent only to those who ask for them."""
DEFAULT_EVENTS = frozenset(f"{kind}.{status}" for kind in KINDS for status in TERMINAL)


@dataclass(frozen=True, slots=True)
class ResultLinks:
    """What an image job's public object needs to sign links to its results (image.completed)."""

    store: ObjectStore
    ttl_seconds: int


JobEventHook = Callable[["AsyncSession", "Job", "JobStatus", "ResultLinks | None"], Awaitable[Any]]
_hooks: list[JobEventHook] = []


def on_job_event(hook: JobEventHook) -> None:
    """Register `hook(session, job, status, links)` for every event of every job (once per hook)."""
    if hook not in _hooks:
        _hooks.append(hook)


async def emit(session: AsyncSession, job: Job, status: JobStatus, links: ResultLinks | None = None) -> None:
    """The job reached public status `status`. Fails loudly when nothing was wired: a job event that
    went nowhere would be a webhook silently lost."""
    if not _hooks:
        raise RuntimeError("job events are not wired: call app.webhooks.events.install() at start-up")
    for hook in _hooks:
        await hook(session, job, status, links)


def default_events(kind: str) -> frozenset[str]:
    return frozenset(t for t in DEFAULT_EVENTS if t.startswith(f"{kind}."))


def parse_events(value: Any, param: str, kind: str | None = None) -> list[str] | None:
    """A list of event types (a single string is a list of one); None stays None (the default)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(e, str) for e in value):
        raise wrong_type(param, "an array of strings", value)
    if not value:
        raise InvalidRequest(f"'{param}' must name at least one event type.", param=param, code="invalid_value")
    allowed = EVENT_TYPES if kind is None else frozenset(t for t in EVENT_TYPES if t.startswith(f"{kind}."))
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise InvalidRequest(
            f"Unknown webhook event type(s): {', '.join(unknown)}; expected some of {', '.join(sorted(allowed))}.",
            param=param,
            code="invalid_value",
        )
    return list(dict.fromkeys(value))
