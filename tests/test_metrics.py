"""The metrics registry: isolated per instance, parseable, session counters read at scrape time."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from mxproxy.metrics import Metrics
from mxproxy.sessions import SessionStats


class _Sessions:
    """Only what ``watch_sessions`` reads: a ``stats`` attribute (a real SessionStats)."""

    def __init__(self) -> None:
        self.stats = SessionStats()


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_two_instances_do_not_share_a_registry() -> None:
    first, second = Metrics(), Metrics()
    first.pushes.labels("apns", "voip", "ok").inc()
    assert ("mxproxy_pushes_total", (("kind", "voip"), ("provider", "apns"), ("result", "ok"))) in _samples(first)
    assert not any(name == "mxproxy_pushes_total" for name, _ in _samples(second))


def test_session_stats_are_read_when_scraped_not_when_registered() -> None:
    sessions = _Sessions()
    metrics = Metrics()
    metrics.watch_sessions(sessions)  # type: ignore[arg-type]
    sessions.stats.live_sessions = 7
    sessions.stats.reconnects = 3
    samples = _samples(metrics)
    assert samples[("mxproxy_mx_live_sessions", ())] == 7
    assert samples[("mxproxy_mx_session_reconnects_total", ())] == 3
    sessions.stats.live_sessions = 2
    assert _samples(metrics)[("mxproxy_mx_live_sessions", ())] == 2


def test_every_session_counter_is_exported() -> None:
    sessions = _Sessions()
    metrics = Metrics()
    metrics.watch_sessions(sessions)  # type: ignore[arg-type]
    names = {name for name, _ in _samples(metrics)}
    counters = set(SessionStats().as_dict()) - {"live_sessions"}
    missing = {c for c in counters if f"mxproxy_mx_session_{c}_total" not in names}
    assert not missing


def test_request_metrics_export_what_prometheus_clients_own_counter_and_histogram_would() -> None:
    """The plain-number HTTP series (mxproxy.metrics.RequestMetrics) against prometheus-client's
    Counter/Histogram fed the same requests: same sample names, labels and values (bucket edges
    included: a latency equal to a bound counts in that bound's bucket)."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from mxproxy.metrics import HTTP_BUCKETS

    ours = Metrics()
    registry = CollectorRegistry()
    counter = Counter("mxproxy_http_requests", "HTTP requests answered", ["api", "method", "route", "status"],
                      registry=registry)
    histogram = Histogram("mxproxy_http_request_seconds", "HTTP request latency", ["api", "route"],
                          buckets=HTTP_BUCKETS, registry=registry)
    requests = [("public", "GET", "/auth", "200", 0.0004), ("public", "GET", "/auth", "200", 0.001),
                ("public", "GET", "/auth", "401", 0.0025), ("admin", "POST", "/users", "201", 12.0),
                ("public", "GET", "unmatched", "404", 0.3)]
    for api, method, route, status, seconds in requests:
        ours.http.series(api, method, route, status).observe(seconds)
        counter.labels(api, method, route, status).inc()
        histogram.labels(api, route).observe(seconds)

    def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples
                if s.name.startswith("mxproxy_http") and not s.name.endswith("_created")}

    from prometheus_client import generate_latest

    expected = samples(generate_latest(registry).decode())
    assert samples(ours.exposition().decode()) == expected
    assert expected[("mxproxy_http_request_seconds_bucket", (("api", "public"), ("le", "0.001"), ("route", "/auth")))] == 2
