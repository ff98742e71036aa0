"""Pick a connector by name: built-ins first, then the ``mxproxy.connectors`` entry points."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable

from mxproxy.config import ConfigError, MXConfig
from mxproxy.connectors.base import Connector

ConnectorFactory = Callable[[MXConfig], Connector]

_BUILTIN: dict[str, str] = {
    "zultys": "mxproxy.connectors.zultys:ZultysConnector",
}


def _load(target: str) -> ConnectorFactory:
    module_name, _, attr = target.partition(":")
    module = __import__(module_name, fromlist=[attr])
    return getattr(module, attr)


def available() -> list[str]:
    names = set(_BUILTIN)
    names.update(ep.name for ep in entry_points(group="mxproxy.connectors"))
    return sorted(names)


def create_connector(config: MXConfig) -> Connector:
    """Instantiate the connector named by ``[mx] connector``; unknown names fail at start."""
    name = config.connector
    if name in _BUILTIN:
        factory = _load(_BUILTIN[name])
    else:
        matches = [ep for ep in entry_points(group="mxproxy.connectors") if ep.name == name]
        if not matches:
            raise ConfigError(f"mx.connector: unknown connector {name!r} (available: {', '.join(available())})")
        factory = matches[0].load()
    connector = factory(config)
    if not isinstance(connector, Connector):
        raise ConfigError(f"mx.connector: {name!r} did not produce a Connector")
    return connector
