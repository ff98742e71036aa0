"""Schemathesis CLI hook: a fresh bearer token for the run against ``mxproxy demo``.

The fuzzer signs the user out (``DELETE /auth``) and spends the sign-in limits of its client
address with bad credentials (``[signin]``: 429 from then on); a static ``-H "Authorization: …"``
would then leave most of the run answering 401. This hook signs the README's demo user in through
``POST /auth`` — from another loopback address (127.0.0.2), which the fuzzer's throttling does not
touch — and refreshes the token every few seconds, so every operation keeps being exercised
signed in.

    SCHEMATHESIS_HOOKS=bench.schemathesis_auth MXPROXY_URL=http://127.0.0.1:8000 \\
        .venv/bin/schemathesis run "$MXPROXY_URL/openapi.json" --checks all ...

(docs/architecture.md, "OpenAPI": the command and its result.)
"""

from __future__ import annotations

import os
from typing import Any

import requests
import schemathesis

from mxproxy.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_PASSWORD, DEMO_USERNAME

BASE_URL = os.environ.get("MXPROXY_URL", "http://127.0.0.1:8000").rstrip("/")
REFRESH_SECONDS = 3
SIGN_IN_FROM = os.environ.get("MXPROXY_SIGN_IN_FROM", "127.0.0.2")


class _FromAddress(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (SIGN_IN_FROM, 0)
        super().init_poolmanager(*args, **kwargs)


_signer = requests.Session()
_signer.mount("http://", _FromAddress())


@schemathesis.auth(refresh_interval=REFRESH_SECONDS)
class DemoSignIn:
    def get(self, case: Any, ctx: Any) -> str:
        r = _signer.post(f"{BASE_URL}/auth", auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET), timeout=30,
                          data={"username": DEMO_USERNAME, "password": DEMO_PASSWORD, "grant_type": "password"})
        r.raise_for_status()
        return str(r.json()["access_token"])

    def set(self, case: Any, data: str, ctx: Any) -> None:
        security = case.operation.definition.raw.get("security") or []
        if any("bearer" in requirement for requirement in security):  # not on the client-Basic routes
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
