"""The Zultys MX connector: CSTA XML over TLS (framing, client, builders, parsers, session)."""

from mxproxy.connectors.zultys.connector import ZultysConnector
from mxproxy.connectors.zultys.session import ZultysSession

__all__ = ["ZultysConnector", "ZultysSession"]
