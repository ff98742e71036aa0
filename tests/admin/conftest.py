"""The admin app on the same real parts as the public API tests (tests/api/conftest.py's
``build_api``: SQLite store, session manager, Zultys connector, MX simulator), with metrics on.

``admin.client`` talks to the admin app, ``admin.public`` to a public app sharing the context
(both through httpx's ASGI transport); ``with_token`` builds the harness with
``[server] adminToken`` set.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest

from admin.app import create_admin_app
from mxproxy.api.app import create_app
from mxproxy.config import Config
from mxproxy.metrics import Metrics
from tests.api.conftest import ApiHarness, build_api

ADMIN_TOKEN = "admin-tok-9f8e7d6c5b4a"
STORE_KEY = "api-test-key"  # what build_api opens the store with


@dataclass
class AdminHarness:
    api: ApiHarness
    client: httpx.AsyncClient  # the admin app
    public: httpx.AsyncClient  # the public app, same context (metrics on)
    metrics: Metrics
    app: Any
    push: Any = None

    @property
    def ctx(self) -> Any:
        return self.api.ctx

    async def sign_in(self, username: str | None = None, password: str | None = None) -> str:
        """Sign in through the public app (so the request is counted in the metrics)."""
        self.api.client = self.public
        if username is None:
            return await self.api.sign_in()
        return await self.api.sign_in(username, password or "")


@contextlib.asynccontextmanager
async def build_admin(tmp_path: Path, *, token: str | None = None, push_config: Config | None = None,
                      mx: dict[str, Any] | None = None) -> AsyncIterator[AdminHarness]:
    """With ``push_config`` (a Config whose ``[voip]``/``[push]`` point at local provider peers)
    a real dispatcher from ``create_dispatcher`` is started and handed to the admin app."""
    async with build_api(tmp_path, mx=mx) as api:
        ctx = api.ctx
        # the clients below say Host: admin.test (a name the admin answers only when configured)
        config = replace(ctx.config, server=replace(ctx.config.server, admin_token=token,
                                                     admin_hosts=("admin.test",)))
        if push_config is not None:
            config = replace(config, voip=push_config.voip, push=push_config.push)
        ctx.config = config
        metrics = Metrics()
        metrics.watch_sessions(ctx.sessions)
        ctx.metrics = metrics
        push = None
        if push_config is not None:
            from mxproxy.push.dispatcher import create_dispatcher

            push = create_dispatcher(config, ctx.store, ctx.sessions, metrics=metrics)
            await push.start()
        public_app = create_app(ctx)
        app = create_admin_app(ctx, push=push)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://admin.test") as client, \
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=public_app), base_url="http://mxproxy.test") as public:
                yield AdminHarness(api=api, client=client, public=public, metrics=metrics, app=app, push=push)
        finally:
            if push is not None:
                await push.aclose()


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[AdminHarness]:
    async with build_admin(tmp_path) as harness:
        yield harness


@pytest.fixture
async def with_token(tmp_path: Path) -> AsyncIterator[AdminHarness]:
    async with build_admin(tmp_path, token=ADMIN_TOKEN) as harness:
        yield harness
