"""Timings of the owner tasks and the counters they keep."""

from __future__ import annotations

from dataclasses import dataclass

from mxproxy.callcache import DEFAULT_CALL_TTL
from mxproxy.config import Config

DEFAULT_DIRECTORY_TTL = 60.0
DEFAULT_CALL_LOG_TTL = 30.0


@dataclass(frozen=True)
class SessionOptions:
    """Timings of the owner tasks; from ``[mx]`` (see ``from_config``) or given directly in tests."""

    reconnect_min: float = 1.0  # first delay after a drop; doubles per failed attempt
    reconnect_max: float = 60.0  # cap of the exponential backoff
    jitter: float = 0.2  # each delay is multiplied by uniform(1 - jitter, 1)
    forced_logout_delay: float = 300.0  # wait after the MX forced us out (or until a new sign-in)
    call_ttl: float = DEFAULT_CALL_TTL
    directory_ttl: float = DEFAULT_DIRECTORY_TTL
    call_log_ttl: float = DEFAULT_CALL_LOG_TTL
    resume_concurrency: int = 100  # MX logins running at once (start-up resume and reconnect storms)
    resume_wait: float = 5.0  # how long start() waits for first attempts before returning anyway
    sign_in_wait: float | None = None  # how long a joining sign-in waits (None: derived)
    stop_timeout: float = 5.0  # bound on the <logout/> round at stop()

    @classmethod
    def from_config(cls, config: Config) -> "SessionOptions":
        """The ``[mx]`` session timings (typed and checked by the config parser)."""
        mx = config.mx
        attempt = mx.connect_timeout + 2 * mx.response_timeout + 1.0
        return cls(
            reconnect_min=mx.reconnect_min,
            reconnect_max=mx.reconnect_max,
            forced_logout_delay=mx.forced_logout_delay,
            call_ttl=mx.call_info_ttl,
            directory_ttl=mx.directory_ttl,
            call_log_ttl=mx.call_log_ttl,
            resume_concurrency=mx.resume_concurrency,
            resume_wait=mx.resume_wait,
            sign_in_wait=mx.sign_in_wait if mx.sign_in_wait is not None else attempt,
        )


@dataclass
class SessionStats:
    """Counters for metrics; ``live_sessions`` is a gauge kept up to date by the manager."""

    logins_ok: int = 0
    logins_failed: int = 0  # the MX rejected the credentials
    login_errors: int = 0  # connect/TLS/protocol/timeout errors while logging in
    mx_timeouts: int = 0  # MXTimeout seen while logging in (the API may add its own)
    reconnects: int = 0  # successful re-logins after a session ended
    reconnect_failures: int = 0
    sessions_ended: int = 0
    forced_logouts: int = 0
    needs_reauth: int = 0
    monitor_failures: int = 0
    events: int = 0
    listener_errors: int = 0
    live_sessions: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)
