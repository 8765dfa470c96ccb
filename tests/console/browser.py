"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, for the console's browser
tests. Playwright never downloads a browser here: it launches the system one. The web and worker
processes and the Stripe mock start once for all the browser test modules of tests/console/ (package
scope); the browser once per module, since Playwright's sync API runs an event loop that the async
tests next door would trip over."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.settings import Settings
from tests.conftest import ADMIN_HEADERS
from tests.e2e.conftest import FAST
from tests.fakes.stripe import SECRET_KEY, WEBHOOK_SECRET, MockStripe
from tests.support import LiveServer, WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS") or ROOT / "var" / "console-screenshots")
"""`CONSOLE_SCREENSHOTS=docs/console` refreshes the README's screenshots; by default a test run leaves
the tracked files alone."""
FAILURES = ROOT / "var" / "console-failures"
CHROMIUM = os.environ.get("HEYTOKEN_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery staple"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}


def shoot(page: Any, name: str, *, full_page: bool = True) -> None:
    """A screenshot of the page (for docs/console/, which the README links)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


@pytest.fixture(scope="package")
def stripe_mock() -> Iterator[MockStripe]:
    server = MockStripe().start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def console_settings(settings: Settings, stripe_mock: MockStripe) -> Settings:
    from pydantic import SecretStr

    return settings.model_copy(
        update={
            "stripe_secret_key": SecretStr(SECRET_KEY),
            "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "stripe_api_base": stripe_mock.url,
        }
    )


@pytest.fixture(scope="package")
def console_live(console_settings: Settings, stripe_mock: MockStripe) -> Iterator[LiveServer]:
    """The web process as the Procfile starts it, with Stripe pointed at the mock."""
    server = LiveServer(console_settings).start()
    stripe_mock.webhook_url = f"{server.url}/console/stripe/webhook"
    yield server
    server.stop()


@pytest.fixture(scope="package")
def console_worker(console_settings: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(console_settings, **FAST).start()
    yield process
    process.stop()


@pytest.fixture(scope="package")
def admin(console_live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console_live.url, headers=ADMIN_HEADERS, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def save_failure(request: pytest.FixtureRequest, page: Any) -> None:
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        FAILURES.mkdir(parents=True, exist_ok=True)
        path = FAILURES / f"{request.node.name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot of the failure: {path}")


def new_person(admin: httpx.Client, role: str = "owner") -> dict[str, str]:
    import uuid

    name = f"console-{uuid.uuid4().hex[:8]}"
    assert admin.post("/admin/accounts", json={"name": name}).status_code == 201
    email = f"{name}@example.com"
    answer = admin.post("/admin/users", json={"account": name, "email": email, "password": PASSWORD, "role": role})
    assert answer.status_code == 201, answer.text
    return {"account": name, "email": email, "password": PASSWORD}


def sign_in(page: Any, base_url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/console/sign-in")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/**")
    assert "/sign-in" not in page.url
