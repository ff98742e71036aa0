"""mxproxy: a drop-in replacement for MX Proxy 2.3."""

__version__ = "0.1.0"
SERVER_NAME = "MXProxy/2.3 (mxproxy " + __version__ + ")"
