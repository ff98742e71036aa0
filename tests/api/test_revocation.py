"""Token revocation across instances: two apps on one PostgreSQL database, as behind a load
balancer. A token from before a sign-out on one instance is refused by the other, and stays
refused after the user signs in again; the new token works on both."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import AsyncIterator

import asyncpg
import pytest

from mxproxy.store.postgres import PostgresStore
from tests.api.conftest import ApiHarness, build_api
from tests.store.conftest import postgres_dsn


@pytest.fixture
async def two_instances(tmp_path: Path) -> AsyncIterator[tuple[ApiHarness, ApiHarness]]:
    dsn = postgres_dsn()
    schema = f"mxproxy_revocation_{secrets.token_hex(6)}"

    def store() -> PostgresStore:
        return PostgresStore(dsn, "api-test-key", schema=schema, min_size=1, max_size=3)

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    try:
        async with build_api(tmp_path / "a", store=store()) as one, \
                build_api(tmp_path / "b", store=store(), extra={"jwt": {"revocationCheck": "0s"}}) as two:
            yield one, two
    finally:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


async def test_a_sign_out_on_one_instance_revokes_the_token_on_the_other(
        two_instances: tuple[ApiHarness, ApiHarness]) -> None:
    one, two = two_instances
    old = await one.sign_in()
    await two.sign_in()  # the user's MX session on the second instance too
    assert (await two.client.get("/auth", headers=two.bearer(old))).status_code == 200  # cached there now
    assert (await one.client.delete("/auth", headers=one.bearer(old))).status_code == 200
    refused = await two.client.get("/auth", headers=two.bearer(old))
    assert (refused.status_code, refused.json()) == (401, {"error": "invalid token: token revoked"})
    new = await one.sign_in()  # signs in again
    for instance in (one, two):
        assert (await instance.client.get("/auth", headers=instance.bearer(old))).status_code == 401
    assert (await two.client.get("/auth", headers=two.bearer(new))).status_code == 200
