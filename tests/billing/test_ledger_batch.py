"""ledger.post_entries: a batch goes in as one multi-row insert, and only its new keys move money."""

from __future__ import annotations

import uuid

from app.accounts.models import Account
from app.billing import ledger
from app.billing.models import EntryKind
from app.core.db import SessionMaker, unit_of_work
from tests.conftest import Tenant


async def test_batch_posts_only_new_keys_and_moves_the_balance_by_them(
    sessionmaker: SessionMaker, tenant: Tenant
) -> None:
    run = uuid.uuid4().hex
    a, b, c = (f"{run}:{name}" for name in "abc")
    acct = tenant.account_id
    async with unit_of_work(sessionmaker) as session:
        before = (await session.get(Account, acct)).balance  # type: ignore[union-attr]
        conn = await session.connection()
        first = await ledger.post_entries(conn, [ledger.entry(acct, EntryKind.ADJUSTMENT, 100, b)])
        assert [e["idempotency_key"] for e in first] == [b]
        batch = [
            ledger.entry(acct, EntryKind.ADJUSTMENT, 10, a),
            ledger.entry(acct, EntryKind.ADJUSTMENT, 1000, b),  # already posted: no effect
            ledger.entry(acct, EntryKind.ADJUSTMENT, -3, c),
        ]
        posted = await ledger.post_entries(conn, batch)
        assert sorted(e["idempotency_key"] for e in posted) == [a, c]
        again = await ledger.post_entries(conn, batch)
        assert again == []
    async with unit_of_work(sessionmaker) as session:
        account = await session.get(Account, acct)
        assert account is not None
        await session.refresh(account)
        assert account.balance == before + 100 + 10 - 3


async def test_a_key_twice_in_one_batch_moves_the_balance_once(sessionmaker: SessionMaker, tenant: Tenant) -> None:
    key = f"{uuid.uuid4().hex}:twice"
    acct = tenant.account_id
    async with unit_of_work(sessionmaker) as session:
        before = (await session.get(Account, acct)).balance  # type: ignore[union-attr]
        conn = await session.connection()
        twice = [ledger.entry(acct, EntryKind.ADJUSTMENT, 7, key), ledger.entry(acct, EntryKind.ADJUSTMENT, 7, key)]
        posted = await ledger.post_entries(conn, twice)
        assert posted == twice[:1]
    async with unit_of_work(sessionmaker) as session:
        balance = await ledger.balance(session, acct)
        assert balance == before + 7
        assert await ledger.ledger_sum(session, acct) == balance  # the cached balance is its ledger's sum
