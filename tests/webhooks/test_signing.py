"""Signatures: the worked example of the Standard Webhooks spec, both verifiers, rotation, tampering."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
from openai import InvalidWebhookSignatureError, OpenAI
from standardwebhooks import Webhook, WebhookVerificationError

from app.webhooks.signing import new_secret, signature

SECRET = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()
EVENT_ID = "evt_01JH4Z5Q2W8K3M7N9P1R6T0V2X"
BODY = (
    b'{"id":"evt_01JH4Z5Q2W8K3M7N9P1R6T0V2X","object":"event","created_at":1758941485,'
    b'"type":"video.completed","data":{"id":"video_abc123"}}'
)
SDK = OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")


def headers(secrets: list[str], timestamp: int, body: bytes = BODY) -> dict[str, str]:
    return {
        "webhook-id": EVENT_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secrets, EVENT_ID, timestamp, body),
    }


def test_the_worked_example_signs_to_the_documented_value() -> None:
    assert SECRET == "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
    assert signature([SECRET], EVENT_ID, 1758941485, BODY) == "v1,MAdCp9iAO66l+vNYP1pwQ3Fhq9XMk9/4SR1M0o95+fE="


def test_a_fresh_signature_verifies_with_both_libraries() -> None:
    sent = headers([SECRET], int(time.time()))
    assert Webhook(SECRET).verify(BODY, sent)["type"] == "video.completed"
    event = SDK.webhooks.unwrap(BODY, sent, secret=SECRET)
    assert event.type == "video.completed" and event.data.id == "video_abc123"  # type: ignore[union-attr]


def test_secrets_are_32_random_bytes_in_whsec_form() -> None:
    first, second = new_secret(), new_secret()
    assert first != second and first.startswith("whsec_") and len(base64.b64decode(first[6:])) == 32


def test_during_a_rotation_both_secrets_verify_one_header() -> None:
    old, new = new_secret(), new_secret()
    sent = headers([new, old], int(time.time()))
    assert len(sent["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(BODY, sent)
        SDK.webhooks.verify_signature(BODY, sent, secret=secret)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, sent)


def test_a_tampered_body_fails_both_verifiers() -> None:
    sent = headers([SECRET], int(time.time()))
    tampered = BODY.replace(b"video_abc123", b"video_abc124")
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, sent)
    with pytest.raises(InvalidWebhookSignatureError):
        SDK.webhooks.unwrap(tampered, sent, secret=SECRET)


@pytest.mark.parametrize("skew", [-600, 600])
def test_an_old_or_future_timestamp_fails_both_verifiers(skew: int) -> None:
    sent = headers([SECRET], int(time.time()) + skew)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY, sent)
    with pytest.raises(InvalidWebhookSignatureError):
        SDK.webhooks.unwrap(BODY, sent, secret=SECRET)


def documented_verifier() -> Any:
    """The ten-line verifier of docs/webhooks.md, run as written (so the page stays true)."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    start = page.index("import base64, hashlib, hmac, time")
    code = page[start : page.index("```", start)]
    assert len(code.strip().splitlines()) == 10
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    return namespace["verify"]


def test_the_documented_verifier_in_plain_python_agrees() -> None:
    verify = documented_verifier()
    now = int(time.time())
    assert verify(SECRET, headers([SECRET], now), BODY)
    assert verify(SECRET, headers([new_secret(), SECRET], now), BODY)
    assert not verify(SECRET, headers([SECRET], now), BODY + b" ")
    assert not verify(SECRET, headers([SECRET], now - 600), BODY)
    assert not verify(new_secret(), headers([SECRET], now), BODY)
