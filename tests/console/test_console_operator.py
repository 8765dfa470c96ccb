"""The operator's accounts page stays the same size as accounts and the ledger grow: a page of accounts at
a time (or those a search finds) with their people, and the ledger check when the operator asks for it.
The console pages' query parameters are typed text: a bad one is a 400 envelope naming it."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import update
from sqlmodel import col

from app.accounts import service as accounts
from app.accounts.models import Account
from app.console import users
from app.console.models import Role
from app.core.db import SessionMaker, unit_of_work
from tests.conftest import ADMIN_TOKEN
from tests.console.browser import PASSWORD
from tests.console.conftest import MakePerson, csrf_of, sign_in

ROW = re.compile(r'<tr id="acct-([^"]+)">')


@pytest.fixture
async def operator(client: AsyncTestClient[Any]) -> AsyncTestClient[Any]:
    client.cookies.clear()
    await sign_in(client, "operator", ADMIN_TOKEN)
    return client


def listed(html: str) -> list[str]:
    return ROW.findall(html)


async def new_account(sessionmaker: SessionMaker, prefix: str) -> Account:
    async with unit_of_work(sessionmaker) as session:
        return await accounts.create_account(session, f"{prefix}-{uuid.uuid4().hex[:8]}")


async def test_the_ledger_check_runs_when_the_operator_asks(
    operator: AsyncTestClient[Any], sessionmaker: SessionMaker
) -> None:
    account = await new_account(sessionmaker, "drift")
    name = account.name
    async with unit_of_work(sessionmaker) as session:  # a balance its ledger does not explain
        await session.exec(update(Account).where(col(Account.id) == account.id).values(balance=123))
    try:
        page = await operator.get("/console/operator", params={"q": name})
        assert page.status_code == 200
        assert listed(page.text) == [name]
        assert (
            "Verify the ledger" in page.text
            and account.id not in page.text.split('id="ledger-check"')[1].split("</section>")[0]
        )
        checked = await operator.get("/console/operator", params={"q": name, "verify": "true"})
        section = checked.text.split('id="ledger-check"')[1].split("</section>")[0]
        assert "balance is not the sum of their ledger" in section and account.id in section
        assert "$0.00" in section  # the ledger's sum, beside the drifted balance
    finally:
        async with unit_of_work(sessionmaker) as session:
            await session.exec(update(Account).where(col(Account.id) == account.id).values(balance=0))


async def test_accounts_come_a_page_at_a_time_and_a_search_finds_one(
    operator: AsyncTestClient[Any], sessionmaker: SessionMaker
) -> None:
    tag = f"pg{uuid.uuid4().hex[:6]}"
    async with unit_of_work(sessionmaker) as session:
        made = [await accounts.create_account(session, f"{tag}-{i:02d}") for i in range(51)]
        owner = await users.create_user(session, f"{tag}@example.com", PASSWORD, account=made[0], role=Role.OWNER)
        other = await users.create_user(session, f"{tag}-x@example.com", PASSWORD, account=made[50], role=Role.OWNER)
    first = await operator.get("/console/operator", params={"q": tag.upper()})
    assert listed(first.text) == [a.name for a in made[:50]]
    assert "page=2" in first.text
    # The people shown are those of the accounts shown (and the operators).
    assert owner.email in first.text and other.email not in first.text
    second = await operator.get("/console/operator", params={"q": tag, "page": 2})
    assert listed(second.text) == [made[50].name]
    assert other.email in second.text and "page=3" not in second.text
    by_id = await operator.get("/console/operator", params={"q": made[7].id})
    assert listed(by_id.text) == [made[7].name]
    # A search is text, not a pattern: '%' and '_' match themselves only.
    for pattern in ("%", f"{tag}_", f"{tag}%"):
        none = await operator.get("/console/operator", params={"q": pattern})
        assert listed(none.text) == [] and "No account matches." in none.text, pattern
    # Every account is reachable without a search, a page at a time.
    everyone = await operator.get("/console/operator")
    assert len(listed(everyone.text)) <= 50


BAD_QUERIES = [
    ({"page": "0"}, "invalid_value"),
    ({"page": "9" * 40}, "invalid_value"),
    ({"page": "x"}, "invalid_type"),
    ({"verify": "maybe"}, "invalid_type"),
    ({"q": "a\x00b"}, "invalid_value"),
    ({"q": "x" * 201}, "invalid_value"),
]


@pytest.mark.parametrize(("params", "code"), BAD_QUERIES)
async def test_bad_paging_or_search_is_a_clear_400(
    operator: AsyncTestClient[Any], params: dict[str, str], code: str
) -> None:
    answer = await operator.get("/console/operator", params=params)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and error["param"] == next(iter(params)), error


@pytest.mark.parametrize("name", ["kind", "status", "model"])
async def test_the_jobs_page_refuses_a_nul_in_a_filter(
    client: AsyncTestClient[Any], make_person: MakePerson, name: str
) -> None:
    """The jobs page's filters are the same typed text as the operator's search (a NUL reached the
    database before)."""
    client.cookies.clear()
    await sign_in(client, (await make_person()).email)
    answer = await client.get("/console/jobs", params={name: "image\x00"})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == name, answer.text
    assert (await client.get("/console/jobs", params={name: ""})).status_code == 200


async def test_an_invitation_names_its_account_by_name(
    operator: AsyncTestClient[Any], sessionmaker: SessionMaker
) -> None:
    account = await new_account(sessionmaker, "inv")
    page = await operator.get("/console/operator", params={"q": account.name})
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    answer = await operator.post(
        "/console/operator/users",
        data={
            "csrf": csrf_of(page.text),
            "email": email,
            "account": account.name,
            "role": "member",
            "password": PASSWORD,
        },
    )
    assert answer.status_code == 200 and "can sign in now" in answer.text
    async with sessionmaker() as session:
        invited = await users.find_user(session, email)
    assert invited is not None and invited.account_id == account.id


async def test_after_moving_money_the_page_shows_that_account(
    operator: AsyncTestClient[Any], sessionmaker: SessionMaker
) -> None:
    account = await new_account(sessionmaker, "zz")  # past the first page
    page = await operator.get("/console/operator")
    answer = await operator.post(
        f"/console/operator/accounts/{account.id}/money",
        data={"csrf": csrf_of(page.text), "amount": "3.25", "kind": "topup"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == f"/console/operator?q={account.id}"
    shown = await operator.get(answer.headers["location"])
    assert listed(shown.text) == [account.name] and "$3.25" in shown.text
