"""The vendors' signatures, checked against independent implementations: Replicate's Standard Webhooks
signature as the `standardwebhooks` library makes it, fal's ED25519 as `cryptography` makes it, and
Kling's JWT with its header, claims and HS256 signature taken apart by hand."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from standardwebhooks import Webhook

from app.jobs.callbacks import job_of_token, job_token
from app.providers.kling import jwt_token
from app.providers.signatures import verify_fal, verify_standard_webhook
from tests.fakes.media_vendors import REPLICATE_SECRET

BODY = b'{"id":"p1","status":"succeeded"}'


def test_replicate_signature_as_standard_webhooks_signs_it() -> None:
    now = dt.datetime.now(dt.UTC)
    signature = Webhook(REPLICATE_SECRET).sign("msg_1", now, BODY.decode())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}
    assert verify_standard_webhook(REPLICATE_SECRET, headers, BODY, now=time.time(), max_age=300)
    # Another body, another secret, or an old timestamp: refused.
    assert not verify_standard_webhook(REPLICATE_SECRET, headers, BODY + b" ", now=time.time(), max_age=300)
    other = "whsec_" + base64.b64encode(b"another-secret-of-thirty-two-byt").decode()
    assert not verify_standard_webhook(other, headers, BODY, now=time.time(), max_age=300)
    assert not verify_standard_webhook(REPLICATE_SECRET, headers, BODY, now=time.time() + 301, max_age=300)


def test_fal_signature_with_any_of_the_jwks_keys() -> None:
    key, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    now = str(int(time.time()))
    headers = {"x-fal-webhook-request-id": "r1", "x-fal-webhook-user-id": "u1", "x-fal-webhook-timestamp": now}
    message = f"r1\nu1\n{now}\n{hashlib.sha256(BODY).hexdigest()}".encode()
    headers["x-fal-webhook-signature"] = key.sign(message).hex()
    public = [k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) for k in (stranger, key)]
    assert verify_fal(public, headers, BODY, now=time.time(), max_age=300)
    assert not verify_fal(public[:1], headers, BODY, now=time.time(), max_age=300)
    assert not verify_fal(public, {**headers, "x-fal-webhook-user-id": "u2"}, BODY, now=time.time(), max_age=300)
    assert not verify_fal(public, headers, BODY, now=time.time() - 400, max_age=300)


def test_kling_jwt_is_hs256_with_the_access_key_as_issuer() -> None:
    token = jwt_token("ak", "sk", now=1_800_000_000)
    header, payload, signature = token.split(".")
    pad = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))  # noqa: E731
    assert json.loads(pad(header)) == {"alg": "HS256", "typ": "JWT"}
    assert json.loads(pad(payload)) == {"iss": "ak", "exp": 1_800_001_800, "nbf": 1_799_999_995}
    assert pad(signature) == hmac.new(b"sk", f"{header}.{payload}".encode(), hashlib.sha256).digest()


def test_callback_tokens_name_their_job_and_vendor_only() -> None:
    token = job_token(b"secret", "fal", "video_123")
    assert job_of_token(b"secret", "fal", token) == "video_123"
    assert job_of_token(b"secret", "replicate", token) is None
    assert job_of_token(b"other", "fal", token) is None
    assert job_of_token(b"secret", "fal", token.replace("video_123", "video_124")) is None
