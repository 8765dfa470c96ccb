"""Media prices by vendor shape: per video second by resolution (`1080p`) as well as by size, and a
flat per-request price, held before anything is submitted."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from app.core.money import ModelPrice, image_cost, video_cost
from tests.billing.test_billing_api import topup
from tests.conftest import ADMIN_HEADERS, AddChannel, unique_model, wait_for_model


def test_video_second_by_resolution_and_flat_per_request() -> None:
    price = ModelPrice(per_video_second=100, per_video_second_by_size={"1080p": 300, "1792x1024": 500}, per_request=7)
    assert video_cost(price, 4, "1792x1024") == 4 * 500 + 7  # the size wins over its resolution
    assert video_cost(price, 4, "1024x1792") == 4 * 300 + 7  # 1080p
    assert video_cost(price, 4, "1280x720") == 4 * 100 + 7
    assert image_cost(ModelPrice(per_request=50_000), 1, "1024x1024", None) == 50_000
    assert image_cost(ModelPrice(per_image={"default": 10}, per_request=5), 3, None, None, 20_000) == 70
    assert not ModelPrice(per_request=1).is_free


async def test_a_per_request_price_is_held_before_the_job_is_submitted(
    client: AsyncTestClient[Any], make_tenant: Any, add_channel: AddChannel
) -> None:
    model = unique_model("veo")
    price = {"per_video_second_by_size": {"720p": 150_000}, "per_video_second": 400_000, "per_request": 20_000}
    put = await client.put(f"/admin/prices/{model}", headers=ADMIN_HEADERS, json=price)
    assert put.status_code == 200 and put.json()["per_request"] == 20_000, put.text
    # No worker runs here: the job stays queued and the upstream (a closed port) is never called.
    await add_channel("http://127.0.0.1:9/v1beta", [model], provider="gemini", price=False)
    await wait_for_model(client, model)
    tenant = await make_tenant()
    await topup(client, tenant, 1_000_000)
    body = {"model": model, "prompt": "a cat", "seconds": "4", "size": "1280x720"}
    created = await client.post("/v1/videos", headers=tenant.headers, json=body)
    assert created.status_code == 200, created.text
    job = (await client.get(f"/v1/jobs/{created.json()['id']}", headers=tenant.headers)).json()
    assert job["billing"]["hold"] == 4 * 150_000 + 20_000
