"""A video's hold covers its seconds × the price of its size, before anything is submitted."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from tests.billing.test_billing_api import topup
from tests.conftest import ADMIN_HEADERS, AddChannel, unique_model, wait_for_model

PRICE = {"per_video_second": 100_000, "per_video_second_by_size": {"1792x1024": 500_000}}


async def test_a_larger_size_holds_its_own_price(
    client: AsyncTestClient[Any], make_tenant: Any, add_channel: AddChannel
) -> None:
    model = unique_model("sized")
    put = await client.put(f"/admin/prices/{model}", headers=ADMIN_HEADERS, json=PRICE)
    assert put.status_code == 200 and put.json()["per_video_second_by_size"] == {"1792x1024": 500_000}, put.text
    # No worker runs in this test: the jobs stay queued and the upstream (a closed port) is never called.
    await add_channel("http://127.0.0.1:9/v1", [model], provider="runway", price=False)
    await wait_for_model(client, model)
    tenant = await make_tenant()
    await topup(client, tenant, 1_500_000)  # $1.50: four seconds at 1792x1024 cost $2.00

    large = {"model": model, "prompt": "a cat", "seconds": "4", "size": "1792x1024"}
    refused = await client.post("/v1/videos", headers=tenant.headers, json=large)
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "insufficient_quota"

    small = {**large, "size": "1280x720"}
    created = await client.post("/v1/videos", headers=tenant.headers, json=small)
    assert created.status_code == 200, created.text
    job = (await client.get(f"/v1/jobs/{created.json()['id']}", headers=tenant.headers)).json()
    assert job["billing"]["hold"] == 400_000  # per_video_second for any other size
