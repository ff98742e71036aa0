"""Pick a connector by name: built-ins first, then the ``mxproxy.connectors`` entry points."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable, Mapping

from mxproxy.config import ConfigError, MXConfig, closest
from mxproxy.connectors.base import Connector, Option

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


def _factory(name: str) -> ConnectorFactory:
    if name in _BUILTIN:
        return _load(_BUILTIN[name])
    matches = [ep for ep in entry_points(group="mxproxy.connectors") if ep.name == name]
    if not matches:
        match = closest(name, available())
        hint = f"did you mean {match!r}? " if match else ""
        raise ConfigError(f"mx.connector: unknown connector {name!r} ({hint}available: {', '.join(available())})")
    return matches[0].load()


def declared_options(name: str) -> Mapping[str, Option]:
    """The ``[mx]`` keys connector ``name`` declares (``Connector.options``)."""
    return getattr(_factory(name), "options", {}) or {}


def create_connector(config: MXConfig) -> Connector:
    """Instantiate the connector named by ``[mx] connector``; unknown names fail at start."""
    name = config.connector
    factory = _factory(name)
    connector = factory(config)
    if not isinstance(connector, Connector):
        raise ConfigError(f"mx.connector: {name!r} did not produce a Connector")
    return connector
