"""Day calendar for forecasting: CN official days off, make-up workdays, lunar holidays in
years chinese_calendar does not publish, other countries, user events."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.calendar import DAY_TYPES, CalendarError, day_calendar, read_events


def days(frame: pd.DataFrame, column: str, value: object) -> list[str]:
    return [d.strftime("%Y-%m-%d") for d in frame.index[frame[column] == value]]


def test_columns_index_and_weekday() -> None:
    cal = day_calendar("2026-01-01", "2026-12-31")
    assert list(cal.columns) == ["weekday", "holiday", "makeup_workday", "holiday_name",
                                 "event", "day_type"]
    assert cal.index.name == "date"
    assert len(cal) == 365
    assert cal.loc["2026-01-05", "weekday"] == 0  # a Monday
    assert set(cal["day_type"]) == set(DAY_TYPES)
    assert cal["holiday"].dtype == bool
    assert cal["makeup_workday"].dtype == bool


def test_cn_2026_spring_festival_and_makeup_days() -> None:
    cal = day_calendar("2026-02-01", "2026-03-08")
    assert days(cal, "holiday", True) == [f"2026-02-{d}" for d in range(15, 24)]
    assert days(cal, "makeup_workday", True) == ["2026-02-14", "2026-02-28"]
    assert cal.loc["2026-02-14", "day_type"] == "makeup_workday"
    assert cal.loc["2026-02-14", "weekday"] == 5
    assert cal.loc["2026-02-17", "holiday_name"] == "Spring Festival"
    assert cal.loc["2026-02-14", "holiday_name"] == "Spring Festival"
    assert cal.loc["2026-02-21", "day_type"] == "holiday"  # a Saturday inside the break
    assert cal.loc["2026-03-07", "day_type"] == "weekend"
    assert cal.loc["2026-03-06", "day_type"] == "workday"


def test_cn_2025_national_day_and_2026_year_totals() -> None:
    cal = day_calendar("2025-09-26", "2025-10-12")
    assert days(cal, "holiday", True) == [f"2025-10-0{d}" for d in range(1, 9)]
    assert days(cal, "makeup_workday", True) == ["2025-09-28", "2025-10-11"]
    assert cal.loc["2025-10-06", "holiday_name"] == "Mid-autumn Festival"
    year = day_calendar("2026-01-01", "2026-12-31")
    # The State Council's 2026 schedule: 33 days off, 6 make-up workdays.
    assert int(year["holiday"].sum()) == 33
    assert days(year, "makeup_workday", True) == [
        "2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"]


def test_lunar_holidays_beyond_chinese_calendar_years() -> None:
    # chinese_calendar 1.11 stops at 2026; 2027's Spring Festival (6 February) is lunar.
    cal = day_calendar("2027-01-25", "2027-02-20")
    holidays = days(cal, "holiday", True)
    assert "2027-02-06" in holidays
    assert "2027-02-05" in holidays  # New Year's Eve
    assert "Spring Festival" in cal.loc["2027-02-06", "holiday_name"]
    assert "2027-01-29" not in holidays
    mid_autumn = day_calendar("2027-09-15", "2027-09-15")
    assert bool(mid_autumn["holiday"].iloc[0])
    assert not cal["makeup_workday"].any()


def test_calendar_spanning_published_and_rule_based_years() -> None:
    cal = day_calendar("2026-12-30", "2027-01-02")
    assert days(cal, "holiday", True) == ["2027-01-01"]


def test_other_country_uses_holidays_package() -> None:
    cal = day_calendar("2025-07-01", "2025-07-06", country="US")
    assert days(cal, "holiday", True) == ["2025-07-04"]
    assert cal.loc["2025-07-04", "holiday_name"] == "Independence Day"
    assert days(cal, "day_type", "weekend") == ["2025-07-05", "2025-07-06"]
    assert not cal["makeup_workday"].any()


def test_events_single_and_multi_day_and_overlapping() -> None:
    events = pd.DataFrame(
        {
            "date": ["2026-03-02", "2026-03-04", "2026-03-05"],
            "end": [None, "2026-03-06", None],
            "name": ["campaign", "outage", "mailing"],
        }
    )
    cal = day_calendar("2026-03-01", "2026-03-07", events=events)
    assert cal["event"].tolist() == ["", "campaign", "", "outage", "outage; mailing", "outage",
                                     ""]
    assert (cal["day_type"] != "holiday").all()


def test_events_outside_the_range_are_ignored() -> None:
    events = pd.DataFrame({"date": ["2020-01-01"], "name": ["old"]})
    assert (day_calendar("2026-03-01", "2026-03-02", events=events)["event"] == "").all()


def test_read_events_normalises_and_sorts() -> None:
    table = read_events(pd.DataFrame({"Date": ["2026-05-03 10:00", "2026-05-01"],
                                      "Name": [" b ", "a"]}))
    assert table["name"].tolist() == ["a", "b"]
    assert table["date"].tolist() == [pd.Timestamp("2026-05-01"), pd.Timestamp("2026-05-03")]
    assert table["end"].tolist() == table["date"].tolist()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"date": ["2026-01-01"]}), "missing column 'name'"),
        (pd.DataFrame({"date": ["soon"], "name": ["x"]}), "column 'date' row 0 has 'soon'"),
        (pd.DataFrame({"date": ["2026-01-01", "2026-01-02"], "name": ["x", " "]}),
         "column 'name' row 1 is empty"),
        (pd.DataFrame({"date": ["2026-01-05"], "end": ["2026-01-01"], "name": ["x"]}),
         "row 0 ends (2026-01-01) before it starts"),
        (pd.DataFrame({"date": ["2026-01-05"], "end": ["later"], "name": ["x"]}),
         "column 'end' row 0"),
    ],
)
def test_read_events_errors(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(CalendarError) as raised:
        read_events(frame)
    assert message in str(raised.value)


def test_argument_errors() -> None:
    with pytest.raises(CalendarError, match="before start"):
        day_calendar("2026-02-01", "2026-01-01")
    with pytest.raises(CalendarError, match="not a date"):
        day_calendar("someday", "2026-01-01")
    with pytest.raises(CalendarError, match="ISO 3166"):
        day_calendar("2026-01-01", "2026-01-02", country="ZZ")
    with pytest.raises(CalendarError, match="must be a DataFrame"):
        read_events([("2026-01-01", "x")])  # type: ignore[arg-type]


def test_read_events_output_is_accepted_again() -> None:
    table = read_events(pd.DataFrame({"date": ["2026-03-02"], "end": ["2026-03-03"],
                                      "name": ["campaign"]}))
    cal = day_calendar("2026-03-01", "2026-03-04", events=table)
    assert cal["event"].tolist() == ["", "campaign", "campaign", ""]
