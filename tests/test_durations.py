"""Go duration parsing must agree with Go's time.ParseDuration on every form the original accepted."""

import pytest

from mxproxy.durations import (
    DurationError,
    format_duration,
    parse_duration,
    parse_duration_ns,
)

S = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("90s", 90 * S),
        ("3m50s", 230 * S),
        ("1h", 3600 * S),
        ("6h", 6 * 3600 * S),
        ("1.5h", 5400 * S),
        ("-1.5h", -5400 * S),
        ("+10m", 600 * S),
        (".5s", S // 2),
        ("1.s", S),
        ("100ms", S // 10),
        ("10us", 10_000),
        ("10\u00b5s", 10_000),
        ("10\u03bcs", 10_000),
        ("7ns", 7),
        ("1h2m3s4ms5us6ns", 3723 * S + 4_000_000 + 5_000 + 6),
        ("0.000000001s", 1),
        ("0.0000000009s", 0),  # Go truncates below a nanosecond
        ("2562047h47m16.854775807s", (1 << 63) - 1),
    ],
)
def test_parses_like_go(text: str, ns: int) -> None:
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid duration"),
        ("10", "missing unit"),
        ("1d", 'unknown unit "d"'),
        ("s", "invalid duration"),
        (".s", "invalid duration"),
        ("-", "invalid duration"),
        ("1h 2m", 'unknown unit "h "'),
        ("2562047h47m16.854775808s", "invalid duration"),
        ("9223372036854775808ns", "invalid duration"),
    ],
)
def test_rejects_what_go_rejects(text: str, message: str) -> None:
    with pytest.raises(DurationError, match=message):
        parse_duration_ns(text)


def test_seconds_and_formatting() -> None:
    assert parse_duration("3m50s") == 230.0
    assert format_duration(3600) == "1h0m0s"
    assert format_duration(230) == "3m50s"
    assert format_duration(0) == "0s"
