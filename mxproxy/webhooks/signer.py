"""Standard Webhooks signatures (https://www.standardwebhooks.com) through the
``standardwebhooks`` package: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

The secret is ``whsec_`` + base64 of 32 random bytes, the form the spec's verifiers take as is.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timezone

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


class Signer:
    """Signs bodies for one endpoint (one secret)."""

    __slots__ = ("_webhook",)

    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)

    def headers(self, message_id: str, timestamp: float, body: bytes) -> dict[str, str]:
        """The three headers of one attempt (``timestamp``: Unix seconds, now)."""
        at = datetime.fromtimestamp(int(timestamp), tz=timezone.utc)
        signature = self._webhook.sign(message_id, at, body.decode("utf-8"))
        return {"webhook-id": message_id, "webhook-timestamp": str(int(timestamp)), "webhook-signature": signature}


__all__ = ["SECRET_PREFIX", "Signer", "new_secret"]
