"""Admission of synchronous requests: price the worst case, reserve tokens, then one Gate call.

Runs after validation and before the upstream call; it is the request's only Redis round trip and
makes no database round trip (prices come from the in-process catalog).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.accounts.auth import Principal
from app.billing.money import ModelPrice, token_cost
from app.chat.schemas import ChatParams
from app.limits.service import Admission
from app.resources import Resources
from app.routing import resolve
from app.tokens import estimate_prompt_tokens, input_token_bound, input_token_estimate, prompt_token_bound


@dataclass(slots=True)
class Admitted:
    admission: Admission
    price: ModelPrice


async def admit_chat(res: Resources, principal: Principal, job_id: str, params: ChatParams) -> Admitted:
    catalog = res.catalog.current
    resolve(catalog, params.model)
    price = catalog.price_for(params.model)
    max_out = (params.max_tokens or price.max_output_tokens or res.settings.default_max_output_tokens) * params.n
    tokens = estimate_prompt_tokens(params.messages) + max_out
    hold = (
        0
        if price.is_free
        else token_cost(price, prompt_token_bound(params.messages), max_out, 0, principal.multiplier_bp)
    )
    admission = await res.gate.admit(
        principal, job_id, tokens=tokens, lease=params.stream, hold=hold, load_balance=res.load_balance
    )
    return Admitted(admission, price)


async def admit_embeddings(res: Resources, principal: Principal, job_id: str, model: str, raw_input: Any) -> Admitted:
    catalog = res.catalog.current
    resolve(catalog, model)
    price = catalog.price_for(model)
    hold = 0 if price.is_free else token_cost(price, input_token_bound(raw_input), 0, 0, principal.multiplier_bp)
    admission = await res.gate.admit(
        principal, job_id, tokens=input_token_estimate(raw_input), hold=hold, load_balance=res.load_balance
    )
    return Admitted(admission, price)
