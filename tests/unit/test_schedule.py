"""Schedule math (docs/semantics.md, "Schedules" to "Natural triggers"): schedules, offsets, parameters,
natural triggers."""

from __future__ import annotations

import pickle
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from styx_actors.schedule import (
    InvalidOffset,
    InvalidSchedule,
    Offset,
    ParameterError,
    Schedule,
    WellKnown,
    advance_natural_trigger,
    effective_offset,
    initial_natural_trigger,
    parse_aligned_instant,
    to_parameter,
)

UTC = UTC
HOURS = Schedule.parse("@hourly")
DAYS = Schedule.parse("@daily")
WEEKS = Schedule.parse("@weekly")
MONTHS = Schedule.parse("@monthly")
YEARS = Schedule.parse("@yearly")
WELL_KNOWN = [HOURS, DAYS, WEEKS, MONTHS, YEARS]
CUSTOM_CRONS = ["15,45 12,15 * * *", "*/20 9-17 * * MON-FRI", "0 3 1,15 * *", "0 0 13 * FRI"]
TIME = "2016-01-19T09:11:22.333Z"


def at(text: str) -> datetime:
    """An ISO instant (`Z` or an offset) as an aware datetime."""
    return datetime.fromisoformat(text)


instants = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)).map(
    lambda naive: naive.replace(tzinfo=UTC)
)
any_schedule = st.sampled_from(WELL_KNOWN + [Schedule.parse(c) for c in CUSTOM_CRONS])


# schedules: parsing, normal form, equality (docs/semantics.md#schedules) ------------------------


@pytest.mark.parametrize(
    "text, kind",
    [
        ("@hourly", WellKnown.HOURLY), ("hourly", WellKnown.HOURLY), ("HOURS", WellKnown.HOURLY),
        ("@daily", WellKnown.DAILY), ("Daily", WellKnown.DAILY), ("days", WellKnown.DAILY),
        ("@weekly", WellKnown.WEEKLY), ("weekly", WellKnown.WEEKLY), ("weeks", WellKnown.WEEKLY),
        ("@monthly", WellKnown.MONTHLY), ("monthly", WellKnown.MONTHLY), ("MONTHS", WellKnown.MONTHLY),
        ("@yearly", WellKnown.YEARLY), ("yearly", WellKnown.YEARLY), ("years", WellKnown.YEARLY),
        ("@annually", WellKnown.YEARLY), ("ANNUALLY", WellKnown.YEARLY),
    ],
)  # fmt: skip
def test_aliases_normalise_to_the_at_form(text: str, kind: WellKnown) -> None:
    schedule = Schedule.parse(text)
    assert schedule.well_known is kind
    assert schedule.expression == kind.value
    assert schedule == Schedule.parse(kind.value)


@pytest.mark.parametrize(
    "schedule, json_form, cron, default_offset",
    [
        (HOURS, "hours", "0 * * * *", "PT1H"),
        (DAYS, "days", "0 0 * * *", "P1D"),
        (WEEKS, "weeks", "0 0 * * MON", "P1W"),
        (MONTHS, "months", "0 0 1 * *", "P1M"),
        (YEARS, "years", "0 0 1 1 *", "P1Y"),
        (Schedule.parse("0 0 * * MON"), "0 0 * * mon", "0 0 * * MON", "PT0S"),
    ],
)
def test_json_form_cron_and_default_offset(schedule: Schedule, json_form: str, cron: str, default_offset: str) -> None:
    assert schedule.json_form() == json_form
    assert schedule.cron() == cron
    assert schedule.default_offset() == default_offset


def test_equality_is_on_the_normalised_expression() -> None:
    assert Schedule.parse("daily") == Schedule.parse("@DAILY")
    assert hash(Schedule.parse("daily")) == hash(DAYS)
    # A cron text equal to an alias's expansion is a different schedule (it formats parameters differently).
    assert Schedule.parse("0 0 * * *") != DAYS
    assert Schedule.parse("0 * * * *") != HOURS
    assert Schedule.parse("0 0 * * mon").expression == "0 0 * * mon"  # cron text is kept verbatim
    assert Schedule.parse("0 0 * * mon") != Schedule.parse("0 0 * * MON")


@pytest.mark.parametrize(
    "text",
    [
        "* * * * * *", "0 0 * * * 2017", "@every 5m", "@reboot", "@midnight", "every day", "",
        "0 0 L * *", "0 0 * * MON#2", "0 0 ? * *", "0 0 1W * *", "H * * * *", "*/0 * * * *",
        "60 * * * *", "0 24 * * *", "0 0 0 * *", "0 0 32 * *", "0 0 * 13 *", "0 0 * * 8",
        "-1 * * * *", "1,,2 * * * *", "*/2/3 * * * *", "MON * * * *", "0 0 * * JAN",
        "0 0 30 2 *", "0 0 31 4,6,9,11 *", " @daily", "0 0 * *",
    ],
)  # fmt: skip
def test_invalid_schedules(text: str) -> None:
    with pytest.raises(InvalidSchedule) as raised:
        Schedule.parse(text)
    assert str(raised.value) == "invalid schedule"
    assert isinstance(raised.value, ValueError)


def test_non_string_schedule_is_invalid() -> None:
    with pytest.raises(InvalidSchedule):
        Schedule.parse(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "cron, start, expected",
    [
        ("0 0 * * MON-FRI", "2017-03-24T12:00Z", "2017-03-27T00:00Z"),  # Fri -> Mon
        ("*/15 * * * *", "2017-03-24T12:00Z", "2017-03-24T12:15Z"),
        ("05-59/20 * * * *", "2016-01-19T09:00Z", "2016-01-19T09:05Z"),
        ("0 0 * * 7", "2017-03-24T12:00Z", "2017-03-26T00:00Z"),  # 7 is Sunday
        ("0 0 * * sun", "2017-03-24T12:00Z", "2017-03-26T00:00Z"),
        ("0 0 1 jan-mar *", "2017-03-24T12:00Z", "2018-01-01T00:00Z"),
        ("0  0\t* * *", "2017-03-24T12:00Z", "2017-03-25T00:00Z"),
        ("0 0 29 2 *", "2017-03-01T00:00Z", "2020-02-29T00:00Z"),
    ],
)
def test_standard_cron_expressions(cron: str, start: str, expected: str) -> None:
    assert Schedule.parse(cron).next(at(start)) == at(expected)


def test_restricted_day_of_month_and_day_of_week_are_ored() -> None:
    # 2017-02-13 is a Monday: it fires for the day of month, the Fridays fire for the day of week.
    expected = ["2017-02-03", "2017-02-10", "2017-02-13", "2017-02-17"]
    times = Schedule.parse("0 0 13 * FRI").range(at("2017-02-03T00:00Z"), at("2017-02-24T00:00Z"))
    assert times == [at(day + "T00:00Z") for day in expected]
    # With one day field unrestricted only the other one counts.
    assert Schedule.parse("0 0 13 * *").next(at("2017-02-01T00:00Z")) == at("2017-02-13T00:00Z")
    assert Schedule.parse("0 0 * * FRI").next(at("2017-02-11T00:00Z")) == at("2017-02-17T00:00Z")


def test_schedules_and_errors_survive_pickling() -> None:
    cron = Schedule.parse("15,45 12,15 * * *")
    assert pickle.loads(pickle.dumps(cron)) == cron
    assert pickle.loads(pickle.dumps(WEEKS)).well_known is WellKnown.WEEKLY
    assert str(pickle.loads(pickle.dumps(InvalidSchedule()))) == "invalid schedule"
    error = pickle.loads(pickle.dumps(ParameterError("2015", "reason")))
    assert str(error) == "Cannot parse time parameter 2015 - reason"


# schedule time helpers, Styx's TimeUtilTest (docs/semantics.md#schedules) --------------------------


@pytest.mark.parametrize(
    "schedule, last, following",
    [
        (HOURS, "2016-01-19T09:00Z", "2016-01-19T10:00Z"),
        (DAYS, "2016-01-19T00:00Z", "2016-01-20T00:00Z"),
        (WEEKS, "2016-01-18T00:00Z", "2016-01-25T00:00Z"),
        (MONTHS, "2016-01-01T00:00Z", "2016-02-01T00:00Z"),
        (YEARS, "2016-01-01T00:00Z", "2017-01-01T00:00Z"),
    ],
)
def test_last_previous_and_next(schedule: Schedule, last: str, following: str) -> None:
    assert schedule.last(at(TIME)) == at(last)
    assert schedule.previous(at(TIME)) == at(last)
    assert schedule.next(at(TIME)) == at(following)
    # From an aligned instant: last is the instant itself, previous/next are strictly before/after.
    assert schedule.last(at(last)) == at(last)
    assert schedule.next(at(last)) == at(following)
    assert schedule.previous(at(following)) == at(last)


def test_complex_cron() -> None:
    assert Schedule.parse("5-59/20 * * * *").last(at("2016-01-19T09:00Z")) == at("2016-01-19T08:45Z")
    assert Schedule.parse("05-59/20 * * * *").next(at("2016-01-19T09:00Z")) == at("2016-01-19T09:05Z")


@pytest.mark.parametrize(
    "schedule, aligned, unaligned",
    [
        (HOURS, "2017-02-06T10:00Z", "2017-02-06T10:01Z"),
        (DAYS, "2017-02-06T00:00Z", "2017-02-06T01:00Z"),
        (WEEKS, "2017-02-06T00:00Z", "2017-02-07T00:00Z"),
        (MONTHS, "2017-02-01T00:00Z", "2017-02-02T00:00Z"),
        (YEARS, "2017-01-01T00:00Z", "2017-01-02T00:00Z"),
        (Schedule.parse("15,42 10 * * *"), "2017-02-06T10:15Z", "2017-02-06T10:00Z"),
        (Schedule.parse("15,42 10 * * *"), "2017-02-06T10:42Z", "2017-02-06T11:15Z"),
    ],
)
def test_alignment(schedule: Schedule, aligned: str, unaligned: str) -> None:
    assert schedule.is_aligned(at(aligned))
    assert not schedule.is_aligned(at(unaligned))


@pytest.mark.parametrize("schedule", [HOURS, Schedule.parse("0 * * * *"), Schedule.parse("* * * * *")])
def test_sub_second_precision(schedule: Schedule) -> None:
    for fraction in (timedelta(microseconds=1), timedelta(milliseconds=500), timedelta(seconds=30)):
        t = at("2017-03-25T12:00Z") + fraction
        assert not schedule.is_aligned(t)
        assert schedule.previous(t) == at("2017-03-25T12:00Z")
        assert schedule.last(t) == at("2017-03-25T12:00Z")
        assert schedule.next(t) == schedule.next(at("2017-03-25T12:00Z"))
    just_before = at("2017-03-25T12:00Z") - timedelta(microseconds=1)
    assert schedule.next(just_before) == at("2017-03-25T12:00Z")


def test_sub_microsecond_free_far_future_instants_keep_their_precision() -> None:
    # Float timestamps cannot hold microseconds in year 9000; cron math must not depend on them.
    t = at("9000-06-01T12:00:00.000001Z")
    assert Schedule.parse("* * * * *").previous(t) == at("9000-06-01T12:00Z")
    assert not Schedule.parse("* * * * *").is_aligned(t)


@pytest.mark.parametrize(
    "schedule, first, end, count",
    [
        (HOURS, "2016-01-19T00:00Z", "2016-01-19T09:00Z", 9),
        (DAYS, "2016-01-10T00:00Z", "2016-01-19T00:00Z", 9),
        (WEEKS, "2016-01-11T00:00Z", "2016-01-18T00:00Z", 1),
        (YEARS, "2010-01-01T00:00Z", "2016-01-01T00:00Z", 6),
        (Schedule.parse("0 * * * *"), "2016-01-19T00:00Z", "2016-01-19T09:00Z", 9),
        (HOURS, "2016-01-19T00:00Z", "2016-01-19T00:00Z", 0),
    ],
)
def test_range_counts(schedule: Schedule, first: str, end: str, count: int) -> None:
    times = schedule.range(at(first), at(end))
    assert len(times) == count
    assert times == sorted(times) and all(schedule.is_aligned(t) for t in times)
    assert not times or times[0] == at(first)


def test_range_rejects_bad_bounds_at_the_call() -> None:
    with pytest.raises(ValueError, match="before start"):
        HOURS.range(at("2016-01-19T10:00Z"), at("2016-01-19T09:00Z"))
    with pytest.raises(ValueError, match="end .* is not aligned"):
        HOURS.range(at("2016-01-19T08:00Z"), at("2016-01-19T09:10Z"))
    with pytest.raises(ValueError, match="start .* is not aligned"):
        HOURS.iter_range(at("2016-01-19T08:10Z"), at("2016-01-19T09:00Z"))  # not even iterated


def test_range_of_a_cron_schedule() -> None:
    times = Schedule.parse("15,45 12,15 * * *").range(at("2016-03-14T12:15Z"), at("2016-03-15T12:15Z"))
    assert times == [at(f"2016-03-14T{hm}Z") for hm in ("12:15", "12:45", "15:15", "15:45")]


def test_monthly_and_yearly_ranges_cross_leap_years() -> None:
    months = MONTHS.range(at("2015-12-01T00:00Z"), at("2016-04-01T00:00Z"))
    assert [t.month for t in months] == [12, 1, 2, 3]
    years = YEARS.range(at("2015-01-01T00:00Z"), at("2018-01-01T00:00Z"))
    assert years == [at(f"{y}-01-01T00:00Z") for y in (2015, 2016, 2017)]


def test_a_year_of_hourly_partitions_is_fast() -> None:
    started = time.perf_counter()
    leap = HOURS.range(at("2016-01-01T00:00Z"), at("2017-01-01T00:00Z"))
    common = HOURS.range(at("2017-01-01T00:00Z"), at("2018-01-01T00:00Z"))
    elapsed = time.perf_counter() - started
    assert (len(leap), len(common)) == (8784, 8760)
    assert common[-1] == at("2017-12-31T23:00Z")
    assert elapsed < 0.5, f"two years of hourly partitions took {elapsed:.3f}s"  # ~15 ms here


@pytest.mark.parametrize(
    "schedule, origin, n, expected",
    [
        (HOURS, "2016-03-14T15:00Z", -3, "2016-03-14T12:00Z"),
        (HOURS, "2016-03-14T15:00Z", 0, "2016-03-14T15:00Z"),
        (DAYS, "2016-02-28T00:00Z", 2, "2016-03-01T00:00Z"),
        (WEEKS, "2016-03-14T00:00Z", -2, "2016-02-29T00:00Z"),
        (MONTHS, "2016-03-01T00:00Z", -13, "2015-02-01T00:00Z"),
        (MONTHS, "2016-11-01T00:00Z", 3, "2017-02-01T00:00Z"),
        (YEARS, "2016-01-01T00:00Z", -168, "1848-01-01T00:00Z"),
        (Schedule.parse("15,45 12,15 * * *"), "2016-03-14T12:45Z", 2, "2016-03-14T15:45Z"),
        (Schedule.parse("15,45 12,15 * * *"), "2016-03-14T12:45Z", -3, "2016-03-13T15:15Z"),
    ],
)
def test_offset_instant(schedule: Schedule, origin: str, n: int, expected: str) -> None:
    assert schedule.offset_instant(at(origin), n) == at(expected)


def test_offset_instant_needs_an_aligned_origin() -> None:
    with pytest.raises(ValueError, match="not aligned"):
        DAYS.offset_instant(at("2016-03-14T01:00Z"), 1)


def test_outputs_are_utc_whatever_the_input_zone() -> None:
    stockholm = ZoneInfo("Europe/Stockholm")
    # 2017-03-26 is a DST switch in Stockholm; in UTC nothing happens.
    local = datetime(2017, 3, 26, 1, 30, tzinfo=stockholm)  # 00:30Z
    assert DAYS.next(local) == at("2017-03-27T00:00Z")
    assert DAYS.next(local).utcoffset() == timedelta(0)
    assert HOURS.previous(local) == at("2017-03-26T00:00Z")
    assert Schedule.parse("0 2 * * *").next(at("2017-03-26T00:00Z")) == at("2017-03-26T02:00Z")
    times = HOURS.range(datetime(2017, 3, 26, 1, tzinfo=stockholm), at("2017-03-26T04:00Z"))
    assert [t - times[0] for t in times] == [timedelta(hours=h) for h in range(4)]
    assert all(t.tzinfo == UTC for t in times)
    assert DAYS.next(at("2017-03-25T23:30-03:00")) == at("2017-03-27T00:00Z")


def test_leap_days() -> None:
    feb29 = Schedule.parse("0 0 29 2 *")
    assert feb29.previous(at("2101-01-01T00:00Z")) == at("2096-02-29T00:00Z")  # 2100 is no leap year
    assert DAYS.next(at("2016-02-28T12:00Z")) == at("2016-02-29T00:00Z")
    assert DAYS.next(at("2017-02-28T12:00Z")) == at("2017-03-01T00:00Z")
    assert WEEKS.next(at("2016-02-23T00:00Z")) == at("2016-02-29T00:00Z")


def test_dates_outside_years_1_to_9999_are_clear_value_errors() -> None:
    with pytest.raises(ValueError, match="supported range"):
        HOURS.next(at("9999-12-31T23:30Z"))
    with pytest.raises(ValueError, match="supported range"):
        YEARS.offset_instant(at("9999-01-01T00:00Z"), 1)
    with pytest.raises(ValueError, match="supported range"):
        Schedule.parse("0 12 * * *").previous(at("0001-01-01T06:00Z"))


@settings(max_examples=150, deadline=None)
@given(schedule=st.sampled_from(WELL_KNOWN), t=instants)
def test_well_known_arithmetic_agrees_with_croniter(schedule: Schedule, t: datetime) -> None:
    as_cron = Schedule.parse(schedule.cron())
    assert schedule.next(t) == as_cron.next(t)
    assert schedule.previous(t) == as_cron.previous(t)
    assert schedule.is_aligned(t) == as_cron.is_aligned(t)
    following = schedule.next(t)
    assert schedule.is_aligned(following) and as_cron.is_aligned(following)


@settings(max_examples=150, deadline=None)
@given(schedule=any_schedule, t=instants)
def test_next_and_previous_are_the_nearest_schedule_times(schedule: Schedule, t: datetime) -> None:
    following, previous = schedule.next(t), schedule.previous(t)
    assert previous < t < following
    assert schedule.is_aligned(following) and schedule.is_aligned(previous)
    # Nothing of the schedule lies strictly between them and t.
    assert schedule.previous(following) <= t <= schedule.next(previous)
    assert schedule.last(t) == (t if schedule.is_aligned(t) else previous)


@settings(max_examples=100, deadline=None)
@given(t=instants)
def test_weekly_instants_are_mondays_at_midnight(t: datetime) -> None:
    for instant in (WEEKS.next(t), WEEKS.previous(t), WEEKS.last(t)):
        assert (instant.weekday(), instant.hour, instant.minute) == (0, 0, 0)
    assert WEEKS.is_aligned(t) == (t == WEEKS.last(t))


# offsets (docs/semantics.md#offsets) ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("P1D2H", "Unable to parse offset period"),
        ("P1H", "Unable to parse offset period"),
        ("1D", "Unable to parse offset period"),
        ("", "Unable to parse offset period"),
        ("-+PT1H", "Unable to parse offset period"),
        ("P1M1Y", "Text cannot be parsed to a Period"),
        ("P1", "Text cannot be parsed to a Period"),
        ("P99999999999Y", "Text cannot be parsed to a Period"),
        ("PT1.5H", "Text cannot be parsed to a Duration"),
        ("PT1", "Text cannot be parsed to a Duration"),
    ],
)
def test_invalid_offsets(text: str, message: str) -> None:
    with pytest.raises(InvalidOffset) as raised:
        Offset.parse(text)
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


T0 = "2017-01-22T08:07:11.220Z"


@pytest.mark.parametrize(
    "offset, expected",
    [
        ("PT0S", T0),
        ("P", T0),
        ("PT", T0),
        ("P1M3DT1H7M5S", "2017-02-25T09:14:16.220Z"),
        ("PT1H7M5S", "2017-01-22T09:14:16.220Z"),
        ("P1M3D", "2017-02-25T08:07:11.220Z"),
        ("P2W", "2017-02-05T08:07:11.220Z"),
        ("P1DT2H", "2017-01-23T10:07:11.220Z"),
        ("p1dt2h", "2017-01-23T10:07:11.220Z"),
        ("-PT1H", "2017-01-22T07:07:11.220Z"),
        ("+PT1H", "2017-01-22T09:07:11.220Z"),
        ("-P1DT1H", "2017-01-21T07:07:11.220Z"),
        ("P1Y-1M", "2017-12-22T08:07:11.220Z"),
        ("PT1H-30M", "2017-01-22T08:37:11.220Z"),
        ("PT1.5S", "2017-01-22T08:07:12.720Z"),
        ("PT-0.5S", "2017-01-22T08:07:10.720Z"),
        ("PT0,25S", "2017-01-22T08:07:11.470Z"),
    ],
)
def test_adding_offsets(offset: str, expected: str) -> None:
    assert Offset.parse(offset).add_to(at(T0)) == at(expected)


@pytest.mark.parametrize(
    "offset, start, expected",
    [
        ("P1M", "2016-01-31T10:00Z", "2016-02-29T10:00Z"),  # clamped to the month's end
        ("P1M", "2017-01-31T10:00Z", "2017-02-28T10:00Z"),
        ("P1Y", "2016-02-29T00:00Z", "2017-02-28T00:00Z"),
        ("P4Y", "2016-02-29T00:00Z", "2020-02-29T00:00Z"),
        ("P1M1D", "2017-01-31T00:00Z", "2017-03-01T00:00Z"),  # months, then days
        ("P1MT2H", "2017-01-30T23:00Z", "2017-03-01T01:00Z"),  # date part, then time part
        ("-P1M", "2017-03-31T00:00Z", "2017-02-28T00:00Z"),
    ],
)
def test_offsets_are_calendar_aware(offset: str, start: str, expected: str) -> None:
    assert Offset.parse(offset).add_to(at(start)) == at(expected)


def test_subtracting_flips_the_sign() -> None:
    t = at("2017-03-31T12:00Z")
    assert Offset.parse("PT1H").subtract_from(t) == at("2017-03-31T11:00Z")
    assert Offset.parse("+PT1H").subtract_from(t) == at("2017-03-31T11:00Z")
    assert Offset.parse("-PT1H").subtract_from(t) == at("2017-03-31T13:00Z")
    assert Offset.parse("P1M").subtract_from(t) == at("2017-02-28T12:00Z")
    # The date part goes first when subtracting too.
    assert Offset.parse("P1MT13H").subtract_from(at("2017-03-31T12:00Z")) == at("2017-02-27T23:00Z")


def test_offset_equality_is_on_amounts() -> None:
    assert Offset.parse("P1W") == Offset.parse("P7D")
    assert Offset.parse("-P-1D") == Offset.parse("P1D")
    assert Offset.parse("P1D") != Offset.parse("PT24H")
    assert str(Offset.parse("p1w")) == "p1w"


def test_effective_offset() -> None:
    assert effective_offset(HOURS, None) == Offset.parse("PT1H")
    assert effective_offset(MONTHS, None) == Offset.parse("P1M")
    assert effective_offset(Schedule.parse("* * * * *"), None) == Offset.parse("PT0S")
    assert effective_offset(HOURS, "PT0S") == Offset.parse("PT0S")
    with pytest.raises(InvalidOffset, match="Unable to parse offset period"):
        effective_offset(HOURS, "")


def test_offsets_leaving_the_supported_years_are_value_errors() -> None:
    with pytest.raises(ValueError, match="supported range"):
        Offset.parse("P10000Y").add_to(at("2017-01-01T00:00Z"))
    with pytest.raises(ValueError, match="supported range"):
        Offset.parse("PT99999999H").add_to(at("2017-01-01T00:00Z"))


# formatting parameters (docs/semantics.md#partition-parameters) -------------------------------------


@pytest.mark.parametrize(
    "schedule, parameter",
    [
        (HOURS, "2016-01-19T09"),
        (DAYS, "2016-01-19"),
        (WEEKS, "2016-01-19"),
        (MONTHS, "2016-01"),
        (YEARS, "2016"),
        (Schedule.parse("0 * * * *"), "2016-01-19T09:11:00Z"),
    ],
)
def test_to_parameter(schedule: Schedule, parameter: str) -> None:
    assert to_parameter(schedule, at(TIME)) == parameter


def test_to_parameter_pads_and_converts_to_utc() -> None:
    assert to_parameter(YEARS, at("0999-01-01T00:00Z")) == "0999"
    assert to_parameter(HOURS, at("2016-01-19T01:30+02:00")) == "2016-01-18T23"
    assert to_parameter(Schedule.parse("* * * * *"), at("2016-01-19T01:30:59.9+02:00")) == ("2016-01-18T23:30:00Z")


# parsing parameters, Styx's ParameterUtilTest (docs/semantics.md#partition-parameters) ---------------

STAR = Schedule.parse("* * * * *")
TWO_AM = Schedule.parse("0 2 * * *")
JAN_FIRST = Schedule.parse("* 3,8 1 1 *")


@pytest.mark.parametrize(
    "parameter, schedule, expected",
    [
        ("2017-03-25T10", HOURS, "2017-03-25T10:00Z"),
        ("2017-03-25T10:15", HOURS, "2017-03-25T10:00Z"),
        ("2017-03-25T10:15:25", HOURS, "2017-03-25T10:00Z"),
        ("2017-03-25T10:15:25.1", HOURS, "2017-03-25T10:00Z"),
        ("2017-03-25T10:15:25.12", HOURS, "2017-03-25T10:00Z"),
        ("2017-03-25T10:15:25.123", HOURS, "2017-03-25T10:00Z"),
        ("2017-03-25T10:15:25.123Z", HOURS, "2017-03-25T10:00Z"),
        ("2017-03-25T10:15:25+01:00", HOURS, "2017-03-25T09:00Z"),
        ("2017-03-25T10:15:25-01:00", HOURS, "2017-03-25T11:00Z"),
        ("2017-03-25", DAYS, "2017-03-25T00:00Z"),
        ("2017-03-25T10:15", DAYS, "2017-03-25T00:00Z"),
        ("2017-03-25T10:15:25", DAYS, "2017-03-25T00:00Z"),
        ("2017-03-25T10:15:25.1", DAYS, "2017-03-25T00:00Z"),
        ("2017-03-25T10:15:25.12", DAYS, "2017-03-25T00:00Z"),
        ("2017-03-25T10:15:25.123", DAYS, "2017-03-25T00:00Z"),
        ("2017-03-25T10:15:25.123Z", DAYS, "2017-03-25T00:00Z"),
        ("2017-03-25T10:15:25+01:00", DAYS, "2017-03-25T00:00Z"),
        ("2017-03-25T10:15:25-01:00", DAYS, "2017-03-25T00:00Z"),
        ("2017-03-25T23:00-03:00", DAYS, "2017-03-26T00:00Z"),
        ("2017-03-25T01:00+03:00", DAYS, "2017-03-24T00:00Z"),
        ("2017-03-25", WEEKS, "2017-03-20T00:00Z"),
        ("2017-03-25T10:10:10", WEEKS, "2017-03-20T00:00Z"),
        ("2017-03-27", WEEKS, "2017-03-27T00:00Z"),
        ("2017-03-27T10:10:10", WEEKS, "2017-03-27T00:00Z"),
        ("2017-03-29", WEEKS, "2017-03-27T00:00Z"),
        ("2017-03-29T10:10:10", WEEKS, "2017-03-27T00:00Z"),
        ("2017-03-27T00+01:00", WEEKS, "2017-03-20T00:00Z"),
        ("2017-03-26T23-01:00", WEEKS, "2017-03-27T00:00Z"),
        ("2017-02", MONTHS, "2017-02-01T00:00Z"),
        ("2017-02-03", MONTHS, "2017-02-01T00:00Z"),
        ("2017-02-03T04", MONTHS, "2017-02-01T00:00Z"),
        ("2017-02-01T00+01:00", MONTHS, "2017-01-01T00:00Z"),
        ("2017-01-31T23-01:00", MONTHS, "2017-02-01T00:00Z"),
        ("2017", YEARS, "2017-01-01T00:00Z"),
        ("2017-02", YEARS, "2017-01-01T00:00Z"),
        ("2017-02-03", YEARS, "2017-01-01T00:00Z"),
        ("2017-02-03T13", YEARS, "2017-01-01T00:00Z"),
        ("2017-01-01T00+01:00", YEARS, "2016-01-01T00:00Z"),
        ("2016-12-31T23-01:00", YEARS, "2017-01-01T00:00Z"),
        ("2017-03-25T10:15:25+01:00", STAR, "2017-03-25T09:15:00Z"),
        ("2017-03-25T10:15:25", TWO_AM, "2017-03-25T02:00:00Z"),
        ("2017-03-25T10:15:25", JAN_FIRST, "2017-01-01T08:59:00Z"),
        ("2017-01-01T07:15:25", JAN_FIRST, "2017-01-01T03:59:00Z"),
        ("2016-02-29", DAYS, "2016-02-29T00:00Z"),
        ("2017-03-25T10:15:59.9999999", STAR, "2017-03-25T10:15:00Z"),  # nanoseconds floor too
        ("2017-03-25T10:15:00.000000000Z", STAR, "2017-03-25T10:15:00Z"),
        ("2017-03-25T10:15:25+05:30:15", STAR, "2017-03-25T04:45:00Z"),
    ],
)
def test_parse_aligned_instant(parameter: str, schedule: Schedule, expected: str) -> None:
    assert parse_aligned_instant(parameter, schedule) == at(expected)


def _reason(parameter: str, reason: str) -> str:
    return f"Cannot parse time parameter {parameter} - Text '{parameter}' could not be parsed{reason}"


@pytest.mark.parametrize(
    "parameter, schedule, reason",
    [
        ("2015", DAYS, " at index 4"),
        ("2015", MONTHS, " at index 4"),
        ("2017-03-26+01:00", DAYS, ", unparsed text found at index 10"),
        ("2017-03-26+01:00", WEEKS, ", unparsed text found at index 10"),
        ("2017-04-31", DAYS, ": Invalid date 'APRIL 31'"),
        ("2017-02-29", DAYS, ": Invalid date 'February 29' as '2017' is not a leap year"),
        ("2017-13-01", DAYS, ": Invalid value for MonthOfYear (valid values 1 - 12): 13"),
        ("2017-00-01", DAYS, ": Invalid value for MonthOfYear (valid values 1 - 12): 0"),
        ("2017-01-32", DAYS, ": Invalid value for DayOfMonth (valid values 1 - 28/31): 32"),
        ("2017-13", MONTHS, ": Invalid value for MonthOfYear (valid values 1 - 12): 13"),
        ("2017-03-25T24", HOURS, ": Invalid value for HourOfDay (valid values 0 - 23): 24"),
        ("2017-03-25T10:60", HOURS, ": Invalid value for MinuteOfHour (valid values 0 - 59): 60"),
        ("2017-03-25T10:15:60", HOURS, ": Invalid value for SecondOfMinute (valid values 0 - 59): 60"),
        ("2017-03-25T1", HOURS, ", unparsed text found at index 10"),
        ("2017-03-25T10:1", HOURS, ", unparsed text found at index 13"),
        ("2017-03-25t10", HOURS, ", unparsed text found at index 10"),
        ("2017-03-25T10:15+01", HOURS, ", unparsed text found at index 16"),
        ("2017-03-25T10:15:25.", HOURS, ", unparsed text found at index 19"),
        ("2017-03-25 10:15", HOURS, ", unparsed text found at index 10"),
        ("2017-3-25", DAYS, " at index 5"),
        ("17-03-25", DAYS, " at index 0"),
        ("+2017-03-25", DAYS, " at index 0"),
        ("20170-03-25", DAYS, " at index 0"),
        ("", DAYS, " at index 0"),
        ("0000-01-01", DAYS, ": Invalid value for Year (valid values 1 - 9999): 0"),
        ("0000", YEARS, ": Invalid value for Year (valid values 1 - 9999): 0"),
        ("2017-03-25T10+19:00", HOURS, ": Value out of range: Hour[0-17], Minute[0-59], Second[0-59]"),
        ("2017-03-25T10+18:30", HOURS, ": Zone offset not in valid range: -18:00 to +18:00"),
        ("٢٠١٧-03-25", DAYS, " at index 0"),  # ASCII digits only
    ],
)
def test_unparsable_parameters(parameter: str, schedule: Schedule, reason: str) -> None:
    with pytest.raises(ParameterError) as raised:
        parse_aligned_instant(parameter, schedule)
    assert str(raised.value) == _reason(parameter, reason)
    assert isinstance(raised.value, ValueError)
    assert raised.value.parameter == parameter


def test_long_parameters_are_abbreviated_in_the_reason() -> None:
    parameter = "2017-03-25T10:15" + "x" * 100
    with pytest.raises(ParameterError) as raised:
        parse_aligned_instant(parameter, HOURS)
    shown = parameter[:64] + "..."
    assert str(raised.value) == (
        f"Cannot parse time parameter {parameter} - Text '{shown}' could not be parsed, unparsed text found at index 16"
    )


def test_parameters_outside_the_supported_years() -> None:
    with pytest.raises(ParameterError, match="supported range of years"):
        parse_aligned_instant("0001-01-01T00:00+01:00", HOURS)
    with pytest.raises(ParameterError, match="supported range of years"):
        parse_aligned_instant("0001-01-01T01:00", TWO_AM)  # no 02:00 before it


@settings(max_examples=200, deadline=None)
@given(schedule=any_schedule, t=instants)
def test_parameters_round_trip(schedule: Schedule, t: datetime) -> None:
    aligned = schedule.last(t)
    assert parse_aligned_instant(to_parameter(schedule, aligned), schedule) == aligned


@settings(max_examples=100, deadline=None)
@given(schedule=any_schedule, t=instants)
def test_any_instant_parameter_floors_to_last(schedule: Schedule, t: datetime) -> None:
    text = t.isoformat().replace("+00:00", "Z")
    assert parse_aligned_instant(text, schedule) == schedule.last(t)


# natural triggers (docs/semantics.md#natural-triggers) -----------------------------------------------


def _pair(first: str, second: str) -> tuple[datetime, datetime]:
    return at(first), at(second)


def test_initial_trigger_hourly_default_offset() -> None:
    pair = initial_natural_trigger(HOURS, effective_offset(HOURS, None), at("2016-03-14T15:30Z"))
    assert pair == _pair("2016-03-14T15:00Z", "2016-03-14T16:00Z")
    assert to_parameter(HOURS, pair[0]) == "2016-03-14T15"


def test_initial_trigger_daily_default_offset() -> None:
    pair = initial_natural_trigger(DAYS, effective_offset(DAYS, None), at("2016-03-14T15:30Z"))
    assert pair == _pair("2016-03-14T00:00Z", "2016-03-15T00:00Z")


def test_schedule_changes_recompute_the_trigger() -> None:
    now = at("2016-03-14T15:30Z")
    to_daily = initial_natural_trigger(DAYS, effective_offset(DAYS, None), now)
    assert to_parameter(DAYS, to_daily[0]) == "2016-03-14"
    assert to_daily[1] == at("2016-03-15T00:00Z")
    to_hourly = initial_natural_trigger(HOURS, effective_offset(HOURS, None), now)
    assert to_parameter(HOURS, to_hourly[0]) == "2016-03-14T15"


def test_offset_change_sequence() -> None:
    default = effective_offset(HOURS, None)
    assert advance_natural_trigger(HOURS, default, at("2016-03-14T14:00Z")) == _pair(
        "2016-03-14T15:00Z", "2016-03-14T16:00Z"
    )
    zero = effective_offset(HOURS, "PT0S")
    state = initial_natural_trigger(HOURS, zero, at("2016-03-14T15:30Z"))
    assert state == _pair("2016-03-14T16:00Z", "2016-03-14T16:00Z")
    assert advance_natural_trigger(HOURS, zero, state[0]) == _pair("2016-03-14T17:00Z", "2016-03-14T17:00Z")
    two_hours = effective_offset(HOURS, "PT2H")
    state = initial_natural_trigger(HOURS, two_hours, at("2016-03-14T17:30Z"))
    assert state == _pair("2016-03-14T16:00Z", "2016-03-14T18:00Z")
    assert advance_natural_trigger(HOURS, two_hours, state[0]) == _pair("2016-03-14T17:00Z", "2016-03-14T19:00Z")


def test_custom_cron_natural_triggers() -> None:
    cron = Schedule.parse("15,45 12,15 * * *")
    offset = effective_offset(cron, None)
    assert advance_natural_trigger(cron, offset, at("2016-03-14T12:45Z")) == _pair(
        "2016-03-14T15:15Z", "2016-03-14T15:15Z"
    )
    assert to_parameter(cron, at("2016-03-14T12:45Z")) == "2016-03-14T12:45:00Z"
    assert initial_natural_trigger(cron, offset, at("2016-03-14T15:30Z")) == _pair(
        "2016-03-14T15:45Z", "2016-03-14T15:45Z"
    )


def test_catch_up_advances_one_period_at_a_time() -> None:
    offset = effective_offset(HOURS, None)
    logical = at("2016-03-14T12:00Z")
    parameters = []
    while offset.add_to(logical) < at("2016-03-14T15:30Z"):
        parameters.append(to_parameter(HOURS, logical))
        logical, _ = advance_natural_trigger(HOURS, offset, logical)
    assert parameters == ["2016-03-14T12", "2016-03-14T13", "2016-03-14T14"]


def test_daily_with_a_day_and_two_hours_offset() -> None:
    offset = effective_offset(DAYS, "P1DT2H")
    assert offset.add_to(at("2017-06-29T00:00Z")) == at("2017-06-30T02:00Z")
    pair = initial_natural_trigger(DAYS, offset, at("2017-06-30T01:00Z"))
    assert pair == _pair("2017-06-29T00:00Z", "2017-06-30T02:00Z")


def test_negative_offset_fires_before_the_period_starts() -> None:
    offset = effective_offset(HOURS, "-PT30M")
    pair = initial_natural_trigger(HOURS, offset, at("2016-03-14T15:10Z"))
    assert pair == _pair("2016-03-14T16:00Z", "2016-03-14T15:30Z")


@settings(max_examples=150, deadline=None)
@given(schedule=any_schedule, now=instants)
def test_initial_trigger_is_the_first_period_still_to_fire(schedule: Schedule, now: datetime) -> None:
    offset = effective_offset(schedule, None)
    logical, fire = initial_natural_trigger(schedule, offset, now)
    assert fire == offset.add_to(logical) and schedule.is_aligned(logical)
    assert fire > now
    assert offset.add_to(schedule.previous(logical)) <= now
