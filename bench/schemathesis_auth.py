"""Schemathesis CLI hook: a fresh bearer token for the run against ``mxproxy demo``.

The fuzzer signs the user out (``DELETE /auth``) and may trip the sign-in rate limit's failure
count with bad passwords; a static ``-H "Authorization: …"`` would then leave most of the run
answering 401. This hook signs the README's demo user in through ``POST /auth`` and refreshes
the token every few seconds, so every operation keeps being exercised signed in.

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


@schemathesis.auth(refresh_interval=REFRESH_SECONDS)
class DemoSignIn:
    def get(self, case: Any, ctx: Any) -> str:
        r = requests.post(f"{BASE_URL}/auth", auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET), timeout=30,
                          data={"username": DEMO_USERNAME, "password": DEMO_PASSWORD, "grant_type": "password"})
        r.raise_for_status()
        return str(r.json()["access_token"])

    def set(self, case: Any, data: str, ctx: Any) -> None:
        security = case.operation.definition.raw.get("security") or []
        if any("bearer" in requirement for requirement in security):  # not on the client-Basic routes
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
