"""Typed errors every connector raises; the API maps them to HTTP in one place."""

from __future__ import annotations


class MXError(Exception):
    """Base of everything that can go wrong talking to an MX backend."""


class MXConnectionFailed(MXError):
    """TCP connect failed or the socket went away (refused, reset, unreachable)."""


class MXTLSError(MXConnectionFailed):
    """The TLS handshake failed, or the certificate failed verification or pinning."""


class MXProtocolError(MXError):
    """The peer sent something that is not the protocol (bad header, malformed XML)."""


class MXAnswerTooLarge(MXProtocolError):
    """The MX's answer to a command is larger than we take (it overflowed the CSTA frame)."""


class MXLoginFailed(MXError):
    """The MX rejected the credentials; ``code`` and ``text`` are the server's own."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text or f"login failed (code {code})")
        self.code = code
        self.text = text


class MXTimeout(MXError):
    """No reply within the response timeout (the original's ``mx response timeout``)."""

    def __init__(self, message: str = "mx response timeout") -> None:
        super().__init__(message)


class CSTAError(MXError):
    """The MX answered a command with ``CSTAErrorCode``; ``text`` is the error it gave."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class MXSessionEnded(MXError):
    """The session is over: server ``Logout`` (``mode``), socket closed, or our own logout."""

    def __init__(self, mode: str, message: str | None = None) -> None:
        super().__init__(message or f"logout: {mode}")
        self.mode = mode

    @property
    def forced(self) -> bool:
        return self.mode == "forced"


class MXUnsupported(MXError):
    """The connector cannot do this operation (mapped to 501)."""

    def __init__(self, capability: str) -> None:
        super().__init__(f"not supported by this MX connector: {capability}")
        self.capability = capability


class MXBadRequest(MXError):
    """Input that cannot be sent to the MX at all (e.g. characters XML cannot carry)."""
