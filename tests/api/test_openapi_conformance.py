"""``/openapi.json`` is a true description: schemathesis answers match it, for every operation.

Schemathesis generates requests from the served document (valid ones and deliberately invalid
ones), sends them to the real app (uvicorn on 127.0.0.1, the MX simulator behind it, a signed-in
user) and checks each answer: status documented, content type documented, documented headers
present, body valid against the response schema, never a 5xx, and invalid requests refused.
Generation is derandomized (fixed examples every run) and shrinking is off, so the test is
deterministic and bounded; failures are collected and reported with a curl command each.

"Schema-valid request accepted" is not checked here: valid requests on calls or conferences that do
not exist are refused by the MX (400, docs/compat.md A2), which no document can rule out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.errors import FailureGroup

from tests.api.conftest import ApiHarness, build_api, serve

EXAMPLES = 6  # per operation and generation mode: ~400 requests, a few seconds
CHECKS: list[Callable[..., Any]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
SIGN_OUT = {("DELETE", "/auth"), ("DELETE", "/auth/logout")}  # they end the session: run them last


def _describe(exc: BaseException) -> str:
    """The failure titles and messages, without the curl line schemathesis adds (ports differ)."""
    parts = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
    return "; ".join(" ".join(str(part).split()) for part in parts)


def _check_operation(operation: Any, mode: GenerationMode, base_url: str, failures: list[str]) -> int:
    """Send ``EXAMPLES`` generated requests of one kind; record each distinct failure. Returns the count."""
    seen: set[str] = set()
    sent = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        nonlocal sent
        try:
            response = case.call(base_url=base_url, timeout=10)
        except requests.exceptions.InvalidHeader:
            return  # a generated header HTTP cannot carry: nothing was sent, nothing to check
        sent += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, FailureGroup) as exc:
            text = _describe(exc)
            if text not in seen:  # one report per distinct failure
                seen.add(text)
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {text}\n"
                                f"    {case.as_curl_command()}")

    try:
        check()
    except Unsatisfiable:
        # nothing to make invalid (no parameters, no body): only positive cases exist
        assert mode is GenerationMode.NEGATIVE, f"{operation.method} {operation.path}: no valid request"
    return sent


def _run(doc: dict[str, Any], base_url: str, token: str) -> tuple[list[str], int]:
    """Every operation, valid then invalid requests; returns the failures and the request count."""
    # configured (not per-call) headers: the negative generator then knows the bearer token is
    # supplied and does not count "Authorization removed" as an invalid request the app let through
    config = schemathesis.Config.from_dict({"headers": {"Authorization": f"Bearer {token}"}})
    schema = schemathesis.openapi.from_dict(doc, config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda op: (op.method.upper(), op.path) in SIGN_OUT)
    failures: list[str] = []
    sent = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            sent += _check_operation(operation, mode, base_url, failures)
    return failures, sent


#: GET /events listed and served; each stream schemathesis opens ends by itself ([sse] maxDuration)
SSE = {"enabled": True, "heartbeat": "100ms", "maxDuration": "200ms", "maxPerUser": 20}


@pytest.fixture
async def sse_api(tmp_path: Path) -> AsyncIterator[ApiHarness]:
    async with build_api(tmp_path, extra={"sse": SSE}) as harness:
        yield harness


async def test_every_operation_answers_as_its_openapi_document_says(sse_api: ApiHarness) -> None:
    api = sse_api
    token = await api.sign_in()
    doc = (await api.client.get("/openapi.json")).json()
    assert "/events" in doc["paths"]
    async with serve(api.app) as base_url:
        # schemathesis is synchronous (requests): run it off the loop that serves the app and the MX
        failures, sent = await asyncio.to_thread(_run, doc, base_url, token)
    assert sent >= len(doc["paths"]) * 2
    assert not failures, f"{len(failures)} answers differ from /openapi.json:\n\n" + "\n\n".join(failures)
