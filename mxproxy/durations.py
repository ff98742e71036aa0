"""Go-style durations (``90s``, ``3m50s``, ``1.5h``), parsed exactly as Go's ``time.ParseDuration``.

The original MX Proxy read ``apnTTL``, ``tokenTTL`` and ``signKeyTTL`` with Go, so a config file that
worked there must mean the same thing here: same units, same fractions, same rejections.
"""

from __future__ import annotations

_UNITS_NS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_MAX_NS = (1 << 63) - 1


class DurationError(ValueError):
    """The text is not a Go duration; the message quotes it as Go does."""


def parse_duration_ns(text: str) -> int:
    """Return the duration in integer nanoseconds (Go's ``time.Duration``)."""
    orig = text
    s = text
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise DurationError(f'time: invalid duration "{orig}"')
    total = 0
    while s:
        # integer part
        i = 0
        while i < len(s) and s[i].isascii() and s[i].isdigit():
            i += 1
        int_digits = s[:i]
        s = s[i:]
        frac_digits = ""
        if s.startswith("."):
            s = s[1:]
            j = 0
            while j < len(s) and s[j].isascii() and s[j].isdigit():
                j += 1
            frac_digits = s[:j]
            s = s[j:]
        if not int_digits and not frac_digits:
            raise DurationError(f'time: invalid duration "{orig}"')
        k = 0
        while k < len(s) and s[k] != "." and not (s[k].isascii() and s[k].isdigit()):
            k += 1
        unit = s[:k]
        s = s[k:]
        if not unit:
            raise DurationError(f'time: missing unit in duration "{orig}"')
        if unit not in _UNITS_NS:
            raise DurationError(f'time: unknown unit "{unit}" in duration "{orig}"')
        scale = _UNITS_NS[unit]
        value = int(int_digits or "0") * scale
        if frac_digits:
            # Go truncates the fractional part towards zero at nanosecond precision.
            value += int(frac_digits) * scale // (10 ** len(frac_digits))
        if value > _MAX_NS:
            raise DurationError(f'time: invalid duration "{orig}"')
        total += value
        if total > _MAX_NS:
            raise DurationError(f'time: invalid duration "{orig}"')
    return -total if neg else total


def parse_duration(text: str) -> float:
    """Return the duration in seconds, as a float for asyncio timeouts."""
    return parse_duration_ns(text) / 1_000_000_000


def format_duration(seconds: float) -> str:
    """Render seconds the way Go's ``Duration.String`` does for whole seconds (``1h0m0s``)."""
    total = int(round(seconds))
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{sign}{h}h{m}m{s}s"
    if m:
        return f"{sign}{m}m{s}s"
    return f"{sign}{s}s"
