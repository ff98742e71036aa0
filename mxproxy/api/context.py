"""Everything a request handler needs, gathered in one object stored on ``app.state.ctx``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mxproxy.api.events import StreamHub
    from mxproxy.api.forwarding import Forwarder
    from mxproxy.auth.azure import AzureADValidator
    from mxproxy.auth.signin_limits import SignInLimiter
    from mxproxy.auth.tokens import TokenService
    from mxproxy.config import Config
    from mxproxy.events.bus import EventBus
    from mxproxy.metrics import Metrics
    from mxproxy.provisioning import Provisioner
    from mxproxy.push.topics import PushTopics
    from mxproxy.sessions import SessionManager
    from mxproxy.store.base import Store


@dataclass
class ApiContext:
    config: Config
    tokens: TokenService
    azure: AzureADValidator | None
    provisioner: Provisioner
    sessions: SessionManager
    store: Store
    push_topics: PushTopics
    metrics: Metrics | None = None  # None in tests that build an app without a server
    signin_limits: SignInLimiter | None = None  # None: [signin] enabled = false
    forwarder: Forwarder | None = None  # cluster mode: requests of users owned by a peer go there
    events: EventBus | None = None  # the normalised event stream (ProxyServer.events)
    streams: StreamHub | None = None  # [sse] enabled: the open GET /events streams (create_app makes it)
