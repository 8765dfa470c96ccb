"""The `x-heytoken-overhead-ms` header and GET /metrics."""

from __future__ import annotations

import time
from typing import Any

from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from app.api.main import create_app
from app.core.settings import Settings
from tests.conftest import AddChannel, Tenant, unique_model, wait_for_model
from tests.fakes.upstream import MockUpstream, Reply, default_stream

CHAT = "/v1/chat/completions"
HEADER = "x-heytoken-overhead-ms"


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def value(text: str, name: str, **labels: str) -> float:
    found = [v for n, ls, v in samples(text) if n == name and all(ls.get(k) == want for k, want in labels.items())]
    assert found, f"no sample {name}{labels}"
    return sum(found)


async def test_overhead_header_on_local_chat_and_stream(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    body = {"model": "local-chat", "messages": [{"role": "user", "content": "hi"}]}
    plain = await client.post(CHAT, headers=tenant.headers, json=body)
    streamed = await client.post(CHAT, headers=tenant.headers, json={**body, "stream": True})
    for response in (plain, streamed):
        assert response.status_code == 200, response.text
        assert float(response.headers[HEADER]) >= 0


async def test_overhead_leaves_out_the_upstream_wait(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = unique_model("gpt")
    await add_channel(mock_upstream.base_url, [model])
    await wait_for_model(client, model)
    stall = 0.5
    mock_upstream.script(CHAT, Reply(delay_before=stall), Reply(delay_before=stall, sse=default_stream()))
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    for request in (body, {**body, "stream": True}):
        started = time.perf_counter()
        response = await client.post(CHAT, headers=tenant.headers, json=request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.text
        # The upstream stalled `stall` seconds at least, and the gateway's own time is what is left.
        assert 0 <= float(response.headers[HEADER]) <= elapsed_ms - stall * 1000


async def test_metrics_count_requests_latency_and_upstream_errors(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = unique_model("gpt")
    channel = await add_channel(mock_upstream.base_url, [model])
    await wait_for_model(client, model)
    mock_upstream.script(CHAT, Reply(status=502, json={"error": {"message": "bad gateway"}}))
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    failed = await client.post(CHAT, headers=tenant.headers, json=body)
    ok = await client.post(CHAT, headers=tenant.headers, json=body)
    local = await client.post(CHAT, headers=tenant.headers, json={**body, "model": "local-chat", "stream": True})
    assert (failed.status_code, ok.status_code, local.status_code) == (500, 200, 200)
    unknown = await client.get(f"/v1/no-such-route-{model}", headers=tenant.headers)
    assert unknown.status_code == 404 and HEADER in unknown.headers

    scrape = await client.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    route = "/v1/chat/completions"
    assert value(text, "heytoken_http_requests_total", route=route, method="POST", status="200") >= 2
    assert value(text, "heytoken_http_requests_total", route=route, method="POST", status="500") >= 1
    # Unknown paths share one label value: clients cannot grow the label set.
    assert value(text, "heytoken_http_requests_total", route="(unmatched)", method="GET", status="404") >= 1
    assert not any(model in ls.get("route", "") for _, ls, _ in samples(text))
    count = value(text, "heytoken_request_duration_seconds_count", route=route, model=model, channel=channel)
    assert count == 2
    assert value(text, "heytoken_request_duration_seconds_count", model="local-chat", channel="local") >= 1
    assert value(text, "heytoken_upstream_errors_total", channel=channel, outcome="upstream_error") == 1
    assert value(text, "heytoken_time_to_first_token_seconds_count", model="local-chat") >= 1
    assert value(text, "heytoken_overhead_seconds_count", route=route) >= 3
    assert value(text, "heytoken_job_log_pending") >= 0
    assert value(text, "heytoken_jobs", kind="video", status="queued") >= 0
    assert value(text, "process_resident_memory_bytes") > 0


async def test_metrics_token_and_switching_it_all_off(settings: Settings, tenant: Tenant) -> None:
    guarded = settings.model_copy(update={"metrics_token": SecretStr("scrape-me")})
    async with AsyncTestClient(app=create_app(guarded), timeout=30) as test_client:
        assert (await test_client.get("/metrics")).status_code == 401
        wrong = await test_client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "invalid_api_key"
        right = await test_client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert right.status_code == 200

    off = settings.model_copy(update={"metrics_enabled": False, "overhead_header": False})
    async with AsyncTestClient(app=create_app(off), timeout=30) as test_client:
        assert (await test_client.get("/metrics")).status_code == 404
        body = {"model": "local-chat", "messages": [{"role": "user", "content": "hi"}]}
        response = await test_client.post(CHAT, headers=tenant.headers, json=body)
        assert response.status_code == 200
        assert HEADER not in response.headers


async def test_production_serves_metrics_only_with_a_token(settings: Settings, tenant: Tenant) -> None:
    production = settings.model_copy(update={"env": "production", "metrics_token": None})
    async with AsyncTestClient(app=create_app(production), timeout=30) as test_client:
        assert (await test_client.get("/metrics")).status_code == 404
        assert (await test_client.get("/healthz")).status_code == 200

    guarded = production.model_copy(update={"metrics_token": SecretStr("scrape-me")})
    async with AsyncTestClient(app=create_app(guarded), timeout=30) as test_client:
        assert (await test_client.get("/metrics")).status_code == 401
        right = await test_client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert right.status_code == 200 and "heytoken_http_requests_total" in right.text

    # Development and test keep an open /metrics (the suite's own settings are env=test).
    async with AsyncTestClient(app=create_app(settings.model_copy(update={"env": "development"})), timeout=30) as c:
        assert (await c.get("/metrics")).status_code == 200
