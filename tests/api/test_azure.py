"""``POST /auth`` with an Azure AD id_token: validated locally against a local JWKS server,
then mapped through the static table."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, AsyncIterator

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.api.conftest import README_USERNAME, ApiHarness, build_api, serve

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AUDIENCE = "b2c6e5c4-app-id"
KID = "test-kid-1"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwks(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": KID, "use": "sig", "alg": "RS256"})
    return {"keys": [jwk]}


def _id_token(key: rsa.RSAPrivateKey, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"aud": AUDIENCE, "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0", "tid": TENANT,
              "upn": README_USERNAME, "iat": now, "nbf": now, "exp": now + 600, **overrides}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})


@pytest.fixture
async def azure_api(tmp_path: Path, signing_key: rsa.RSAPrivateKey) -> AsyncIterator[ApiHarness]:
    async def keys(request: Request) -> JSONResponse:
        return JSONResponse(_jwks(signing_key))

    async with serve(Starlette(routes=[Route("/keys", keys)])) as jwks_url:
        azure = {"audience": [AUDIENCE], "tenants": [TENANT], "jwksURL": f"{jwks_url}/keys"}
        async with build_api(tmp_path, azure=azure) as harness:
            yield harness


async def test_valid_azure_token_signs_in(azure_api: ApiHarness, signing_key: rsa.RSAPrivateKey) -> None:
    r = await azure_api.client.post("/auth", headers={"Authorization": f"Bearer {_id_token(signing_key)}"})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert (await azure_api.client.get("/auth", headers=azure_api.bearer(token))).json()["ext"] == "3095"


async def test_azure_token_for_another_app_is_403(azure_api: ApiHarness, signing_key: rsa.RSAPrivateKey) -> None:
    r = await azure_api.client.post("/auth", headers={"Authorization": f"Bearer {_id_token(signing_key, aud='x')}"})
    assert r.status_code == 403


async def test_azure_keys_unreachable_is_503(tmp_path: Path, signing_key: rsa.RSAPrivateKey) -> None:
    async def broken(request: Request) -> JSONResponse:
        return JSONResponse({"error": "down"}, status_code=500)

    async with serve(Starlette(routes=[Route("/keys", broken)])) as jwks_url:
        azure = {"audience": [AUDIENCE], "tenants": [TENANT], "jwksURL": f"{jwks_url}/keys"}
        async with build_api(tmp_path, azure=azure) as api:
            r = await api.client.post("/auth", headers={"Authorization": f"Bearer {_id_token(signing_key)}"})
            assert r.status_code == 503
