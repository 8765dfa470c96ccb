"""A Hypothesis state machine over the real ledger: top-ups, job holds, captures, releases, duplicate
deliveries and crashes between steps. After every step: balance = sum(ledger) = the model ≥ 0."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from app.accounts import service as accounts
from app.billing import ledger
from app.billing import service as billing
from app.core.db import create_engine, create_sessionmaker, unit_of_work
from app.core.errors import InsufficientQuota
from app.core.settings import Settings
from app.jobs import billing as job_billing
from app.jobs.models import Job, JobKind, JobStatus

SETTINGS: dict[str, Settings] = {}


@pytest.fixture(autouse=True)
def _settings(settings: Settings) -> Iterator[None]:
    SETTINGS["current"] = settings
    yield
    SETTINGS.clear()


class LedgerMachine(RuleBasedStateMachine):
    held = Bundle("held")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.engine = create_engine(SETTINGS["current"])
        self.sessionmaker = create_sessionmaker(self.engine)
        self.account = self.run(self._make_account())
        self.balance = 0
        self.holds: dict[str, int] = {}
        self.settled: dict[str, int] = {}

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _make_account(self) -> Any:
        async with unit_of_work(self.sessionmaker) as session:
            return await accounts.create_account(session, f"machine-{uuid.uuid4().hex[:10]}")

    def teardown(self) -> None:
        self.run(self.engine.dispose())
        self.loop.close()

    @rule(amount=st.integers(1, 5_000), retried=st.booleans())
    def topup(self, amount: int, retried: bool) -> None:
        key = f"topup:{uuid.uuid4()}"

        async def go() -> int:
            async with unit_of_work(self.sessionmaker) as session:
                account = await accounts.get_account(session, self.account.id)
                return await billing.topup(session, account, amount, key=key)

        assert self.run(go()) == amount
        self.balance += amount
        if retried:  # the same top-up delivered again moves nothing
            assert self.run(go()) == 0

    @rule(target=held, amount=st.integers(0, 3_000))
    def start_job(self, amount: int) -> str:
        job_id = f"video_{uuid.uuid4().hex}"

        async def go() -> None:
            async with unit_of_work(self.sessionmaker) as session:
                session.add(
                    Job(id=job_id, kind=JobKind.VIDEO, status=JobStatus.QUEUED, account_id=self.account.id, model="m")
                )
                await session.flush()
                await job_billing.hold(
                    await session.connection(), account_id=self.account.id, job_id=job_id, amount=amount, model="m"
                )

        try:
            self.run(go())
        except InsufficientQuota:
            assert amount > self.balance
            return job_id  # nothing was created (the transaction rolled back)
        assert amount <= self.balance
        self.balance -= amount
        if amount:
            self.holds[job_id] = amount
        return job_id

    def _settle(self, job_id: str, cost: int | None, crash: bool = False) -> int:
        async def go() -> int:
            async with unit_of_work(self.sessionmaker) as session:
                _, delta = await job_billing.settle(await session.connection(), job_id, cost=cost)
                if crash:
                    raise RuntimeError("worker killed before commit")
                return delta

        try:
            return int(self.run(go()))
        except RuntimeError:
            return 0

    @rule(job_id=consumes(held), fraction=st.floats(0, 1), deliveries=st.integers(1, 3))
    def complete(self, job_id: str, fraction: float, deliveries: int) -> None:
        hold = self.holds.get(job_id, 0)
        cost = int(hold * fraction)
        credited = [self._settle(job_id, cost) for _ in range(deliveries)]
        if hold:
            assert credited[0] == hold - cost and all(c == 0 for c in credited[1:])
            self.balance += hold - cost
            self.settled[job_id] = cost
            del self.holds[job_id]

    @rule(job_id=consumes(held), deliveries=st.integers(1, 3), then_complete=st.booleans())
    def fail(self, job_id: str, deliveries: int, then_complete: bool) -> None:
        hold = self.holds.get(job_id, 0)
        credited = [self._settle(job_id, None) for _ in range(deliveries)]
        if then_complete:  # a late "completed" message after the reconciler failed the job
            credited.append(self._settle(job_id, max(1, hold)))
        if hold:
            assert credited[0] == hold and all(c == 0 for c in credited[1:])
            self.balance += hold
            self.settled[job_id] = 0
            del self.holds[job_id]

    @rule(job_id=held)
    def crash_mid_settlement(self, job_id: str) -> None:
        assert self._settle(job_id, 1, crash=True) == 0  # rolled back: the job is still held

    @invariant()
    def balance_is_the_sum_of_the_ledger(self) -> None:
        async def read() -> tuple[int, int]:
            async with self.sessionmaker() as session:
                return (
                    await ledger.balance(session, self.account.id),
                    await ledger.ledger_sum(session, self.account.id),
                )

        cached, total = self.run(read())
        assert cached == total == self.balance >= 0


LedgerMachine.TestCase.settings = hsettings(max_examples=25, stateful_step_count=15, deadline=None)
TestLedgerMachine = LedgerMachine.TestCase
