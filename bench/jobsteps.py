"""A media job's steps in isolation: CPU µs per job of creating it (what the web process writes) and of
each worker step, on the local provider's zero-delay tiny profile (which answers at once: since issue #23
a job is its submit step alone; a provider that polls would show its poll and store steps too). No server, no
broker, no network: the steps are called as the worker's actors call them, their messages recorded.

    python -m bench.jobsteps [--database-url URL] [--jobs N] [--rounds R]

CPU is the whole process's (`time.process_time`: the event loop and any thread, e.g. the encoder's),
so the figures hold on a busy machine where wall-clock ones do not. They leave out what the servers
add around the steps (HTTP and the API's checks in the web process; Dramatiq's fetch, hand-over to the
event loop thread and ack in the worker): `python -m bench --scenarios jobs` measures the whole.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import insert

from app.accounts.auth import Principal
from app.accounts.limits import Limits
from app.api.resources import create_object_store
from app.billing.ledger import ACCOUNTS
from app.channels.catalog import CatalogCache
from app.cli.runner import migrate
from app.core.db import create_engine, create_sessionmaker
from app.core.queue import ActorName, Credit, Send, transaction
from app.core.settings import Settings
from app.jobs import pipeline, service
from app.jobs.models import JobKind
from app.providers.media_registry import build_media_providers
from app.webhooks.events import install as install_job_events

STEPS: dict[ActorName, Callable[[pipeline.JobDeps, str], Awaitable[None]]] = {
    ActorName.JOB_SUBMIT: pipeline.submit_job,
    ActorName.JOB_POLL: pipeline.poll_job,
    ActorName.JOB_STORE: pipeline.store_job,
}


@dataclass
class Recorder:
    sent: list[Send] = field(default_factory=list)

    async def send(self, sends: list[Send]) -> None:
        self.sent.extend(sends)

    async def credit(self, credits: list[Credit]) -> None:
        return None


async def run(settings: Settings, jobs: int, rounds: int) -> dict[str, float]:
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    account_id = f"acct_{uuid.uuid4().hex[:12]}"
    async with engine.begin() as conn:
        # The local models are free: no hold, so no balance (and none the ledger does not explain).
        await conn.execute(insert(ACCOUNTS).values(id=account_id, name=account_id, balance=0))
    principal = Principal("key_bench", account_id, "active", "default", Limits(0, 0, 0, 0))
    catalog = CatalogCache(sessionmaker, settings)
    await catalog.refresh()
    route = catalog.current.routes["local-video"][0]
    sender = Recorder()
    best: dict[str, float] = defaultdict(lambda: float("inf"))
    try:
        async with httpx.AsyncClient() as http:
            deps = pipeline.JobDeps(
                settings=settings,
                sessionmaker=sessionmaker,
                sender=sender,
                store=create_object_store(settings),
                catalog=catalog,
                media=build_media_providers(http, settings),
            )
            for _ in range(rounds + 1):  # the first round warms up (imports, caches) and is not counted
                spent: dict[str, float] = defaultdict(float)
                started = time.process_time()
                for n in range(jobs):
                    job = service.new_media_job(
                        kind=JobKind.VIDEO,
                        principal=principal,
                        model="local-video",
                        channel_id=route.channel_id,
                        prompt=f"bench job {n}",
                        params={"seconds": 4},
                        metadata=None,
                        webhook_url=None,
                        webhook_events=None,
                        deadline_seconds=600,
                    )
                    async with transaction(sessionmaker, sender) as session:
                        await service.create_media_job(session, job)
                spent["create (web)"] = time.process_time() - started
                # Breadth first, as a busy worker runs them: every job's submit, then every poll…
                while sender.sent:
                    batch, sender.sent = sender.sent, []
                    for message in batch:
                        step = STEPS[message.actor]
                        started = time.process_time()
                        await step(deps, message.object_id)
                        spent[message.actor.value] += time.process_time() - started
                for name, seconds in spent.items():
                    best[name] = min(best[name], seconds / jobs)
    finally:
        await catalog.stop()
        await engine.dispose()
    return dict(best)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    install_job_events()  # the wiring the worker's boot does (app/jobs/events.py)
    var_dir = Path(tempfile.mkdtemp(prefix="heytoken-jobsteps-"))
    settings = Settings(
        _env_file=None,
        var_dir=var_dir,
        database_url=args.database_url,
        local_provider=True,
        local_media_tiny=True,
        local_media_queue_seconds=0.0,
        local_media_render_seconds=0.0,
    )
    migrate(settings)
    figures = asyncio.run(run(settings, args.jobs, args.rounds))
    print(f"{settings.resolved_database_url().split(':')[0]}: {args.jobs} video jobs per round, best of {args.rounds}")
    for name, seconds in figures.items():
        print(f"  {name:<14} {1e6 * seconds:8.0f} µs CPU per job")
    print(f"  {'all':<14} {1e6 * sum(figures.values()):8.0f} µs CPU per job")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
