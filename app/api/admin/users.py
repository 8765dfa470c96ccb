"""Admin API: console users (app/console). POST /admin/users invites one; GET lists them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post
from litestar.params import FromQuery, JSONBody

from app.accounts import service as accounts
from app.api.api_docs import docs
from app.api.deps import resources_of
from app.api.lists import list_page
from app.console import users
from app.console.models import ConsoleUser, Role
from app.core.db import to_unix, unit_of_work
from app.core.edge import NO_NUL, Name
from app.core.params import IdQuery, PageLimit

Email = Annotated[str, msgspec.Meta(max_length=320, pattern=NO_NUL)]
Password = Annotated[str, msgspec.Meta(max_length=users.MAX_PASSWORD)]


class UserCreateBody(msgspec.Struct, kw_only=True):
    email: Email
    password: Password
    account: Name | None = None
    """The account (name or id); none for an operator."""
    role: Literal["owner", "member", "operator"] = "owner"


class UserObject(msgspec.Struct, kw_only=True):
    object: Literal["console.user"]
    id: str
    email: str
    role: str
    account_id: str | None
    created_at: int | None


class UserList(msgspec.Struct, kw_only=True):
    object: Literal["list"]
    data: list[UserObject]
    has_more: bool
    first_id: str | None
    last_id: str | None


def user_public(user: ConsoleUser) -> dict[str, Any]:
    return {
        "object": "console.user",
        "id": user.id,
        "email": user.email,
        "role": user.role,
        "account_id": user.account_id,
        "created_at": to_unix(user.created_at),
    }


@post("/users", status_code=201, operation_id="adminCreateUser", responses=docs(UserObject, 404, 409, status=201))
async def create_user(request: Request[Any, Any, Any], data: JSONBody[UserCreateBody]) -> dict[str, Any]:
    async with unit_of_work(resources_of(request).sessionmaker) as session:
        account = await accounts.get_account(session, data.account) if data.account else None
        user = await users.create_user(session, data.email, data.password, account=account, role=Role(data.role))
    return user_public(user)


@get("/users", operation_id="adminListUsers", responses=docs(UserList, 404))
async def list_users(
    request: Request[Any, Any, Any],
    account: FromQuery[Name | None] = None,
    limit: PageLimit = 100,
    after: IdQuery = None,
) -> dict[str, Any]:
    """People in the order they were made, `limit` a page; the next page is `after=<last_id>`."""
    async with resources_of(request).sessionmaker() as session:
        owner = await accounts.get_account(session, account) if account else None
        rows = await users.list_users(session, owner.id if owner else None, after=after, limit=limit + 1)
    return list_page([user_public(u) for u in rows[:limit]], has_more=len(rows) > limit)


HANDLERS = [create_user, list_users]
