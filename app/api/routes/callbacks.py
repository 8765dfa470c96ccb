"""POST /callbacks/{vendor}/{token}: a media vendor telling us a job's task changed.

No API key: the token in the path (a MAC of vendor and job id, app/jobs/callbacks.py) and, for the
vendors that sign, their signature are the permission. A bad token or signature is 401 and changes
nothing; a good one makes the job's poll due now (the poll reads the outcome from the vendor's API).
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Response, post
from litestar.params import FromPath

from app.api.deps import resources_of
from app.api.resources import Resources
from app.channels.catalog import Route
from app.channels.models import ProviderType
from app.core.edge import is_clean_id
from app.core.errors import AuthenticationFailed, Conflict, NotFound
from app.jobs import callbacks
from app.jobs.models import Stage
from app.providers.signatures import JwksKeys, verify_fal, verify_standard_webhook

OK = Response(content=b'{"received":true}', media_type="application/json", status_code=200)


def _refused(detail: str) -> AuthenticationFailed:
    return AuthenticationFailed(f"Callback refused: {detail}.", code="invalid_signature")


def _route_of(res: Resources, model: str, channel_id: str | None) -> Route | None:
    return next((r for r in res.catalog.current.routes.get(model, []) if r.channel_id == channel_id), None)


def _fal_keys(request: Request[Any, Any, Any], res: Resources) -> JwksKeys:
    # Made on first use and kept for the process: most instances never get a fal callback.
    keys: JwksKeys | None = getattr(request.app.state, "fal_jwks", None)
    if keys is None:
        keys = JwksKeys(res.upstream, res.settings.fal_jwks_url)
        request.app.state.fal_jwks = keys
    return keys


async def _signed(request: Request[Any, Any, Any], res: Resources, route: Route, body: bytes) -> bool:
    """The vendor's own signature, where it signs (Kling and midjourney-proxy do not: the token is all)."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    now, max_age = time.time(), float(res.settings.callback_max_age_seconds)
    if route.provider == ProviderType.REPLICATE:
        secret = route.options.get("webhook_secret")
        if not isinstance(secret, str) or not secret:
            return True  # no signing secret configured on the channel: the token alone
        return verify_standard_webhook(secret, headers, body, now=now, max_age=max_age)
    if route.provider == ProviderType.FAL:
        keys = _fal_keys(request, res)
        if verify_fal(await keys.keys(), headers, body, now=now, max_age=max_age):
            return True
        return verify_fal(await keys.keys(refresh=True), headers, body, now=now, max_age=max_age)
    return True


@post("/callbacks/{vendor:str}/{token:str}", status_code=200, include_in_schema=False)
async def vendor_callback(
    request: Request[Any, Any, Any],
    vendor: FromPath[str],
    token: FromPath[str],
) -> Response[bytes]:
    res = resources_of(request)
    if vendor not in callbacks.CALLBACK_VENDORS or not is_clean_id(token, 200):
        raise NotFound("No such callback.", code="not_found")
    job_id = callbacks.job_of_token(res.settings.resolved_secret_key(), vendor, token)
    if job_id is None:
        raise _refused("unknown token")
    job = await callbacks.load_job(res.sessionmaker, job_id)
    route = _route_of(res, job.model, job.channel_id) if job is not None and job.model else None
    if job is None or route is None or route.provider != vendor:
        raise NotFound("No such callback.", code="not_found")
    body = await request.body()
    if not await _signed(request, res, route, body):
        raise _refused(f"the {vendor} signature does not verify")
    if job.stage == Stage.QUEUED.value:
        # The vendor answered our submit and called back before the submit step committed: not yet
        # ours to wake. Vendors retry a callback that was not answered 2xx.
        raise Conflict("The job's submission is still being recorded; retry the callback.", code="job_busy")
    await callbacks.wake(res.sessionmaker, res.sender, job_id)
    return OK
