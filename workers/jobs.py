"""The job actors: thin wrappers that hand a job id to the app's step functions.

Messages carry only the job id; each step re-reads the row, so any message may be delivered twice,
late, or after the job ended, and the end state is the same (see app/jobs/pipeline.py).
"""

from __future__ import annotations

import dramatiq

from app.core.queue import QUEUE_OF, ActorName
from app.jobs import pipeline
from workers.middleware import deps

# Dramatiq runs fetched messages lowest priority first: a job's start comes before steps of jobs
# already under way (their upstream is working meanwhile), so queue-to-start stays short under load.
START_PRIORITY = 0
LATER_STEP_PRIORITY = 10


@dramatiq.actor(
    actor_name=ActorName.JOB_SUBMIT.value, queue_name=QUEUE_OF[ActorName.JOB_SUBMIT].value, priority=START_PRIORITY
)
async def job_submit(job_id: str) -> None:
    await pipeline.submit_job(deps(), job_id)


@dramatiq.actor(
    actor_name=ActorName.JOB_POLL.value, queue_name=QUEUE_OF[ActorName.JOB_POLL].value, priority=LATER_STEP_PRIORITY
)
async def job_poll(job_id: str) -> None:
    await pipeline.poll_job(deps(), job_id)


@dramatiq.actor(
    actor_name=ActorName.JOB_STORE.value, queue_name=QUEUE_OF[ActorName.JOB_STORE].value, priority=LATER_STEP_PRIORITY
)
async def job_store(job_id: str) -> None:
    await pipeline.store_job(deps(), job_id)


@dramatiq.actor(
    actor_name=ActorName.JOB_CANCEL_UPSTREAM.value,
    queue_name=QUEUE_OF[ActorName.JOB_CANCEL_UPSTREAM].value,
    priority=LATER_STEP_PRIORITY,
)
async def job_cancel_upstream(job_id: str) -> None:
    await pipeline.cancel_upstream(deps(), job_id)
