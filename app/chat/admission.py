"""Admission of synchronous requests: bound the worst case, reserve tokens, then one Gate call.

Runs after the edge decoded the request and before the upstream call; it is the request's only Redis
round trip (two when a request without an output cap must be fitted to a low balance) and makes no
database round trip (prices come from the in-process catalog).

The hold bounds the charge by construction: the output cap it is sized for is the one every adapter
sends upstream (`ChatContext.cap`), and the prompt bound covers every byte of the request body
(app.core.tokens.request_token_bound). Whatever an upstream bills beyond it is the house's loss
(app.jobs.capture), never the account's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from app.accounts.auth import Principal
from app.billing.limits.service import Admission
from app.channels.routing import resolve
from app.chat.schemas import output_cap
from app.core.errors import InsufficientQuota
from app.core.money import ModelPrice, affordable_output, token_cost
from app.core.tokens import estimate_prompt_tokens, input_token_bound, input_token_estimate, request_token_bound

if TYPE_CHECKING:
    from app.billing.limits.service import Gate
    from app.channels.catalog import CatalogCache
    from app.chat.service import ChatContext
    from app.core.settings import Settings


class AdmissionResources(Protocol):
    """What admission uses of the process's resources (app/api/resources.py passes them in)."""

    settings: Settings
    catalog: CatalogCache
    gate: Gate

    async def load_balance(self, account_id: str) -> int: ...


@dataclass(slots=True)
class Admitted:
    admission: Admission
    price: ModelPrice


async def admit_chat(res: AdmissionResources, ctx: ChatContext, body_bytes: int) -> Admitted:
    """Admit a chat request and decide its output cap (`ctx.cap`), which the adapters send upstream."""
    request, principal, settings = ctx.request, ctx.principal, res.settings
    catalog = res.catalog.current
    resolve(catalog, request.model)
    price = catalog.price_for(request.model)
    thinking = settings.thinking_budget_tokens if request.reasoning else 0
    answer = request.client_cap or price.max_output_tokens or settings.default_max_output_tokens
    prompt = request_token_bound(body_bytes, request.messages)
    estimate = estimate_prompt_tokens(ctx.body["messages"])

    def sized(cap: int) -> tuple[int, int]:
        """(tokens to reserve, hold) for an output cap; the cap goes into the context for the adapters."""
        ctx.cap, ctx.thinking = cap, thinking
        out = cap * request.n
        return estimate + out, 0 if price.is_free else token_cost(price, prompt, out, 0, principal.multiplier_bp)

    # The Gate is awaited here, not in a helper coroutine: one frame less for every resumption.
    tokens, hold = sized(output_cap(request, answer, thinking))
    try:
        admission = await res.gate.admit(
            principal, ctx.job_id, tokens=tokens, lease=request.stream, hold=hold, load_balance=res.load_balance
        )
    except InsufficientQuota as exc:
        if request.client_cap is not None or exc.available is None:
            raise
        # No cap from the client: send the most the balance affords, if that is still a useful answer.
        afford = affordable_output(price, prompt, exc.available, principal.multiplier_bp)
        fitted = None if afford is None else afford // request.n - thinking
        if fitted is None or fitted < settings.min_useful_output_tokens:
            raise
        tokens, hold = sized(output_cap(request, min(fitted, answer), thinking))
        admission = await res.gate.admit(
            principal, ctx.job_id, tokens=tokens, lease=request.stream, hold=hold, load_balance=res.load_balance
        )
    return Admitted(admission, price)


async def admit_embeddings(
    res: AdmissionResources, principal: Principal, job_id: str, model: str, raw_input: Any
) -> Admitted:
    catalog = res.catalog.current
    resolve(catalog, model)
    price = catalog.price_for(model)
    hold = 0 if price.is_free else token_cost(price, input_token_bound(raw_input), 0, 0, principal.multiplier_bp)
    admission = await res.gate.admit(
        principal, job_id, tokens=input_token_estimate(raw_input), hold=hold, load_balance=res.load_balance
    )
    return Admitted(admission, price)
