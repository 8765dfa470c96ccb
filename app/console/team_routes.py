"""The account's people: everyone sees who has access; an owner invites more (owners or members)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post

from app.console import users
from app.console.models import Role
from app.console.pages import redirect, render
from app.console.resources import account_id, operations, resources, viewer
from app.core.db import unit_of_work
from app.core.errors import GatewayError

BACK = "/console/team"


@get("/team")
async def team_page(request: Request[Any, Any, Any]) -> Response[Any]:
    async with resources(request).sessionmaker() as session:
        people = await users.list_users(session, account_id(request))
    return render(request, "team.html", people=people)


@post("/team", status_code=303)
async def invite(request: Request[Any, Any, Any]) -> Response[Any]:
    if not viewer(request).is_owner:
        return redirect(request, BACK, error="Only an owner of the account invites people.")
    form = await request.form()
    role = Role.OWNER if form.get("role") == Role.OWNER else Role.MEMBER
    try:
        account = await operations(request).get_account(account_id(request))
        async with unit_of_work(resources(request).sessionmaker) as session:
            user = await users.create_user(session, str(form.get("email") or ""), str(form.get("password") or ""),
                                           account=account, role=role)  # fmt: skip
    except GatewayError as exc:
        return redirect(request, BACK, error=exc.message)
    return redirect(request, BACK, notice=f"{user.email} can sign in now, as {role.value}.")


HANDLERS = [team_page, invite]
