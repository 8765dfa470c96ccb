"""Upstream callbacks: the URL the gateway gives a vendor for one job, and what a verified callback does.

The URL is `{callback base}/callbacks/{vendor}/{job id}.{mac}`; the MAC (HMAC-SHA256 of vendor and
job id under the instance secret) makes the URL itself unguessable, which is all the protection the
vendors that do not sign (Kling, midjourney-proxy) get. Vendors that sign (Replicate, fal) are checked
by their own signature as well (app/providers/signatures.py). Served at the root, like the signed
`/blobs` links, not under `/v1`: every `/v1` route takes an API key.

A verified callback is a wake-up, not the result: it makes the job's next poll due now and sends it,
so the poll step reads the outcome from the vendor's API as it always does. A forged or replayed body
can therefore change nothing, and a lost callback costs only the wait until the next regular poll.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging

from app.channels.catalog import Route
from app.core.db import SessionMaker, utcnow
from app.core.queue import ActorName, Sender, defer, transaction
from app.core.settings import Settings
from app.jobs import service
from app.jobs.models import Job, Stage, stage_of

log = logging.getLogger("heytoken.jobs.callbacks")

CALLBACK_VENDORS = frozenset({"replicate", "fal", "kling", "midjourney"})
"""Provider types whose adapters pass the gateway's callback URL upstream."""


def _mac(secret: bytes, vendor: str, job_id: str) -> str:
    digest = hmac.new(secret, f"callback:{vendor}:{job_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def job_token(secret: bytes, vendor: str, job_id: str) -> str:
    return f"{job_id}.{_mac(secret, vendor, job_id)}"


def job_of_token(secret: bytes, vendor: str, token: str) -> str | None:
    """The job id a callback token names, or None when the token was not made by this instance."""
    job_id, _, mac = token.rpartition(".")
    if not job_id or not hmac.compare_digest(mac, _mac(secret, vendor, job_id)):
        return None
    return job_id


def callback_url(settings: Settings, route: Route, job_id: str) -> str | None:
    """The URL to pass upstream for this job, or None: callbacks off for the vendor or the channel."""
    if route.provider not in CALLBACK_VENDORS or route.options.get("callbacks") is False:
        return None
    base = (settings.callback_base_url or settings.resolved_public_base_url()).rstrip("/")
    token = job_token(settings.resolved_secret_key(), route.provider, job_id)
    return f"{base}/callbacks/{route.provider}/{token}"


async def load_job(sessionmaker: SessionMaker, job_id: str) -> Job | None:
    async with sessionmaker() as session:
        return await service.load_job(session, job_id)


async def wake(sessionmaker: SessionMaker, sender: Sender, job_id: str) -> bool:
    """Make the job's poll due now and send it. False when the job is past polling (finished, storing)
    or another writer changed it meanwhile (its own step then carries on)."""
    async with transaction(sessionmaker, sender) as session:
        job = await service.load_job(session, job_id)
        if job is None or stage_of(job) not in (Stage.SUBMITTED, Stage.RUNNING):
            return False
        woken = await service.update_job(session, job, next_poll_at=utcnow())
        if woken:
            defer(ActorName.JOB_POLL, job.id)
    log.info("job.callback_wake job=%s woken=%s", job_id, woken)
    return woken
