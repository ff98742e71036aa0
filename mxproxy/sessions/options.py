"""Timings of the owner tasks and the counters they keep."""

from __future__ import annotations

from dataclasses import dataclass

from mxproxy.callcache import DEFAULT_CALL_TTL
from mxproxy.config import Config, ConfigError, option_reader

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
        """``[mx] reconnectMin, reconnectMax, forcedLogoutDelay, callInfoTTL, directoryTTL,
        callLogTTL, resumeConcurrency, resumeWait, signInWait`` (Go durations / integers)."""
        mx = option_reader(config.mx.options or {}, "mx")
        attempt = config.mx.connect_timeout + 2 * config.mx.response_timeout + 1.0
        options = cls(
            reconnect_min=mx.duration("reconnectMin", 1.0),
            reconnect_max=mx.duration("reconnectMax", 60.0),
            forced_logout_delay=mx.duration("forcedLogoutDelay", 300.0),
            call_ttl=mx.duration("callInfoTTL", DEFAULT_CALL_TTL),
            directory_ttl=mx.duration("directoryTTL", DEFAULT_DIRECTORY_TTL),
            call_log_ttl=mx.duration("callLogTTL", DEFAULT_CALL_LOG_TTL),
            resume_concurrency=mx.integer("resumeConcurrency", 100, minimum=1),
            resume_wait=mx.duration("resumeWait", 5.0),
            sign_in_wait=mx.duration("signInWait", attempt),
        )
        if options.reconnect_max < options.reconnect_min:
            raise ConfigError("mx.reconnectMax: must not be shorter than mx.reconnectMin")
        return options


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
