"""The console in headless Chromium against the Procfile's processes: sign in, keys with the OpenAI
SDK, redeem, Stripe Checkout (mock), jobs, gallery, webhook redelivery. Screenshots of each page go
to docs/console/; a failing test leaves one in var/console-failures/."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.console.browser import DESKTOP, new_person, save_failure, shoot, sign_in
from tests.support import poll
from tests.webhooks.support import Receiver, Reply, verify_both

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    tab.on("dialog", lambda dialog: dialog.accept())
    yield tab
    save_failure(request, tab)
    context.close()


def money(text: str) -> float:
    return float(re.sub(r"[^0-9.\-]", "", text))


def test_sign_in_create_key_use_it_then_revoke_it(page, console_live, admin):
    person = new_person(admin)
    page.goto(f"{console_live.url}/")  # the docs' "dashboard": signed out, the sign-in page
    page.wait_for_url("**/console/sign-in")
    shoot(page, "sign-in")
    sign_in(page, console_live.url, person["email"])
    page.wait_for_url("**/console/keys")

    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").inner_text().strip()
    assert key.startswith("sk-ht-")
    shoot(page, "keys")

    client = openai.OpenAI(api_key=key, base_url=f"{console_live.url}/v1", max_retries=0)
    reply = client.chat.completions.create(model="local-chat", messages=[{"role": "user", "content": "Hello!"}])
    assert reply.choices[0].message.content

    def charted() -> bool:
        page.goto(f"{console_live.url}/console/usage")
        return "local-chat" in page.locator("#by-model").inner_text()

    poll(charted, timeout=10, interval=0.3, message="the chat request on the usage page")
    assert "local-chat" in page.locator("#latency").inner_text()
    assert page.locator("svg.chart rect").count() >= 2  # requests and tokens (local-chat is free)
    shoot(page, "usage")

    page.goto(f"{console_live.url}/console/keys")  # shown once: gone on the next visit
    assert page.locator("#new-key").count() == 0
    row = page.locator("tr", has_text="laptop")
    row.get_by_role("button", name="Revoke").click()
    page.wait_for_url("**/console/keys")
    assert "revoked" in page.locator("tr", has_text="laptop").inner_text()
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="local-chat", messages=[{"role": "user", "content": "Hello?"}])


def test_redeem_a_code_and_see_the_balance_change(page, console_live, admin):
    person = new_person(admin)
    code = admin.post("/admin/codes", json={"amount_usd": "7.25"}).json()["data"][0]["code"]
    sign_in(page, console_live.url, person["email"])
    page.goto(f"{console_live.url}/console/billing")
    before = money(page.locator("#balance").inner_text())
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Redeem").click()
    page.wait_for_url("**/console/billing")
    assert money(page.locator("#balance").inner_text()) == before + 7.25
    assert "redemption" in page.locator("#ledger").inner_text()


def test_stripe_checkout_credits_exactly_once(page, console_live, admin, stripe_mock):
    person = new_person(admin)
    sign_in(page, console_live.url, person["email"])
    page.goto(f"{console_live.url}/console/billing")
    page.get_by_label("Amount (USD)").fill("20")
    page.get_by_role("button", name="Pay with Stripe").click()
    page.wait_for_url(f"{stripe_mock.url}/c/*")
    assert "20.00" in page.locator("#total").inner_text()
    answers_before = len(stripe_mock.webhook_answers)
    page.get_by_role("button", name="Pay").click()  # the mock sends the signed event twice
    page.wait_for_url("**/console/billing?checkout=success")
    assert stripe_mock.webhook_answers[answers_before:] == [200, 200]
    page.reload()
    assert money(page.locator("#balance").inner_text()) == 20.0
    ledger = page.locator("#ledger tbody tr")
    assert ledger.count() == 1
    assert "Stripe Checkout" in ledger.first.inner_text()
    account = admin.get(f"/admin/accounts/{person['account']}").json()
    assert account["balance"] == 20_000_000
    shoot(page, "billing")


def test_playground_gallery_and_webhook_redelivery(page, console_live, console_worker, admin):
    person = new_person(admin)
    sign_in(page, console_live.url, person["email"])
    receiver = Receiver().start()
    receiver.default = Reply(status=500, body=b"not today")
    try:
        page.goto(f"{console_live.url}/console/webhooks")
        page.get_by_label("URL").fill(receiver.url())
        page.get_by_role("button", name="Add endpoint").click()
        page.wait_for_url("**/console/webhooks")

        page.goto(f"{console_live.url}/console/playground")
        page.get_by_role("button", name="Create a playground key").click()
        page.wait_for_url("**/console/playground/key")
        assert "Using this tab's playground key" in page.locator("#pg-key-state").inner_text()
        for form, model in (("#pg-chat", "local-chat"), ("#pg-image", "local-image"), ("#pg-video", "local-video")):
            page.locator(f"{form} input[name=model]").fill(model)
        page.get_by_role("button", name="Send").click()
        page.wait_for_selector("#pg-chat-out[data-done]")
        assert page.locator("#pg-chat-out").inner_text().strip()
        page.get_by_role("button", name="Generate image").click()
        page.wait_for_selector("#pg-image-out img")
        page.get_by_role("button", name="Generate video").click()
        page.wait_for_selector("#pg-video-out video", timeout=60_000)
        shoot(page, "playground")

        page.goto(f"{console_live.url}/console/jobs")
        kinds = page.locator("#jobs tbody").inner_text()
        assert "chat" in kinds and "image" in kinds and "video" in kinds
        shoot(page, "jobs")

        page.goto(f"{console_live.url}/console/gallery")
        assert page.locator("#gallery img").count() == 1
        video = page.locator("#gallery video")
        assert video.count() == 1
        page.wait_for_function("v => v.readyState >= 1 && !v.error", arg=video.element_handle())
        assert video.evaluate("v => v.play().then(() => true)") is True
        page.wait_for_function("v => v.currentTime > 0", arg=video.element_handle())
        shoot(page, "gallery")

        # The image's webhook failed every attempt; the receiver is fixed, then redeliver from the job page.
        page.goto(f"{console_live.url}/console/jobs?kind=image")
        page.locator("#jobs tbody a").first.click()
        page.wait_for_url("**/console/jobs/img_*")
        job_url = page.url

        def failed() -> bool:
            page.reload()
            return "failed" in page.locator(".event .badge").first.inner_text()

        poll(failed, timeout=30, interval=0.5, message="the delivery to give up")
        receiver.default = Reply(status=200, body=b"thanks")
        page.get_by_role("button", name="Redeliver").click()
        page.wait_for_url(job_url)

        def delivered() -> bool:
            page.reload()
            return "delivered" in page.locator(".event .badge").first.inner_text()

        poll(delivered, timeout=30, interval=0.5, message="the redelivery")
        answers = page.locator(".webhook-attempts tbody").inner_text()
        assert "500" in answers and "200" in answers and "thanks" in answers
        shoot(page, "job")
    finally:
        receiver.stop()


def test_webhooks_page_endpoint_secret_and_test_event(page, console_live, admin):
    person = new_person(admin)
    sign_in(page, console_live.url, person["email"])
    receiver = Receiver().start()
    try:
        page.goto(f"{console_live.url}/console/webhooks")
        page.get_by_label("URL").fill(receiver.url())
        page.get_by_label("video.in_progress").check()
        page.get_by_role("button", name="Add endpoint").click()
        page.wait_for_url("**/console/webhooks")
        assert "video.in_progress" in page.locator("#endpoints").inner_text()

        page.get_by_role("button", name="Show the secret").click()
        secret = page.locator("#signing-secret").inner_text().strip()
        assert secret.startswith("whsec_")
        page.get_by_role("button", name="Send test event").click()
        assert "Answered 200" in page.locator("#test-result").inner_text()
        event = verify_both(receiver.at("/hook")[-1], secret)
        assert event["type"] == "webhook.test"
        shoot(page, "webhooks")

        page.get_by_role("button", name="Disable").click()
        page.wait_for_url("**/console/webhooks")
        assert "disabled" in page.locator("#endpoints").inner_text()
        page.get_by_role("button", name="Rotate").click()
        rotated = page.locator("#signing-secret").inner_text().strip()
        assert rotated.startswith("whsec_") and rotated != secret
        assert "Old secret signs until" in page.content()
    finally:
        receiver.stop()


def test_operator_adds_a_channel_and_a_price_and_the_account_sees_the_model(
    browser, page, console_live, admin, mock_upstream
):
    person = new_person(admin)
    model = f"op-model-{uuid.uuid4().hex[:6]}"
    sign_in(page, console_live.url, "operator", ADMIN_TOKEN)
    page.wait_for_url("**/console/operator")
    # The verification runs when asked; its verdict is on the page (other tests of a shared database may
    # have left mismatches).
    page.get_by_role("button", name="Verify the ledger").click()
    page.wait_for_url("**/console/operator?**verify=true**")
    verdict = page.locator("#ledger-check").inner_text()
    assert "Every balance equals" in verdict or "not the sum of their ledger" in verdict
    page.get_by_label("Find an account (name or id)").fill(person["account"])
    page.get_by_role("button", name="Find").click()
    page.wait_for_url(f"**q={person['account']}**")
    row = page.locator(f"#acct-{person['account']}")
    row.get_by_label("Amount (USD)").fill("12.50")
    row.get_by_role("button", name="Apply").click()
    page.wait_for_url("**/console/operator?q=*")
    assert "$12.50" in page.locator(f"#acct-{person['account']}").inner_text()
    # The operator's pages list every account and channel of the suite's shared database (hundreds by
    # now): a full-page shot of them took over 20 s while the other database's pass shared the machine.
    shoot(page, "operator", full_page=False)

    page.goto(f"{console_live.url}/console/operator/channels")
    page.get_by_label("Name").fill(f"ch-{model}")
    page.get_by_label("Base URL").fill(mock_upstream.base_url)
    page.get_by_label("Upstream API key").fill("sk-upstream-test")
    page.get_by_label("Models (comma-separated; MODEL or MODEL=UPSTREAM)").fill(model)
    page.get_by_role("button", name="Add channel").click()
    page.wait_for_url("**/console/operator/channels")
    assert model in page.locator(f"#channel-ch-{model}").inner_text()
    shoot(page, "operator-channels", full_page=False)

    page.goto(f"{console_live.url}/console/operator/prices")
    page.get_by_label("Model").fill(model)
    page.get_by_label("Input, $ per 1M tokens").fill("1")
    page.get_by_label("Output, $ per 1M tokens").fill("2")
    page.get_by_role("button", name="Save price").click()
    page.wait_for_url("**/console/operator/prices")
    assert model in page.locator("#prices").inner_text()
    shoot(page, "operator-prices", full_page=False)

    customer = browser.new_context(viewport=DESKTOP)
    tab = customer.new_page()
    try:
        sign_in(tab, console_live.url, person["email"])
        tab.get_by_role("button", name="Create key").click()
        key = tab.locator("#new-key").inner_text().strip()
        client = openai.OpenAI(api_key=key, base_url=f"{console_live.url}/v1", max_retries=0)
        poll(lambda: model in {m.id for m in client.models.list()}, timeout=15, interval=0.2, message="the new model")
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content
        tab.goto(f"{console_live.url}/console/playground")
        assert tab.locator(f"#models option[value='{model}']").count() == 1
    finally:
        customer.close()
