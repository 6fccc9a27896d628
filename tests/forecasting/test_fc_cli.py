"""``queuecast forecast backtest|make`` on the simulator's large scenario (CN holidays, trend,
day noise), the published event, and the forecast landing in the warehouse via the streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from callcore.simulator import arrival_history
from forecasting import forecast_event, prepare, read_history
from forecasting.publish import PublishError
from ingest.contract import decode_event
from queuecast.cli import app

runner = CliRunner()
QUEUES = ("q01", "q09")


@pytest.fixture(scope="module")
def history_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten weeks of two queues of the large scenario, ending on 2026-04-29 (a Wednesday
    before the Labour Day holidays of 1-5 May); Qingming (4-6 April) inside."""
    frame = arrival_history("large", start=date(2026, 2, 19), days=70, interval_minutes=15)
    path = tmp_path_factory.mktemp("fc") / "history.csv"
    frame[frame.queue.isin(QUEUES)].to_csv(path, index=False)
    return path


def test_backtest_json_chooses_the_best_model_and_beats_the_baselines(
        history_csv: Path) -> None:
    saved = history_csv.parent / "table.csv"
    result = runner.invoke(app, ["forecast", "backtest", "--csv", str(history_csv),
                                 "--test-days", "14", "--jobs", "1", "--json",
                                 "--table", str(saved)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = pd.DataFrame(report["results"])
    table = pd.read_csv(saved)
    assert table.wape.tolist() == pytest.approx(rows.wape.tolist())
    assert table.chosen.tolist() == rows.chosen.tolist()
    assert sorted(rows.queue.unique()) == list(QUEUES)
    assert len(rows) == 2 * 6
    assert set(rows.horizon) == {"1d"}
    assert report["interval_minutes"] == 15
    for queue, group in rows.groupby("queue"):
        best = group.loc[group.wape.idxmin(), "model"]
        assert {"queue": queue, "horizon": "1d", "model": best} in report["chosen"]
        assert group.chosen.sum() == 1
        assert group.n_origins.eq(14).all()
    against = report["against_baselines"]["1d"]
    assert against["improvement"] >= 0.10
    assert 0.70 <= against["coverage_80"] <= 0.90
    assert set(report["cleaning_changes"]) == set(QUEUES)


def test_make_writes_intervals_holidays_and_the_published_event(
        history_csv: Path, tmp_path: Path) -> None:
    out, events = tmp_path / "forecast.csv", tmp_path / "forecast.jsonl"
    result = runner.invoke(app, [
        "forecast", "make", "--csv", str(history_csv), "--days", "7", "--out", str(out),
        "--model", "two_stage", "--event-file", str(events), "--forecast-id", "may-week",
        "--by", "planner-1", "--timezone", "Asia/Shanghai"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, parse_dates=["timestamp"])
    assert len(table) == 2 * 7 * 96
    assert (table.lower_95 <= table.lower_80).all()
    assert (table.lower_80 <= table.calls).all()
    assert (table.calls <= table.upper_80).all()
    assert (table.upper_80 <= table.upper_95).all()
    assert table.timestamp.min() == pd.Timestamp("2026-04-30 00:00")
    assert table.timestamp.max() == pd.Timestamp("2026-05-06 23:45")
    night = table[table.timestamp.dt.hour < 6]
    assert night.calls.sum() == 0  # the center's profile opens at 07:00
    daily = table.groupby([table.queue, table.timestamp.dt.date]).calls.sum().unstack(0)
    # Labour Day (1-5 May) is forecast far below the workday before it, per queue
    for queue in QUEUES:
        workday = daily.loc[date(2026, 4, 30), queue]
        assert daily.loc[date(2026, 5, 1):date(2026, 5, 5), queue].max() < 0.6 * workday
        assert daily.loc[date(2026, 5, 6), queue] > 0.8 * workday
    published = [decode_event(line) for line in events.read_bytes().splitlines()]
    assert [e.payload.queue for e in published] == list(QUEUES)
    for event in published:
        payload = event.payload
        assert event.type == "wfm.forecast_published"
        assert (payload.forecast_id, payload.model, payload.published_by) == (
            "may-week", "two_stage", "planner-1")
        assert payload.interval_minutes == 15
        assert len(payload.intervals) == 7 * 96
        assert payload.start == datetime(2026, 4, 29, 16, tzinfo=UTC)  # 00:00 at +08:00
        mine = table[table.queue == payload.queue]
        assert sum(i.calls for i in payload.intervals) == pytest.approx(mine.calls.sum(),
                                                                        abs=0.1)
        assert [i.calls_high for i in payload.intervals[28:32]] == pytest.approx(
            mine.upper_80.iloc[28:32].tolist(), abs=1e-3)


def test_make_applies_the_planners_adjustments(history_csv: Path, tmp_path: Path) -> None:
    def make(*extra: str) -> pd.DataFrame:
        out = tmp_path / f"f{len(extra)}.csv"
        result = runner.invoke(app, ["forecast", "make", "--csv", str(history_csv), "--days",
                                     "7", "--out", str(out), "--model", "weekday_average",
                                     "--queue", "q01", *extra])
        assert result.exit_code == 0, result.output
        return pd.read_csv(out, parse_dates=["timestamp"]).set_index("timestamp")

    plain = make()
    adjusted = make("--scale-day", "2026-05-06=1.5", "--override", "2026-05-06 10:00=123",
                    "--reason", "campaign")
    day = slice("2026-05-06 00:00", "2026-05-06 23:45")
    ten = pd.Timestamp("2026-05-06 10:00")
    assert adjusted.loc[ten, "calls"] == 123
    rest = adjusted.loc[day].drop(index=ten)
    assert rest.calls.to_numpy() == pytest.approx(1.5 * plain.loc[day].drop(index=ten).calls,
                                                  abs=1e-3)
    assert rest.upper_80.to_numpy() == pytest.approx(
        1.5 * plain.loc[day].drop(index=ten).upper_80, abs=1e-3)
    other = slice("2026-04-30", "2026-05-05 23:45")
    assert adjusted.loc[other].calls.tolist() == plain.loc[other].calls.tolist()
    result = runner.invoke(app, ["forecast", "make", "--csv", str(history_csv), "--days", "1",
                                 "--out", str(tmp_path / "x.csv"), "--model", "seasonal_naive",
                                 "--scale-day", "2026-05-01"])
    assert result.exit_code == 2
    assert "--scale-day '2026-05-01': write WHEN=NUMBER" in result.output


def test_bad_input_is_a_clear_error(tmp_path: Path, history_csv: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text("when,calls\n2026-01-01 00:00,3\n")
    result = runner.invoke(app, ["forecast", "backtest", "--csv", str(broken)])
    assert result.exit_code == 2
    assert "history error" in result.output
    assert "timestamp" in result.output
    result = runner.invoke(app, ["forecast", "make", "--csv", str(history_csv), "--days", "1",
                                 "--out", str(tmp_path / "x.csv"), "--model", "prophet"])
    assert result.exit_code == 2
    assert "unknown ['prophet']" in result.output
    result = runner.invoke(app, ["forecast", "backtest"])
    assert result.exit_code == 2
    assert "--csv FILE or --warehouse" in result.output


def test_an_event_refuses_a_forecast_it_cannot_place() -> None:
    frame = pd.DataFrame({"mean": [1.0], "lower_80": [0.0], "upper_80": [2.0]},
                         index=pd.DatetimeIndex(["2026-03-29 02:00"]))
    with pytest.raises(PublishError, match="timezone: cannot place"):
        forecast_event(frame, queue="q", timezone="Europe/Berlin", forecast_id="f",
                       model="m", published_by="p", now=datetime.now(UTC))
    with pytest.raises(PublishError, match="missing column"):
        forecast_event(frame[["mean"]], queue="q", timezone="UTC", forecast_id="f",
                       model="m", published_by="p", now=datetime.now(UTC))


@pytest.mark.parametrize(("day", "intervals"), [("2026-03-08", 96 - 4), ("2026-11-01", 96 + 4)])
def test_an_event_places_a_forecast_across_a_daylight_saving_change(
        day: str, intervals: int) -> None:
    # New York: 02:00-02:59 of 8 March does not exist (no calls to publish); 01:00-01:59 of
    # 1 November happens twice (the wall-clock forecast holds both hours: split in half).
    index = pd.date_range(day, periods=96, freq="15min")
    frame = pd.DataFrame({"mean": 4, "lower_80": 2, "upper_80": 6, "aht": 300.0},
                         index=index)  # whole numbers, as a planner's override may give
    event = forecast_event(frame, queue="q", timezone="America/New_York", forecast_id="f",
                           model="m", published_by="p", now=datetime.now(UTC))
    rows = event.payload.intervals
    starts = pd.DatetimeIndex([r.start for r in rows])
    assert len(rows) == intervals
    assert (starts[1:] - starts[:-1] == pd.Timedelta(minutes=15)).all()  # real time, no gaps
    assert event.payload.end - event.payload.start == pd.Timedelta(minutes=15 * intervals)
    assert sum(r.calls for r in rows) == 4.0 * (92 if intervals == 92 else 96)
    local = starts.tz_convert("America/New_York")
    repeated = [r for r, t in zip(rows, local, strict=True) if t.hour == 1]
    split = intervals == 100
    assert {(r.calls, r.calls_low, r.calls_high) for r in repeated} == (
        {(2.0, 1.0, 3.0)} if split else {(4.0, 2.0, 6.0)})
    assert len(repeated) == (8 if split else 4)
    assert {r.aht_s for r in rows} == {300.0}


def test_published_forecasts_land_in_the_warehouse(history_csv: Path, tmp_path: Path) -> None:
    """The planner's publish goes through the event log; the streams write the forecasts
    table (run as processes: chdb wants its data folder to itself)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "QUEUECAST_HOME": str(home), "QUEUECAST_LOG_LEVEL": "ERROR"}

    def queuecast(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "queuecast", *args], env=env, cwd=home,
                              capture_output=True, text=True, timeout=240, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    queuecast("forecast", "make", "--csv", str(history_csv), "--days", "2", "--out",
              str(tmp_path / "f.csv"), "--model", "weekday_average", "--publish")
    report = json.loads(queuecast("streams", "run", "--until-idle", "--json").stdout)
    assert report["tables"]["forecasts"]["rows"] == 2 * 2 * 96


def test_prepare_names_unknown_queues(history_csv: Path) -> None:
    with pytest.raises(ValueError, match=r"queues: \['q99'\] are not in the history"):
        prepare(pd.read_csv(history_csv), queues=["q99"])


def test_a_day_without_calls_in_the_warehouse_is_zero_not_missing() -> None:
    from queuecast.forecast_cli import _quiet_days

    found = pd.DataFrame({"timestamp": pd.to_datetime(["2026-03-03 09:00", "2026-03-05 10:15",
                                                       "2026-03-05 09:00"]),
                          "queue": ["a", "a", "b"], "calls": [3.0, 1.0, 2.0],
                          "aht": [100.0, 90.0, 80.0]})
    quiet = _quiet_days(found, since=date(2026, 3, 2), until=date(2026, 3, 7))
    # a: from its first day (the 3rd) the 4th and 6th had no calls; b: only the 6th
    assert list(zip(quiet.queue, quiet.timestamp.dt.day, strict=True)) == [
        ("a", 4), ("a", 6), ("b", 6)]
    assert quiet.calls.eq(0).all()
    history = read_history(pd.concat([found, quiet]))
    assert history["a"].loc["2026-03-04", "calls"].eq(0).all()


def test_a_queue_whose_handle_times_stopped_still_gets_its_calls_forecast() -> None:
    from forecasting import forecast_queues

    stamps = pd.date_range("2026-03-02", periods=70 * 24, freq="h")
    frame = pd.DataFrame({"timestamp": stamps, "calls": 10.0,
                          "aht": [180.0 if t < pd.Timestamp("2026-03-09") else float("nan")
                                  for t in stamps]})
    prepared = prepare(frame, country="CN", horizon_days=3)
    forecast = forecast_queues(prepared, days=2, model="seasonal_naive")["all"]
    assert forecast["mean"].tolist() == pytest.approx([10.0] * 48)  # 10 weeks of 10 an hour
    assert forecast["aht"].isna().all()  # no handle time in the last 8 weeks
