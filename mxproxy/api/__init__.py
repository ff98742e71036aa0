"""The public MX Proxy 2.3 API (Starlette): routes, auth, body parsing, JSON rendering."""

from mxproxy.api.context import ApiContext

__all__ = ["ApiContext", "create_app"]


def create_app(ctx: ApiContext):  # type: ignore[no-untyped-def]
    """Build the Starlette app (imported lazily so ``mxproxy.api.context`` stays light)."""
    from mxproxy.api.app import create_app as _create_app

    return _create_app(ctx)
