"""Business calendar (CC-05): hours, lunch, make-up workdays, lunar holidays, overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcore.calendar import (
    BusinessCalendar,
    CalendarConfig,
    CalendarConfigError,
    CalendarDay,
    load_calendar,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def config(**extra: Any) -> dict[str, Any]:
    """A clinic with a lunch break and Saturday mornings, a hotline open around the clock
    that keeps reduced hours on public holidays, day and evening shifts, and a night line."""
    raw: dict[str, Any] = {
        "schedules": {
            "clinic": {
                "weekly": {"mon_fri": ["08:00-12:00", "13:30-17:30"], "sat": ["09:00-12:00"]},
            },
            "hotline": {
                "weekly": {"mon_fri": ["00:00-24:00"], "sat": ["00:00-24:00"],
                           "sun": ["00:00-24:00"]},
                "holiday_hours": ["09:00-18:00"],
            },
            "evening": {
                "weekly": {"mon_fri": ["09:00-17:00", "18:00-22:00"]},
            },
            "night": {
                "weekly": {"mon_fri": ["18:00-24:00"], "sat": ["00:00-06:00"]},
            },
        },
    }
    raw.update(extra)
    return raw


@pytest.fixture(scope="module")
def cal() -> BusinessCalendar:
    return load_calendar(config())


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def test_cc05_spring_festival_2026_is_a_holiday_with_make_up_saturdays(
    cal: BusinessCalendar,
) -> None:
    # The official schedule, as chinese_calendar has it: Feb 15-23 off, Feb 14 and 28 worked.
    for day in range(15, 24):
        assert chinese_calendar.get_holiday_detail(date(2026, 2, day)) == (
            True, "Spring Festival")
    for day in (14, 28):
        assert date(2026, 2, day).weekday() == 5
        assert chinese_calendar.get_holiday_detail(date(2026, 2, day)) == (
            False, "Spring Festival")

    assert cal.state("clinic", local(2026, 2, 17, 10)) == "holiday"
    assert cal.state("clinic", local(2026, 2, 21, 10)) == "holiday"  # a Saturday inside it
    assert cal.holiday_name(local(2026, 2, 17, 10)) == "Spring Festival"
    assert cal.day(date(2026, 2, 23)) == CalendarDay(kind="holiday", name="Spring Festival")
    # Make-up Saturdays are workdays with Monday's hours, lunch break included.
    for day in (14, 28):
        assert cal.day(date(2026, 2, day)).kind == "workday"
        assert cal.holiday_name(date(2026, 2, day)) is None
        assert cal.state("clinic", local(2026, 2, day, 16)) == "open"
        assert cal.state("clinic", local(2026, 2, day, 12, 30)) == "lunch"
    assert cal.state("clinic", local(2026, 2, 7, 16)) == "closed"  # an ordinary Saturday
    assert cal.state("clinic", local(2026, 2, 24, 10)) == "open"
    # The hotline keeps reduced hours on holidays.
    assert cal.state("hotline", local(2026, 2, 17, 10)) == "open"
    assert cal.state("hotline", local(2026, 2, 17, 20)) == "holiday"


def test_cc05_2027_lunar_holidays_come_from_the_rule_based_fallback(
    cal: BusinessCalendar,
) -> None:
    with pytest.raises(NotImplementedError):
        chinese_calendar.get_holiday_detail(date(2027, 2, 8))
    rules = holidays.China(years=2027)
    assert "Spring Festival" in rules[date(2027, 2, 6)]  # lunar new year 2027
    assert rules[date(2027, 6, 9)] == "Dragon Boat Festival"
    assert rules[date(2027, 9, 15)] == "Mid-Autumn Festival"

    assert cal.state("clinic", local(2027, 2, 8, 10)) == "holiday"  # a Monday
    assert "Spring Festival" in (cal.holiday_name(date(2027, 2, 6)) or "")
    assert cal.state("clinic", local(2027, 6, 9, 10)) == "holiday"
    assert cal.state("clinic", local(2027, 9, 15, 10)) == "holiday"
    assert cal.state("clinic", local(2027, 2, 11, 10)) == "open"


def test_cc05_admin_overrides_for_2027_win_over_the_fallback() -> None:
    assert date(2027, 2, 10) in holidays.China(years=2027)  # the fallback's bridge day
    cal = load_calendar(config(overrides={
        date(2027, 2, 10): {"kind": "regular"},
        date(2027, 2, 20): {"kind": "workday", "name": "春节"},
        date(2027, 2, 12): {"kind": "holiday", "name": "春节"},
    }))
    assert cal.state("clinic", local(2027, 2, 10, 10)) == "open"
    assert cal.state("clinic", local(2027, 2, 20, 15)) == "open"  # a Saturday, worked
    assert cal.state("clinic", local(2027, 2, 12, 10)) == "holiday"
    assert cal.holiday_name(local(2027, 2, 12, 10)) == "春节"
    assert cal.state("clinic", local(2027, 2, 8, 10)) == "holiday"  # fallback still applies


def test_cc05_complete_years_ignore_the_rule_based_guesses() -> None:
    cal = load_calendar(config(
        overrides={date(2027, 2, 8): {"kind": "holiday", "name": "春节"}},
        complete_years=[2027],
    ))
    assert cal.state("clinic", local(2027, 2, 8, 10)) == "holiday"
    assert cal.state("clinic", local(2027, 2, 5, 10)) == "open"  # fallback's New Year's Eve
    assert cal.state("clinic", local(2027, 10, 1, 10)) == "open"  # not entered: regular
    assert cal.state("clinic", local(2026, 10, 1, 10)) == "holiday"  # other years unchanged


def test_cc05_lunch_is_a_midday_gap_between_two_ranges(cal: BusinessCalendar) -> None:
    monday = (2026, 3, 2)
    assert cal.state("clinic", local(*monday, 7, 59)) == "closed"
    assert cal.state("clinic", local(*monday, 8, 0)) == "open"
    assert cal.state("clinic", local(*monday, 11, 59, 59)) == "open"
    assert cal.state("clinic", local(*monday, 12, 0)) == "lunch"
    assert cal.state("clinic", local(*monday, 13, 29)) == "lunch"
    assert cal.state("clinic", local(*monday, 13, 30)) == "open"
    assert cal.state("clinic", local(*monday, 17, 30)) == "closed"
    assert not cal.is_open("clinic", local(*monday, 12, 30))
    assert cal.is_open("clinic", local(*monday, 9))
    # An evening gap is outside the lunch window: closed.
    assert cal.state("evening", local(*monday, 17, 30)) == "closed"
    narrow = load_calendar(config(schedules={"clinic": {
        "weekly": {"mon_fri": ["08:00-12:00", "13:30-17:30"]},
        "lunch_window": "12:00-13:00",
    }}))
    assert narrow.state("clinic", local(*monday, 12, 30)) == "closed"


def test_cc05_instants_in_utc_use_the_calendars_local_date_and_time(
    cal: BusinessCalendar,
) -> None:
    # Monday 2026-03-02 09:00 in Shanghai is 01:00 UTC.
    assert cal.state("clinic", datetime(2026, 3, 2, 1, 0, tzinfo=UTC)) == "open"
    # Sunday 23:30 UTC is already Monday 07:30 in Shanghai: closed, not a Sunday.
    assert cal.state("clinic", datetime(2026, 3, 1, 23, 30, tzinfo=UTC)) == "closed"
    # Friday 17:00 UTC is Saturday 01:00 local; Friday 02:00 UTC is Friday 10:00 local.
    assert cal.state("clinic", datetime(2026, 3, 6, 2, 0, tzinfo=UTC)) == "open"
    assert cal.holiday_name(datetime(2026, 2, 14, 16, 30, tzinfo=UTC)) == "Spring Festival"
    assert cal.holiday_name(datetime(2026, 2, 14, 15, 30, tzinfo=UTC)) is None
    with pytest.raises(ValueError, match=r"at=.*no timezone"):
        cal.state("clinic", datetime(2026, 3, 2, 9))

    new_york = load_calendar(config(timezone="America/New_York", country="US"))
    assert new_york.state("clinic", datetime(2026, 3, 2, 14, 0, tzinfo=UTC)) == "open"
    assert new_york.state("clinic", datetime(2026, 3, 2, 2, 0, tzinfo=UTC)) == "closed"


def test_cc05_another_country_uses_the_holidays_package() -> None:
    cal = load_calendar(config(timezone="America/New_York", country="US"))
    assert holidays.US(years=2027)[date(2027, 7, 5)] == "Independence Day (observed)"
    assert cal.state("clinic", datetime(2027, 7, 5, 10, tzinfo=ZoneInfo("America/New_York"))) \
        == "holiday"
    assert cal.day(date(2027, 2, 8)).kind == "regular"  # no Chinese holidays here
    none = load_calendar(config(country=None))
    assert none.day(date(2026, 2, 17)).kind == "regular"


def test_cc05_special_working_and_non_working_days_per_schedule() -> None:
    cal = load_calendar(config(schedules={
        "clinic": {
            "weekly": {"mon_fri": ["08:00-12:00", "13:30-17:30"]},
            "open_days": {date(2026, 2, 17): ["09:00-12:00"], date(2026, 3, 8): ["10:00-16:00"]},
            "closed_days": {date(2026, 3, 4): "staff training"},
            "makeup_hours": ["09:00-17:00"],
        },
    }))
    assert cal.state("clinic", local(2026, 2, 17, 10)) == "open"  # open on a holiday
    assert cal.state("clinic", local(2026, 2, 17, 14)) == "closed"
    assert cal.state("clinic", local(2026, 3, 8, 15)) == "open"  # a Sunday
    assert cal.state("clinic", local(2026, 3, 4, 10)) == "holiday"
    assert cal.holiday_name(local(2026, 3, 4, 10)) is None  # not a public holiday
    assert cal.state("clinic", local(2026, 2, 14, 12, 30)) == "open"  # makeup_hours, no lunch
    assert cal.schedules == ("clinic",)


def test_cc05_next_change_examples(cal: BusinessCalendar) -> None:
    assert cal.next_change("clinic", local(2026, 3, 2, 12, 15)) == local(2026, 3, 2, 13, 30)
    assert cal.next_change("clinic", local(2026, 3, 6, 18)) == local(2026, 3, 7, 9)
    assert cal.next_change("clinic", local(2026, 3, 7, 12)) == local(2026, 3, 9, 8)
    # Closed Friday evening, then the whole Spring Festival: the state changes at midnight
    # into the holiday, and the holiday lasts until the make-up Saturday.
    assert cal.next_change("clinic", local(2026, 2, 13, 18)) == local(2026, 2, 14, 8)
    assert cal.next_change("clinic", local(2026, 2, 14, 18)) == local(2026, 2, 15)
    assert cal.next_change("clinic", local(2026, 2, 16, 10)) == local(2026, 2, 24)
    change = cal.next_change("clinic", datetime(2026, 3, 2, 4, 15, tzinfo=UTC))
    assert change == local(2026, 3, 2, 13, 30)
    assert change is not None
    assert change.tzinfo == SHANGHAI
    assert cal.next_change("hotline", local(2026, 3, 2, 10)) == local(2026, 4, 4)  # 清明节
    assert cal.next_change("hotline", local(2026, 3, 2, 10), horizon=timedelta(days=7)) is None


def test_cc05_next_change_none_when_the_state_never_changes() -> None:
    always = load_calendar(config(schedules={"always": {
        "weekly": {"mon_fri": ["00:00-24:00"], "sat": ["00:00-24:00"], "sun": ["00:00-24:00"]},
        "holiday_hours": ["00:00-24:00"], "makeup_hours": ["00:00-24:00"],
    }}))
    assert always.state("always", local(2026, 2, 17)) == "open"
    assert always.next_change("always", local(2026, 2, 17)) is None


_CAL = load_calendar(config())


@settings(max_examples=150, deadline=None)
@given(
    at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.just(UTC)),
    schedule=st.sampled_from(["clinic", "hotline", "evening", "night"]),
)
def test_cc05_state_is_constant_until_next_change_and_differs_there(
    at: datetime, schedule: str
) -> None:
    state = _CAL.state(schedule, at)
    change = _CAL.next_change(schedule, at)
    if change is None:
        horizon = timedelta(days=366)
        for fraction in (0.1, 0.5, 0.9, 1.0):
            assert _CAL.state(schedule, at + horizon * fraction) == state
        return
    assert change > at
    for fraction in (0.0, 0.25, 0.5, 0.75, 0.999):
        assert _CAL.state(schedule, at + (change - at) * fraction) == state
    assert _CAL.state(schedule, change - timedelta(microseconds=1)) == state
    assert _CAL.state(schedule, change) != state


def test_cc05_yaml_file_loads_and_errors_name_the_file_and_path(tmp_path: Path) -> None:
    good = tmp_path / "calendar.yaml"
    good.write_text(
        "timezone: Asia/Shanghai\n"
        "overrides:\n"
        "  2027-02-10: {kind: regular}\n"
        "schedules:\n"
        "  clinic:\n"
        "    weekly:\n"
        "      mon_fri: [08:00-12:00, 13:30-17:30]\n"
        "    closed_days:\n"
        "      2026-03-04: staff training\n",
        encoding="utf-8",
    )
    cal = load_calendar(good)
    assert cal.state("clinic", local(2027, 2, 10, 10)) == "open"
    assert cal.state("clinic", local(2026, 3, 4, 10)) == "holiday"

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "schedules:\n"
        "  clinic:\n"
        "    weekly:\n"
        "      mon: [08:00-12:00, 11:00-13:00, '8 to 12', 22:00-02:00]\n",
        encoding="utf-8",
    )
    with pytest.raises(CalendarConfigError) as info:
        load_calendar(bad)
    message = str(info.value)
    assert message.startswith(str(bad))
    assert "schedules.clinic.weekly.mon[1]: '11:00-13:00' overlaps" in message
    assert "schedules.clinic.weekly.mon[2]: '8 to 12' is not a time range" in message
    assert "schedules.clinic.weekly.mon[3]: '22:00-02:00' ends before it starts" in message

    with pytest.raises(CalendarConfigError, match=r"schedule 'clinic'.*\$\.weekly\.tue\[0\]"):
        load_calendar({"schedules": {"clinic": {"weekly": {"tue": [8]}}}})
    with pytest.raises(CalendarConfigError, match="unknown field `opening`"):
        load_calendar({"schedules": {"clinic": {"opening": []}}})
    with pytest.raises(CalendarConfigError, match="timezone: 'Mars/Base' is not an IANA"):
        load_calendar({"timezone": "Mars/Base"})
    with pytest.raises(CalendarConfigError, match="country/subdivision: Country ZZ"):
        load_calendar({"country": "ZZ"})
    with pytest.raises(CalendarConfigError, match=r"overrides\.2027-02-12: a holiday needs a name"):
        load_calendar({"overrides": {"2027-02-12": {"kind": "holiday"}}})
    with pytest.raises(CalendarConfigError, match="complete_years: 2028 has no overrides"):
        load_calendar({"complete_years": [2028]})
    with pytest.raises(CalendarConfigError, match="both open_days and closed_days"):
        load_calendar({"schedules": {"x": {"open_days": {"2026-03-04": ["09:00-10:00"]},
                                           "closed_days": {"2026-03-04": "training"}}}})
    (tmp_path / "broken.yaml").write_text("schedules: [\n", encoding="utf-8")
    with pytest.raises(CalendarConfigError, match="not valid YAML"):
        load_calendar(tmp_path / "broken.yaml")


def test_cc05_unknown_schedule_names_the_known_ones(cal: BusinessCalendar) -> None:
    with pytest.raises(KeyError, match="unknown schedule 'clinc'; known: clinic, hotline"):
        cal.state("clinc", local(2026, 3, 2, 9))


def test_cc05_adjacent_ranges_merge_and_24_00_ends_the_day() -> None:
    cal = BusinessCalendar(CalendarConfig(schedules={}))
    assert cal.schedules == ()
    merged = load_calendar(config(schedules={"x": {
        "weekly": {"mon_fri": ["08:00-12:00", "12:00-18:00"], "sat": ["20:00-24:00"]},
    }}))
    assert merged.state("x", local(2026, 3, 2, 12)) == "open"
    assert merged.next_change("x", local(2026, 3, 2, 9)) == local(2026, 3, 2, 18)
    assert merged.state("x", local(2026, 3, 7, 23, 59, 59)) == "open"
    assert merged.next_change("x", local(2026, 3, 7, 21)) == local(2026, 3, 8)
