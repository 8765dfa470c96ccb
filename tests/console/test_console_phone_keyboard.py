"""Every console page at 390 px wide and from the keyboard alone (tests/console/audit.py says what is
checked): the account's pages with something on each of them, an error page, the sign-in page and
the operator's pages. One signed-in phone-width tab per kind of person serves every page, so the
whole walk costs a page load per page. Signing in and creating a key happen with the keyboard only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.console.audit import audit_page, to_top
from tests.console.browser import PASSWORD, PHONE, save_failure, shoot
from tests.support import poll
from tests.webhooks.support import Receiver, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Long words are what push a phone's page sideways: names, addresses, URLs and answers as people write
# them (a hyphen is a place to break a line; an underscore or a dot is not).
KEY_NAME = "production_eu_west_nightly_embeddings_batch"
NEW_KEY_NAME = "staging_us_east_nightly_embeddings_batch_2"
HOOK_PATH = "/hooks/heytoken/production/eu-west/image-completed-events"
ANSWER = b'{"received":true,"id":"' + b"0123456789abcdef" * 8 + b'"}'
ACCOUNT_PAGES = ["keys", "billing", "usage", "jobs", "job", "gallery", "webhooks", "playground", "team", "missing"]
OPERATOR_PAGES = ["operator", "operator/channels", "operator/prices", "operator/codes"]


def keyboard_sign_in(tab: Any, base_url: str, email: str, password: str) -> None:
    """The sign-in form from the keyboard: the e-mail field has the focus as the page opens."""
    tab.goto(f"{base_url}/console/sign-in")
    tab.wait_for_function("document.activeElement && document.activeElement.name === 'email'")
    tab.keyboard.type(email)
    tab.keyboard.press("Tab")
    tab.keyboard.type(password)
    with tab.expect_navigation():
        tab.keyboard.press("Enter")
    assert "/sign-in" not in tab.url, tab.content()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    server.default = Reply(body=ANSWER)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tenant(admin: httpx.Client, console_live: Any, console_worker: Any, receiver: Receiver) -> dict[str, str]:
    """An account with something on every page: a top-up, a key, a webhook endpoint, a chat and an
    image whose webhook was delivered (the job page then shows attempts and a file)."""
    tag = uuid.uuid4().hex[:8]
    account = f"acme_{tag}_production_eu_west_subsidiary"
    email = f"firstname.lastname.{tag}@subsidiary.example-corporation.com"
    assert admin.post("/admin/accounts", json={"name": account}).status_code == 201
    user = {"account": account, "email": email, "password": PASSWORD, "role": "owner"}
    assert admin.post("/admin/users", json=user).status_code == 201
    assert admin.post(f"/admin/accounts/{account}/topups", json={"amount_usd": "5"}).status_code == 201
    answer = admin.post(f"/admin/accounts/{account}/keys", json={"name": KEY_NAME})
    assert answer.status_code == 201, answer.text
    key = answer.json()["key"]
    hooks = httpx.post(
        f"{console_live.url}/v1/webhooks/endpoints", headers={"Authorization": f"Bearer {key}"},
        json={"url": receiver.url(HOOK_PATH), "description": "the image pipeline of production-eu-west"},
    )  # fmt: skip
    assert hooks.status_code in (200, 201), hooks.text
    client = openai.OpenAI(api_key=key, base_url=f"{console_live.url}/v1", max_retries=0)
    client.chat.completions.create(model="local-chat", messages=[{"role": "user", "content": "Hello!"}])
    client.images.generate(model="local-image", prompt="A lighthouse at dusk, seen from a boat far out at sea")
    poll(lambda: receiver.at(HOOK_PATH), timeout=30, interval=0.2, message="the image's webhook")
    return user


@pytest.fixture(scope="module")
def account_tab(browser: Any, console_live: Any, tenant: dict[str, str]) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console_live.url)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    tab.on("dialog", lambda dialog: dialog.accept())
    keyboard_sign_in(tab, console_live.url, tenant["email"], PASSWORD)
    yield tab
    context.close()


@pytest.fixture(scope="module")
def operator_tab(browser: Any, console_live: Any, admin: httpx.Client) -> Iterator[Any]:
    """The operator's pages with a channel whose name, URL and models are long."""
    suffix = uuid.uuid4().hex[:6]
    channel = {
        "name": f"openai_compatible_eu_west_production_{suffix}", "provider": "openai",
        "base_url": "http://127.0.0.1:9/v1/proxies/openai-compatible/eu-west/production",
        "models": [f"phone-check-{suffix}-model-with-a-long-name=upstream-model-name-{suffix}"],
    }  # fmt: skip
    assert admin.post("/admin/channels", json=channel).status_code == 201
    context = browser.new_context(viewport=PHONE)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    keyboard_sign_in(tab, console_live.url, "operator", ADMIN_TOKEN)
    yield tab
    context.close()


@pytest.fixture
def failure_shot(request: pytest.FixtureRequest) -> Iterator[list[Any]]:
    """Tests put their tab here; a failing test leaves a screenshot of it."""
    tabs: list[Any] = []
    yield tabs
    for tab in tabs:
        save_failure(request, tab)


def account_url(tab: Any, base_url: str, page: str) -> str:
    if page == "job":  # the image's page: status history, attempts, a file, webhook attempts
        tab.goto(f"{base_url}/console/jobs?kind=image")
        return base_url + str(tab.locator("#jobs tbody a").first.get_attribute("href"))
    if page == "missing":  # an error page is a page too
        return f"{base_url}/console/jobs/img_{'0' * 24}"
    return f"{base_url}/console/{page}"


@pytest.mark.parametrize("page", ACCOUNT_PAGES)
def test_account_page_on_a_phone_from_the_keyboard(account_tab, console_live, failure_shot, page):
    failure_shot.append(account_tab)
    account_tab.goto(account_url(account_tab, console_live.url, page))
    audit_page(account_tab, page).check()
    if page == "billing":
        shoot(account_tab, "billing-phone")


@pytest.mark.parametrize("page", OPERATOR_PAGES)
def test_operator_page_on_a_phone_from_the_keyboard(operator_tab, console_live, failure_shot, page):
    failure_shot.append(operator_tab)
    operator_tab.goto(f"{console_live.url}/console/{page}")
    audit_page(operator_tab, page).check()


def test_sign_in_page_on_a_phone_from_the_keyboard(browser, console_live, failure_shot):
    context = browser.new_context(viewport=PHONE)
    try:
        tab = context.new_page()
        failure_shot.append(tab)
        tab.goto(f"{console_live.url}/console/sign-in")
        to_top(tab)  # the walk starts at the top, not at the autofocused field
        audit_page(tab, "sign-in").check()
    finally:
        context.close()


def test_create_a_key_with_the_keyboard_alone(account_tab, console_live, failure_shot):
    tab = account_tab
    failure_shot.append(tab)
    tab.goto(f"{console_live.url}/console/keys")
    tab.keyboard.press("Tab")
    assert tab.evaluate("document.activeElement.textContent") == "Skip to content"
    tab.keyboard.press("Enter")  # past the navigation: the next stop is the page's first field
    tab.keyboard.press("Tab")
    assert tab.evaluate("document.activeElement.labels[0].textContent.trim()") == "Name"
    tab.keyboard.type(NEW_KEY_NAME)
    with tab.expect_navigation():
        tab.keyboard.press("Enter")
    key = tab.locator("#new-key").inner_text().strip()
    assert key.startswith("sk-ht-")
    assert NEW_KEY_NAME in tab.locator("main table").inner_text()
    audit_page(tab, "keys, with the new key shown").check()  # its long name is in a heading now

    to_top(tab)
    tab.keyboard.press("Tab")
    tab.keyboard.press("Enter")  # the skip link, then the copy button is the first stop in <main>
    tab.keyboard.press("Tab")
    assert tab.evaluate("document.activeElement.textContent") == "Copy"
    tab.keyboard.press("Enter")
    tab.wait_for_function("document.activeElement.textContent === 'Copied'")
    assert tab.evaluate("navigator.clipboard.readText()") == key
