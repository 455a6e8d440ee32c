"""Schedules, offsets and partition parameters: Styx's schedule math, all in UTC (docs/semantics.md#schedules).

Well-known schedules (@hourly ... @yearly) step with plain calendar arithmetic, which keeps a year of
hourly partitions in the milliseconds; custom 5-field Unix cron expressions go through croniter. Error
texts follow Styx's (java.time's) wording because API clients see them verbatim.
"""

from __future__ import annotations

import calendar
import enum
import functools
import itertools
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import MAXYEAR, MINYEAR, datetime, timedelta, timezone, tzinfo
from typing import Any, TypeVar

from croniter import CroniterBadDateError, CroniterError, croniter

from styx_actors.timeutil import UTC, utc

_SUPPORTED_YEARS = "outside the supported range of years 1 - 9999"
_MINUTE = timedelta(minutes=1)


class InvalidSchedule(ValueError):
    """Neither a well-known alias nor a standard 5-field Unix cron expression."""

    def __init__(self, message: str = "invalid schedule") -> None:
        super().__init__(message)


class InvalidOffset(ValueError):
    """An offset that is not a signed ISO-8601 period/duration; the message is the parser's."""


class ParameterError(ValueError):
    """A partition parameter that cannot be read as an instant."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(parameter, reason)  # both in args, so the error survives pickling (Ray)
        self.parameter = parameter
        self.reason = reason

    def __str__(self) -> str:
        return f"Cannot parse time parameter {self.parameter} - {self.reason}"


class WellKnown(enum.Enum):
    """The alias schedules; the value is the normalised expression."""

    HOURLY = "@hourly"
    DAILY = "@daily"
    WEEKLY = "@weekly"
    MONTHLY = "@monthly"
    YEARLY = "@yearly"


@dataclass(frozen=True)
class _Period:
    aliases: tuple[str, ...]
    json_form: str
    cron: str
    default_offset: str


_PERIODS: dict[WellKnown, _Period] = {
    WellKnown.HOURLY: _Period(("@hourly", "hourly", "hours"), "hours", "0 * * * *", "PT1H"),
    WellKnown.DAILY: _Period(("@daily", "daily", "days"), "days", "0 0 * * *", "P1D"),
    WellKnown.WEEKLY: _Period(("@weekly", "weekly", "weeks"), "weeks", "0 0 * * MON", "P1W"),
    WellKnown.MONTHLY: _Period(("@monthly", "monthly", "months"), "months", "0 0 1 * *", "P1M"),
    WellKnown.YEARLY: _Period(("@yearly", "yearly", "years", "@annually", "annually"), "years", "0 0 1 1 *", "P1Y"),
}
_ALIASES: dict[str, WellKnown] = {alias: kind for kind, period in _PERIODS.items() for alias in period.aliases}


def _floor(kind: WellKnown, t: datetime) -> datetime:
    """The latest instant of a well-known schedule at or before t."""
    hour = t.replace(minute=0, second=0, microsecond=0)
    if kind is WellKnown.HOURLY:
        return hour
    day = hour.replace(hour=0)
    if kind is WellKnown.DAILY:
        return day
    if kind is WellKnown.WEEKLY:
        return day - timedelta(days=day.weekday())
    if kind is WellKnown.MONTHLY:
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def _shift(kind: WellKnown, aligned: datetime, n: int) -> datetime:
    """The instant n periods after (n < 0: before) an aligned instant of a well-known schedule."""
    if kind is WellKnown.HOURLY:
        return aligned + timedelta(hours=n)
    if kind is WellKnown.DAILY:
        return aligned + timedelta(days=n)
    if kind is WellKnown.WEEKLY:
        return aligned + timedelta(weeks=n)
    months = n if kind is WellKnown.MONTHLY else 12 * n
    year, month0 = divmod(aligned.year * 12 + aligned.month - 1 + months, 12)
    if not MINYEAR <= year <= MAXYEAR:
        raise OverflowError(f"year {year}")
    return aligned.replace(year=year, month=month0 + 1)  # aligned instants are on day 1: no clamping


# Standard Unix cron only: croniter also takes L, W, #, ?, H and 6/7 fields, which Styx does not.
_CRON_VALUE = r"(?:[0-9]+|[a-z]{3})"
_CRON_ITEM = rf"(?:\*|{_CRON_VALUE}(?:-{_CRON_VALUE})?)(?:/[0-9]+)?"
_CRON_FIELD = re.compile(rf"{_CRON_ITEM}(?:,{_CRON_ITEM})*", re.IGNORECASE | re.ASCII)
_CRON_PROBE_START = datetime(2000, 1, 1, tzinfo=UTC)


class _CronCursor:
    """A parsed cron expression. croniter objects are stateful cursors, so callers take turns."""

    def __init__(self, cron: str) -> None:
        fields = cron.split()
        if len(fields) != 5 or not all(_CRON_FIELD.fullmatch(f) for f in fields):
            raise InvalidSchedule()
        self.cron = cron
        try:
            # day_or=True: when both day fields are restricted they are OR-ed, as in Unix cron.
            self._cursor = croniter(cron, _CRON_PROBE_START, day_or=True)
            # An expression that never fires (e.g. "0 0 30 2 *") is not a schedule.
            self._cursor.get_next(datetime)
        except CroniterError:
            raise InvalidSchedule() from None
        self._lock = threading.Lock()

    def neighbour(self, minute: datetime, forward: bool) -> datetime:
        """The schedule time strictly after (or before) a whole-minute UTC instant.

        croniter only ever sees whole minutes: its float timestamps blur microseconds in far years.
        """
        with self._lock:
            self._cursor.set_current(minute, force=True)
            return self._cursor.get_next(datetime) if forward else self._cursor.get_prev(datetime)

    def walk(self, start: datetime) -> Iterator[datetime]:
        """start, then every later schedule time (a private croniter, so no lock is held between)."""
        cursor = croniter(self.cron, start, day_or=True)
        yield start
        while True:
            yield cursor.get_next(datetime)


@functools.lru_cache(maxsize=4096)
def _cron_cursor(cron: str) -> _CronCursor:
    return _CronCursor(cron)


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _within_supported_years(method: _Method) -> _Method:
    """Turn date-range overflow (years 1-9999) into a ValueError that says so."""

    @functools.wraps(method)
    def checked(self: Schedule, *args: Any) -> Any:
        try:
            return method(self, *args)
        except (OverflowError, CroniterBadDateError):
            raise ValueError(f"{method.__name__} on schedule {self.expression} is {_SUPPORTED_YEARS}") from None

    return checked  # type: ignore[return-value]


@dataclass(frozen=True)
class Schedule:
    """A workflow schedule. Equal iff the normalised expressions are equal (`daily` == `@daily`)."""

    expression: str
    well_known: WellKnown | None

    @classmethod
    def parse(cls, text: str) -> Schedule:
        if not isinstance(text, str):
            raise InvalidSchedule()
        kind = _ALIASES.get(text.lower())
        if kind is not None:
            return cls(kind.value, kind)
        _cron_cursor(text)  # validates
        return cls(text, None)

    def json_form(self) -> str:
        """`hours|days|weeks|months|years`, or the cron expression lower-cased (a Styx quirk)."""
        return _PERIODS[self.well_known].json_form if self.well_known else self.expression.lower()

    def cron(self) -> str:
        return _PERIODS[self.well_known].cron if self.well_known else self.expression

    def default_offset(self) -> str:
        return _PERIODS[self.well_known].default_offset if self.well_known else "PT0S"

    @_within_supported_years
    def next(self, t: datetime) -> datetime:
        """The first schedule time strictly after t."""
        t = utc(t)
        if self.well_known:
            return _shift(self.well_known, _floor(self.well_known, t), 1)
        return _cron_cursor(self.expression).neighbour(t.replace(second=0, microsecond=0), True)

    @_within_supported_years
    def previous(self, t: datetime) -> datetime:
        """The last schedule time strictly before t."""
        t = utc(t)
        if self.well_known:
            floor = _floor(self.well_known, t)
            return floor if floor < t else _shift(self.well_known, floor, -1)
        minute = t.replace(second=0, microsecond=0)
        ceiling = minute if minute == t else minute + _MINUTE
        return _cron_cursor(self.expression).neighbour(ceiling, False)

    def last(self, t: datetime) -> datetime:
        """t itself if it is a schedule time, else the previous one."""
        t = utc(t)
        return t if self.is_aligned(t) else self.previous(t)

    @_within_supported_years
    def is_aligned(self, t: datetime) -> bool:
        t = utc(t)
        if self.well_known:
            return _floor(self.well_known, t) == t
        if t.second or t.microsecond:
            return False
        return _cron_cursor(self.expression).neighbour(t - _MINUTE, True) == t

    def range(self, start: datetime, end: datetime) -> list[datetime]:
        """The schedule times in [start, end); both must be aligned and end >= start."""
        return list(self.iter_range(start, end))

    def iter_range(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Lazy `range`; the arguments are checked at the call, not at the first item."""
        start, end = utc(start), utc(end)
        for name, instant in (("start", start), ("end", end)):
            if not self.is_aligned(instant):
                raise ValueError(f"{name} {instant.isoformat()} is not aligned with schedule {self.expression}")
        if end < start:
            raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
        kind = self.well_known
        times = (
            (_shift(kind, start, i) for i in itertools.count()) if kind else _cron_cursor(self.expression).walk(start)
        )
        return itertools.takewhile(lambda t: t < end, times)

    @_within_supported_years
    def offset_instant(self, origin: datetime, n: int) -> datetime:
        """The schedule time n steps after (n < 0: before) an aligned origin."""
        origin = utc(origin)
        if not self.is_aligned(origin):
            raise ValueError(f"origin {origin.isoformat()} is not aligned with schedule {self.expression}")
        if self.well_known:
            return _shift(self.well_known, origin, n)
        cursor = _cron_cursor(self.expression)
        for _ in range(abs(n)):
            origin = cursor.neighbour(origin, n > 0)
        return origin


# Styx's offset pattern; the date and time parts are then read as java.time's Period and Duration.
_OFFSET = re.compile(r"([-+]?)P([-+0-9YMWD]+)?(T([-+0-9HMS.,]+)?)?", re.IGNORECASE | re.ASCII)
_PERIOD_PART = re.compile(
    r"(?:([-+]?[0-9]+)Y)?(?:([-+]?[0-9]+)M)?(?:([-+]?[0-9]+)W)?(?:([-+]?[0-9]+)D)?",
    re.IGNORECASE | re.ASCII,
)
_DURATION_PART = re.compile(
    r"(?:([-+]?[0-9]+)H)?(?:([-+]?[0-9]+)M)?(?:([-+]?[0-9]+)(?:[.,]([0-9]{0,9}))?S)?",
    re.IGNORECASE | re.ASCII,
)
_INT32 = 2**31 - 1  # java.time's Period holds ints


@dataclass(frozen=True)
class Offset:
    """A signed ISO-8601 offset, split as Styx splits it: calendar months and days, then exact time.

    Equal iff the amounts are equal (`P1W` == `P7D`; `P1D` != `PT24H`, which differ across a month).
    """

    text: str = field(compare=False)
    months: int
    days: int
    time: timedelta

    @classmethod
    def parse(cls, text: str) -> Offset:
        match = _OFFSET.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidOffset("Unable to parse offset period")
        sign = -1 if match[1] == "-" else 1
        months, days = cls._period(match[2] or "0D", sign)
        return cls(text, months, days, cls._duration(match[4] or "0S", sign))

    @staticmethod
    def _period(part: str, sign: int) -> tuple[int, int]:
        match = _PERIOD_PART.fullmatch(part)
        if match is None:
            raise InvalidOffset("Text cannot be parsed to a Period")
        years, months, weeks, days = (sign * int(g or 0) for g in match.groups())
        all_days = weeks * 7 + days
        if any(abs(v) > _INT32 for v in (years, months, weeks * 7, all_days)):
            raise InvalidOffset("Text cannot be parsed to a Period")
        return years * 12 + months, all_days

    @staticmethod
    def _duration(part: str, sign: int) -> timedelta:
        match = _DURATION_PART.fullmatch(part)
        if match is None:
            raise InvalidOffset("Text cannot be parsed to a Duration")
        hours, minutes, seconds, fraction = match.groups()
        # The fraction takes the sign of the seconds ("-1.5S" is -1.5 s).
        fraction_sign = -1 if (seconds or "").startswith("-") else 1
        nanos = fraction_sign * int((fraction or "").ljust(9, "0"))
        try:
            amount = timedelta(
                hours=int(hours or 0),
                minutes=int(minutes or 0),
                seconds=int(seconds or 0),
                microseconds=nanos / 1000,
            )
        except OverflowError:
            raise InvalidOffset("Text cannot be parsed to a Duration") from None
        return sign * amount

    def __str__(self) -> str:
        return self.text

    def add_to(self, t: datetime) -> datetime:
        """t moved by the offset: months (clamped to month end, as java.time), days, then time."""
        t = utc(t)
        try:
            moved = t
            if self.months:
                year, month0 = divmod(t.year * 12 + t.month - 1 + self.months, 12)
                if not MINYEAR <= year <= MAXYEAR:
                    raise OverflowError(f"year {year}")
                last_day = calendar.monthrange(year, month0 + 1)[1]
                moved = t.replace(year=year, month=month0 + 1, day=min(t.day, last_day))
            return moved + timedelta(days=self.days) + self.time
        except OverflowError:
            raise ValueError(f"offset {self.text} from {t.isoformat()} is {_SUPPORTED_YEARS}") from None

    def subtract_from(self, t: datetime) -> datetime:
        """t moved back by the offset (calendar part first, like Styx's sign-flipped addition)."""
        return Offset(self.text, -self.months, -self.days, -self.time).add_to(t)


def effective_offset(schedule: Schedule, offset: str | None) -> Offset:
    """The workflow's explicit offset, or its schedule's default (docs/semantics.md#offsets)."""
    return Offset.parse(schedule.default_offset() if offset is None else offset)


def _date_text(t: datetime) -> str:
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}"


def to_parameter(schedule: Schedule, instant: datetime) -> str:
    """The partition parameter naming an instant (docs/semantics.md#partition-parameters)."""
    t = utc(instant)
    kind = schedule.well_known
    if kind is WellKnown.HOURLY:
        return f"{_date_text(t)}T{t.hour:02d}"
    if kind in (WellKnown.DAILY, WellKnown.WEEKLY):
        return _date_text(t)
    if kind is WellKnown.MONTHLY:
        return f"{t.year:04d}-{t.month:02d}"
    if kind is WellKnown.YEARLY:
        return f"{t.year:04d}"
    return f"{_date_text(t)}T{t.hour:02d}:{t.minute:02d}:00Z"


class _Unparsable(Exception):
    """The text stopped matching the pattern at `index`."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


class _NotAnInstant(Exception):
    """Why java.time rejects a text: what follows "Text '...' could not be parsed"."""


def _invalid(reason: str) -> _NotAnInstant:
    return _NotAnInstant(f": {reason}")


_YEAR_PARAMETER = re.compile(r"([0-9]{4})(?:-([0-9]{2}))?")
_MONTH_PARAMETER = re.compile(r"([0-9]{4})-([0-9]{2})")
_ZONE_OFFSET = re.compile(r"([-+])([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?")
_MONTH_NAMES = (
    "JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE",
    "JULY", "AUGUST", "SEPTEMBER", "OCTOBER", "NOVEMBER", "DECEMBER",
)  # fmt: skip
_T = TypeVar("_T")


def parse_aligned_instant(parameter: str, schedule: Schedule) -> datetime:
    """The schedule time a parameter names, floored to the schedule when it is not aligned
    (docs/semantics.md#partition-parameters)."""
    try:
        return schedule.last(_parameter_instant(parameter, schedule.well_known))
    except _Unparsable as error:
        reason = f"{_could_not_parse(parameter)} at index {error.index}"
    except _NotAnInstant as error:
        reason = f"{_could_not_parse(parameter)}{error}"
    except ValueError as error:  # the floored instant falls outside years 1-9999
        reason = str(error)
    raise ParameterError(parameter, reason)


def _could_not_parse(text: str) -> str:
    shown = text if len(text) <= 64 else text[:64] + "..."
    return f"Text '{shown}' could not be parsed"


def _parameter_instant(text: str, kind: WellKnown | None) -> datetime:
    if kind is WellKnown.YEARLY and (match := _YEAR_PARAMETER.fullmatch(text)):
        return _utc_date(int(match[1]), int(match[2] or 1), 1)
    if kind is WellKnown.MONTHLY and (match := _MONTH_PARAMETER.fullmatch(text)):
        return _utc_date(int(match[1]), int(match[2]), 1)
    return _parse_iso_instant(text)


def _parse_iso_instant(text: str) -> datetime:
    """Styx's strict `yyyy-MM-dd[THH[:mm[:ss[.fffffffff]]][Z|±hh:mm[:ss]]]`, read as java.time reads it.

    Optional parts that do not match are left unread, so they surface as "unparsed text"; a bare date
    is midnight UTC.
    """
    year, pos = _read_year(text, 0)
    pos = _read_literal(text, pos, "-")
    month, pos = _read_two_digits(text, pos)
    pos = _read_literal(text, pos, "-")
    day, pos = _read_two_digits(text, pos)
    time, pos = _optional(_read_time, text, pos)
    if pos < len(text):
        raise _NotAnInstant(f", unparsed text found at index {pos}")
    date = _utc_date(year, month, day)
    if time is None:
        return date
    hour, minute, second, fraction, zone = time
    # java.time checks the minute, then the hour, then the second.
    _check_range("MinuteOfHour", minute, 0, 59)
    _check_range("HourOfDay", hour, 0, 23)
    _check_range("SecondOfMinute", second, 0, 59)
    # Truncating nanoseconds to microseconds cannot change the floored result: schedule times are
    # whole minutes, so none lies between the truncated and the exact instant.
    micros = int(fraction[:6].ljust(6, "0"))
    try:
        local = date.replace(hour=hour, minute=minute, second=second, microsecond=micros)
        return local.replace(tzinfo=zone).astimezone(UTC)
    except OverflowError:
        raise _invalid(f"Instant {_SUPPORTED_YEARS}") from None


def _utc_date(year: int, month: int, day: int) -> datetime:
    """Midnight UTC of a date, with java.time's messages for impossible dates."""
    _check_range("Year", year, MINYEAR, MAXYEAR)  # java.time allows more years than Python
    _check_range("MonthOfYear", month, 1, 12)
    if not 1 <= day <= 31:
        raise _invalid(f"Invalid value for DayOfMonth (valid values 1 - 28/31): {day}")
    if day > calendar.monthrange(year, month)[1]:
        if month == 2 and day == 29:
            raise _invalid(f"Invalid date 'February 29' as '{year}' is not a leap year")
        raise _invalid(f"Invalid date '{_MONTH_NAMES[month - 1]} {day}'")
    return datetime(year, month, day, tzinfo=UTC)


def _check_range(field_name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise _invalid(f"Invalid value for {field_name} (valid values {low} - {high}): {value}")


def _optional(read: Callable[[str, int], tuple[_T, int]], text: str, pos: int) -> tuple[_T | None, int]:
    """An optional section: when it does not match, nothing of it is read."""
    try:
        return read(text, pos)
    except _Unparsable:
        return None, pos


def _read_literal(text: str, pos: int, literal: str) -> int:
    if not text.startswith(literal, pos):
        raise _Unparsable(pos)
    return pos + 1


def _read_two_digits(text: str, pos: int) -> tuple[int, int]:
    digits = text[pos : pos + 2]
    if len(digits) != 2 or not all("0" <= c <= "9" for c in digits):
        raise _Unparsable(pos)
    return int(digits), pos + 2


def _read_year(text: str, pos: int) -> tuple[int, int]:
    """4 digits, or a sign and up to 10 digits, as java.time's ISO year (strict)."""
    sign = text[pos : pos + 1] if text[pos : pos + 1] in ("+", "-") else ""
    start = end = pos + len(sign)
    while end < len(text) and end - start < 10 and "0" <= text[end] <= "9":
        end += 1
    width = end - start
    if width < 4:
        raise _Unparsable(start)
    value = int(text[start:end])
    if sign == "-":
        if value == 0:  # no minus zero
            raise _Unparsable(pos)
        return -value, end
    if (sign == "+") != (width > 4):  # '+' exactly when wider than 4 digits
        raise _Unparsable(pos)
    return value, end


def _read_time(text: str, pos: int) -> tuple[tuple[int, int, int, str, tzinfo], int]:
    """`THH[:mm[:ss[.f]]][zone]` as (hour, minute, second, fraction digits, zone); absent parts are
    zero, an absent zone is UTC."""
    pos = _read_literal(text, pos, "T")
    hour, pos = _read_two_digits(text, pos)
    minutes, pos = _optional(_read_minutes, text, pos)
    zone, pos = _optional(_read_zone, text, pos)
    minute, second, fraction = minutes or (0, 0, "")
    return (hour, minute, second, fraction, zone or UTC), pos


def _read_minutes(text: str, pos: int) -> tuple[tuple[int, int, str], int]:
    minute, pos = _read_two_digits(text, _read_literal(text, pos, ":"))
    seconds, pos = _optional(_read_seconds, text, pos)
    second, fraction = seconds or (0, "")
    return (minute, second, fraction), pos


def _read_seconds(text: str, pos: int) -> tuple[tuple[int, str], int]:
    second, pos = _read_two_digits(text, _read_literal(text, pos, ":"))
    fraction, pos = _optional(_read_fraction, text, pos)
    return (second, fraction or ""), pos


def _read_fraction(text: str, pos: int) -> tuple[str, int]:
    start = end = _read_literal(text, pos, ".")
    while end < len(text) and end - start < 9 and "0" <= text[end] <= "9":
        end += 1
    if end == start:
        raise _Unparsable(start)
    return text[start:end], end


def _read_zone(text: str, pos: int) -> tuple[tzinfo, int]:
    """`Z` or `±hh:mm[:ss]` (region ids such as Europe/Stockholm are not accepted)."""
    if text.startswith("Z", pos):
        return UTC, pos + 1
    match = _ZONE_OFFSET.match(text, pos)
    if match is None:
        raise _Unparsable(pos)
    sign, hours, minutes, seconds = match[1], int(match[2]), int(match[3]), int(match[4] or 0)
    if hours > 18 or minutes > 59 or seconds > 59:
        raise _invalid("Value out of range: Hour[0-17], Minute[0-59], Second[0-59]")
    amount = timedelta(hours=hours, minutes=minutes, seconds=seconds)
    if amount > timedelta(hours=18):
        raise _invalid("Zone offset not in valid range: -18:00 to +18:00")
    return timezone(-amount if sign == "-" else amount), match.end()


def initial_natural_trigger(schedule: Schedule, offset: Offset, now: datetime) -> tuple[datetime, datetime]:
    """(next_natural_trigger, next_natural_offset_trigger) on create, or when the schedule or offset
    changed (docs/semantics.md#natural-triggers): the first period whose fire time is still ahead of `now`."""
    logical = schedule.next(offset.subtract_from(now))
    return logical, offset.add_to(logical)


def advance_natural_trigger(schedule: Schedule, offset: Offset, logical: datetime) -> tuple[datetime, datetime]:
    """The trigger pair after a natural trigger attempt for `logical` (docs/semantics.md#natural-triggers)."""
    following = schedule.next(logical)
    return following, offset.add_to(following)
