"""Prometheus metrics of one proxy process, in one registry per ``Metrics`` object.

A registry per instance (not prometheus-client's global one) so tests and benchmarks can run
several proxies in one process without "duplicated timeseries" errors. Counters that already live
elsewhere as plain integers (``SessionStats``) are read at scrape time by a collector instead of
being mirrored, so the session code does not depend on prometheus-client.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from itertools import accumulate
from typing import TYPE_CHECKING, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from mxproxy.api.events import StreamHub
    from mxproxy.events.bus import EventBus
    from mxproxy.sessions import SessionManager
    from mxproxy.sessions.ownership import Ownership

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: HTTP latency buckets: the API answers in milliseconds, MX round trips in tens of them.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Push latency buckets: a warm APNs push takes a few ms, a cold one a TLS handshake more.
PUSH_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Every metric the proxy exports. Attribute names say what is counted; label names are
    fixed here so dashboards can rely on them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        # HTTP (public and admin API); ``route`` is the route template, never the raw path
        self.http = RequestMetrics()
        r.register(self.http)
        # sign-in
        self.logins = Counter("mxproxy_logins", "POST /auth sign-ins by result", ["result"], registry=r)
        # MX
        self.mx_timeouts = Counter("mxproxy_mx_timeouts", "MX requests that got no answer in time", registry=r)
        # push
        self.pushes = Counter(
            "mxproxy_pushes", "Push sends by provider, kind and result", ["provider", "kind", "result"], registry=r
        )
        self.push_latency = Histogram(
            "mxproxy_push_seconds",
            "Time from the MX event to the provider's answer",
            ["provider", "connection"],  # connection: warm | cold
            buckets=PUSH_BUCKETS,
            registry=r,
        )
        self.push_tokens_pruned = Counter(
            "mxproxy_push_tokens_pruned", "Device tokens deleted on a provider's final verdict", ["provider"], registry=r
        )
        self.push_prune_guard = Gauge(
            "mxproxy_push_prune_guard_active",
            "1 while token deletion for a topic is suspended (most of its tokens failed at once)",
            ["provider", "topic"],
            registry=r,
        )
        self.push_queue = Gauge("mxproxy_push_queue_depth", "Pushes waiting for a send slot", registry=r)
        self.push_dropped = Counter(
            "mxproxy_push_dropped", "Pushes dropped because the queue was full", ["reason"], registry=r
        )
        # cluster: requests sent to the instance owning the user
        self.forwarded_requests = Counter(
            "mxproxy_cluster_forwarded_requests", "Requests forwarded to the owning instance", ["result"], registry=r
        )
        self.forward_latency = Histogram(
            "mxproxy_cluster_forward_seconds", "Time until the owning instance's answer started",
            buckets=HTTP_BUCKETS, registry=r,
        )
        self.apns_certificate_expiry = Gauge(
            "mxproxy_apns_certificate_expiry_timestamp_seconds",
            "notAfter of each APNs certificate, Unix time",
            ["topic", "file"],
            registry=r,
        )

        # webhooks (docs/webhooks.md, "Metrics")
        self.webhook_deliveries = Counter(
            "mxproxy_webhook_deliveries", "Webhook delivery attempts by result (delivered, retry, failed = parked)",
            ["result"], registry=r,
        )
        self.webhook_latency = Histogram(
            "mxproxy_webhook_delivery_seconds", "Time from the event to the receiver's 2xx, first attempts",
            buckets=PUSH_BUCKETS, registry=r,
        )
        self.webhook_outbox_depth = Gauge(
            "mxproxy_webhook_outbox_depth", "Deliveries pending or being delivered, every endpoint", registry=r
        )
        self.webhook_disabled_endpoints = Gauge(
            "mxproxy_webhook_disabled_endpoints", "Webhook endpoints disabled (by failures or an operator)", registry=r
        )
        self.webhook_endpoints_disabled = Counter(
            "mxproxy_webhook_endpoints_disabled", "Webhook endpoints disabled after failing disableAfter times in a row",
            registry=r,
        )
        self.webhook_dropped = Counter(
            "mxproxy_webhook_dropped", "Webhook deliveries not stored (outbox queue full)", ["reason"], registry=r
        )

    def watch_cluster(self, ownership: "Ownership") -> None:
        """Export the lease rounds' counters (``ownership.stats``) and the leases held."""
        def read() -> dict[str, float]:
            values: dict[str, float] = dict(ownership.stats.__dict__)
            values["leases_held"] = len(ownership.held)
            values["members"] = len(ownership.view.members)
            return values

        self.registry.register(ClusterStatsCollector(read))

    def watch_sessions(self, sessions: "SessionManager") -> None:
        """Export ``sessions.stats`` (live sessions, reconnects, logins…) at scrape time."""
        self.registry.register(SessionStatsCollector(lambda: sessions.stats.as_dict()))

    def watch_events(self, bus: "EventBus") -> None:
        """Export the event bus's counters (``bus.stats()``) at scrape time."""
        self.registry.register(EventStatsCollector(bus.stats))

    def watch_streams(self, streams: "StreamHub") -> None:
        """Export the open ``GET /events`` streams and why streams ended (``[sse] enabled``)."""
        self.registry.register(StreamStatsCollector(streams))

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


class RequestSeries:
    """One (api, method, route, status) series: its request count, and the latency histogram of
    its (api, route), shared with the route's other statuses."""

    __slots__ = ("count", "created", "latency")

    def __init__(self, latency: "LatencyHistogram") -> None:
        self.count = 0
        self.created = time.time()
        self.latency = latency

    def observe(self, seconds: float) -> None:
        self.count += 1
        latency = self.latency
        latency.buckets[bisect_left(HTTP_BUCKETS, seconds)] += 1  # first bound >= seconds: le semantics
        latency.sum += seconds


class LatencyHistogram:
    __slots__ = ("buckets", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(HTTP_BUCKETS) + 1)  # the last one is +Inf
        self.sum = 0.0


class RequestMetrics(Collector):
    """``mxproxy_http_requests`` (counter) and ``mxproxy_http_request_seconds`` (histogram) as
    plain numbers, exported as the same families at scrape time.

    prometheus-client's labelled ``Counter.inc`` and ``Histogram.observe`` take a lock each and
    walk the buckets in Python, ~2.2 µs of every request (docs/benchmarks.md, issue 14); the event
    loop is the only writer, so plain integers do. The exposition is still prometheus-client's."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, str, str], RequestSeries] = {}
        self._latency: dict[tuple[str, str], LatencyHistogram] = {}

    def series(self, api: str, method: str, route: str, status: str) -> RequestSeries:
        """The series to ``observe`` for these labels (created on first use; callers keep it)."""
        key = (api, method, route, status)
        series = self._series.get(key)
        if series is None:
            latency = self._latency.get((api, route))
            if latency is None:
                latency = self._latency[(api, route)] = LatencyHistogram()
            series = self._series[key] = RequestSeries(latency)
        return series

    def describe(self) -> Iterable[Metric]:
        return self._families(describe=True)

    def collect(self) -> Iterable[Metric]:
        return self._families(describe=False)

    def _families(self, *, describe: bool) -> list[Metric]:
        requests = CounterMetricFamily("mxproxy_http_requests", "HTTP requests answered",
                                       labels=["api", "method", "route", "status"])
        latency = HistogramMetricFamily("mxproxy_http_request_seconds", "HTTP request latency",
                                        labels=["api", "route"])
        if not describe:
            for labels, series in list(self._series.items()):
                requests.add_metric(list(labels), series.count, created=series.created)
            bounds = [floatToGoString(b) for b in HTTP_BUCKETS] + ["+Inf"]
            for labels, histogram in list(self._latency.items()):
                cumulative = list(accumulate(histogram.buckets))
                latency.add_metric(list(labels), list(zip(bounds, cumulative)), histogram.sum)
        return [requests, latency]


class StatsCollector(Collector):
    """Reads plain counters kept elsewhere (``read()``) when Prometheus scrapes."""

    GAUGES: dict[str, str] = {}
    COUNTERS: dict[str, str] = {}
    GAUGE_PREFIX = ""
    COUNTER_PREFIX = ""

    def __init__(self, read: Callable[[], dict[str, float]]) -> None:
        self._read = read

    def describe(self) -> Iterable[Metric]:
        return self._families({})

    def collect(self) -> Iterable[Metric]:
        return self._families(self._read())

    def _families(self, values: dict[str, float]) -> list[Metric]:
        families: list[Metric] = []
        for name, text in self.GAUGES.items():
            family = GaugeMetricFamily(f"{self.GAUGE_PREFIX}{name}", text)
            if values:
                family.add_metric([], values.get(name, 0))
            families.append(family)
        for name, text in self.COUNTERS.items():
            family = CounterMetricFamily(f"{self.COUNTER_PREFIX}{name}", text)
            if values:
                family.add_metric([], values.get(name, 0))
            families.append(family)
        return families


class SessionStatsCollector(StatsCollector):
    """Reads the session manager's integer counters when Prometheus scrapes."""

    GAUGE_PREFIX = "mxproxy_mx_"
    COUNTER_PREFIX = "mxproxy_mx_session_"
    GAUGES = {"live_sessions": "MX sessions currently logged in"}
    COUNTERS = {
        "reconnects": "Successful MX re-logins after a session ended",
        "reconnect_failures": "Failed MX reconnect attempts",
        "sessions_ended": "MX sessions that ended (drop, logout by the MX, error)",
        "forced_logouts": "Sessions the MX logged out",
        "mx_timeouts": "MX timeouts while logging in",
        "logins_ok": "MX logins accepted",
        "logins_failed": "MX logins refused (bad credentials)",
        "login_errors": "MX logins that failed for connection, TLS or protocol reasons",
        "needs_reauth": "Users marked as needing to sign in again",
        "monitor_failures": "MX sessions whose event monitor could not be started",
        "events": "MX events received",
        "listener_errors": "Event listeners that raised",
    }


class ClusterStatsCollector(StatsCollector):
    """Reads the lease rounds' counters when Prometheus scrapes."""

    GAUGE_PREFIX = "mxproxy_cluster_"
    COUNTER_PREFIX = "mxproxy_cluster_"
    GAUGES = {
        "leases_held": "User leases this instance holds",
        "members": "Live instances of the cluster, this one included",
        "last_round_seconds": "Duration of the last lease renewal round",
    }
    COUNTERS = {
        "rounds": "Lease renewal rounds",
        "round_failures": "Lease renewal rounds that failed (store unreachable)",
        "leases_taken": "User leases taken by this instance",
        "takeovers": "User leases taken over from another instance (lapsed or handed over)",
        "leases_lost": "User leases this instance lost (moved or lapsed)",
        "fenced_pushes": "Pushes not sent because this instance no longer held the user's lease",
    }


class EventStatsCollector(StatsCollector):
    """Reads the event bus's counters when Prometheus scrapes (docs/events.md)."""

    GAUGE_PREFIX = "mxproxy_events_"
    COUNTER_PREFIX = "mxproxy_events_"
    GAUGES = {
        "users": "Users with event history on this instance",
        "subscriptions": "Open event subscriptions (SSE streams, webhook writers)",
    }
    COUNTERS = {
        "published": "Normalised events published",
        "sink_errors": "Event subscribers that raised",
    }


class StreamStatsCollector(Collector):
    """``GET /events`` streams, read from the stream registry when Prometheus scrapes."""

    def __init__(self, streams: "StreamHub") -> None:
        self._streams = streams

    def describe(self) -> Iterable[Metric]:
        return self._families(None)

    def collect(self) -> Iterable[Metric]:
        return self._families(self._streams)

    @staticmethod
    def _families(streams: "StreamHub | None") -> list[Metric]:
        served = GaugeMetricFamily("mxproxy_sse_streams", "Open GET /events streams served by this instance")
        relayed = GaugeMetricFamily("mxproxy_sse_relayed_streams",
                                    "Open GET /events streams relayed to the user's owner (cluster)")
        opened = CounterMetricFamily("mxproxy_sse_streams_opened", "GET /events streams opened here")
        ended = CounterMetricFamily("mxproxy_sse_streams_ended", "GET /events streams ended, by reason "
                                    "(closed: the client went away)", labels=["reason"])
        if streams is not None:
            served.add_metric([], streams.served)
            relayed.add_metric([], streams.hops)
            opened.add_metric([], streams.opened)
            for reason, count in sorted(streams.ended.items()):
                ended.add_metric([reason], count)
        return [served, relayed, opened, ended]
