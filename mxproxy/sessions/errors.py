"""Why a user's session cannot be borrowed right now; the API maps these in ``api/errors.py``."""

from __future__ import annotations


class SessionUnavailable(Exception):
    """The user is known but their MX session is (re)connecting: the API answers 503 + Retry-After."""

    def __init__(self, retry_after: int, message: str = "mx connection is reconnecting") -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
        self.message = message


class NotSignedIn(Exception):
    """No such user, logged out, or their stored password was rejected: the API answers 401."""

    def __init__(self, message: str = "active mx connection unavailable") -> None:
        super().__init__(message)
        self.message = message


class ServedElsewhere(Exception):
    """In a cluster, another instance owns (or is about to own) the user: the API forwards the
    request there."""

    def __init__(self, instance: str, url: str) -> None:
        super().__init__(f"user is served by instance {instance}")
        self.instance = instance
        self.url = url
