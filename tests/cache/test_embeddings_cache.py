"""The response cache on embeddings: a repeated request is a hit with the same vectors and usage."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from openai import AsyncOpenAI

from tests.billing.test_billing_api import topup
from tests.cache.conftest import ON, priced_model
from tests.conftest import AddChannel, Tenant
from tests.fakes.upstream import MockUpstream
from tests.support import apoll

EMBED = "/v1/embeddings"


async def test_the_same_embedding_twice_is_a_free_hit(
    client: AsyncTestClient[Any], sdk: AsyncOpenAI, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await priced_model(client, add_channel, mock_upstream)
    await topup(client, tenant, 1_000_000)
    first = await sdk.embeddings.with_raw_response.create(model=model, input=["a", "b"], extra_headers=ON)
    second = await sdk.embeddings.with_raw_response.create(model=model, input=["a", "b"], extra_headers=ON)
    other = await sdk.embeddings.with_raw_response.create(model=model, input=["a", "c"], extra_headers=ON)
    assert [r.headers["x-heytoken-cache"] for r in (first, second, other)] == ["miss", "hit", "miss"]
    assert len(mock_upstream.calls(EMBED)) == 2
    a, b = first.parse(), second.parse()
    assert [d.embedding for d in b.data] == [d.embedding for d in a.data] == [[0.25, -0.5, 0.75]] * 2
    assert (b.usage.prompt_tokens, b.usage.total_tokens) == (a.usage.prompt_tokens, a.usage.total_tokens) == (5, 5)
    cost = a.usage.model_extra["cost"] if a.usage.model_extra else None
    assert cost and b.usage.model_extra == {"cost": 0}

    job_id = second.headers["x-request-id"]

    async def row() -> dict[str, Any] | None:
        response = await client.get(f"/v1/jobs/{job_id}", headers=tenant.headers)
        return response.json() if response.status_code == 200 else None

    job = await apoll(row, message="the hit's job")
    assert job["kind"] == "embedding" and job["cache"] == {"status": "hit", "saved": cost, "unit": "usd_micros"}
    assert job["billing"]["captured"] == 0
