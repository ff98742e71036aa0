"""Signatures the Standard Webhooks verifier accepts, and only for the exact body and secret."""

from __future__ import annotations

import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from mxproxy.webhooks.signer import Signer, new_secret


def test_a_signed_body_verifies_with_the_secret_and_fails_when_changed() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and secret != new_secret()
    body = '{"id":1,"type":"call.ringing","data":{"name":"Пётр"}}'.encode()
    headers = Signer(secret).headers("msg_1", time.time(), body)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert Webhook(secret).verify(body, headers)["type"] == "call.ringing"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"1", b"2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, {**headers, "webhook-id": "msg_2"})
