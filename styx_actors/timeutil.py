"""UTC instants and Java-style ISO-8601 durations, formatted the way Styx writes them on the wire."""

from __future__ import annotations

import re
from datetime import UTC as UTC  # re-exported: the package's one name for the UTC zone
from datetime import datetime, timedelta

_DURATION = re.compile(
    r"^([-+]?)P(?:([-+]?\d+)D)?(?:T(?:([-+]?\d+)H)?(?:([-+]?\d+)M)?(?:([-+]?\d+(?:[.,]\d{0,9})?)S)?)?$",
    re.IGNORECASE,
)


def utc(dt: datetime) -> datetime:
    """The same instant as an aware UTC datetime (naive datetimes are taken to be UTC)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def format_instant(dt: datetime) -> str:
    """`2017-01-01T01:00:00Z`, with fractional seconds only when they are non-zero."""
    dt = utc(dt)
    text = f"{dt.year:04d}" + dt.strftime("-%m-%dT%H:%M:%S")  # strftime's %Y does not pad years before 1000
    if dt.microsecond:
        text += f".{dt.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant with a zone (`Z` or an offset); raises ValueError otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO-8601 instant, got {text!r}")
    dt = datetime.fromisoformat(text.strip().replace("z", "Z"))
    if dt.tzinfo is None:
        raise ValueError(f"instant {text!r} has no zone")
    try:
        return dt.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00+01:00 lies before the first representable instant
        raise ValueError(f"instant {text!r} is out of range") from exc


def to_millis(dt: datetime) -> int:
    return int(utc(dt).timestamp() * 1000)


def duration_millis(duration: timedelta) -> int:
    return duration // timedelta(milliseconds=1)


def from_millis(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def format_duration(td: timedelta) -> str:
    """Java's `Duration.toString()`: `PT2H`, `PT1M`, `PT59S`, `PT48H`, `PT1H30M`, `PT0.5S`, `PT0S`."""
    total_us = td.days * 86_400_000_000 + td.seconds * 1_000_000 + td.microseconds
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    hours, rest = divmod(total_us, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, micros = divmod(rest, 1_000_000)
    if total_us == 0:
        return "PT0S"
    out = "PT"
    if hours:
        out += f"{sign}{hours}H"
    if minutes:
        out += f"{sign}{minutes}M"
    if seconds or micros:
        frac = f".{micros:06d}".rstrip("0") if micros else ""
        out += f"{sign}{seconds}{frac}S"
    return out


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """An ISO-8601 duration (`PT2H`, `P2D`) or a number of seconds; raises ValueError otherwise."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration cannot be a boolean")
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 duration, got {value!r}")
    text = value.strip()
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        pass
    m = _DURATION.match(text)
    if not m or text.upper().endswith("T") or text.upper() in ("P", "-P", "+P"):
        raise ValueError(f"Text cannot be parsed to a Duration: {value}")
    sign, days, hours, minutes, seconds = m.groups()
    td = timedelta(
        days=int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=float((seconds or "0").replace(",", ".")),
    )
    return -td if sign == "-" else td
