"""Console fixtures: people with a password, signed in through the sign-in form."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app.accounts import service as accounts
from app.console import users
from app.console.models import Role
from app.core.db import SessionMaker, unit_of_work
from tests.console.browser import (  # noqa: F401  (fixtures of the browser tests)
    PASSWORD,
    admin,
    browser,
    console_live,
    console_settings,
    console_worker,
    stripe_mock,
)

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Person:
    email: str
    account_id: str
    account_name: str
    password: str = PASSWORD


MakePerson = Callable[..., Awaitable[Person]]


@pytest.fixture(scope="session")
def make_person(sessionmaker: SessionMaker) -> MakePerson:
    async def make(role: Role = Role.OWNER) -> Person:
        async with unit_of_work(sessionmaker) as session:
            account = await accounts.create_account(session, f"acct-{uuid.uuid4().hex[:8]}")
            email = f"{uuid.uuid4().hex[:8]}@example.com"
            await users.create_user(session, email, PASSWORD, account=account, role=role)
        return Person(email, account.id, account.name)

    return make


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def sign_in(client: AsyncTestClient[Any], email: str, password: str = PASSWORD) -> Any:
    page = await client.get("/console/sign-in")
    return await client.post(
        "/console/sign-in", data={"email": email, "password": password, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )  # fmt: skip


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)
