# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Interval KPIs (RP-02, RP-04)
#
# A week of inbound traffic per queue from the warehouse: offered, answered and abandoned
# calls per 15-minute interval, service level against its target, ASA and AHT per hour,
# and the daily and weekly queue tables. Every figure comes from `warehouse.reports`; each
# KPI is defined once in [docs/metrics.md, "Report KPIs"](../docs/metrics.md#report-kpis).
#
# The warehouse is `$QUEUECAST_WAREHOUSE` (`chdb:///path` or `clickhouse://...`), else the
# one of your queuecast settings. Change the window and targets in the parameters cell.

# %%
import pandas as pd
import plotly.express as px
import plotly.io as pio
from IPython.display import display

from warehouse import reports

# isort: split
import analyst  # notebooks/analyst.py: the kernel runs in this folder

pio.renderers.default = "plotly_mimetype"  # JupyterLab, Notebook 7, VS Code; no bundled JS
pd.set_option("display.precision", 3)

# %% tags=["parameters"]
START = None  # first local day, e.g. "2026-03-02"; None: 7 days before END
END = None  # end of the window (exclusive), e.g. "2026-03-09"; None: after the latest call
TIME_ZONE = "Asia/Shanghai"  # the clock of intervals, hours and days (the demo center's)
QUEUES = None  # e.g. ["sales", "support"]; None: every queue
SL_THRESHOLD_S = 20.0  # T of "answered within T" (s)
SL_TARGET = 0.80  # the service-level goal drawn on the charts

# %%
wh = analyst.connect()
start, end = analyst.report_window(wh, start=START, end=END, time_zone=TIME_ZONE)
options = {"start": start, "end": end, "time_zone": TIME_ZONE, "queues": QUEUES,
           "sl_threshold_s": SL_THRESHOLD_S}
print(f"{wh.dialect} warehouse, calls offered in [{start}, {end})")

# %% [markdown]
# ## The week per queue (RP-04)
#
# One row per queue over the whole window. Service level is answered within T ÷ (answered
# + abandoned), the reports' default variant; ASA is the mean wait of answered calls, AHT
# the mean talk + hold + after-call work of answered calls.

# %%
week = reports.queue_report(wh, **options)
analyst.check_kpis(week, "queue_report")
assert not week.empty, f"no offered calls in [{start}, {end}); widen START/END"
display(week)

# %% [markdown]
# ## Offered, answered and abandoned per 15 minutes (RP-02)
#
# Intervals are on the `TIME_ZONE` clock. Intervals without offered calls are absent from
# the report; the chart draws them as zero so that closed hours read as gaps in traffic.

# %%
COUNTS = ["offered", "answered", "abandoned"]
traffic = reports.interval_traffic(wh, grain="15m", **options)
analyst.check_kpis(traffic, "interval_traffic 15m")

grid = pd.MultiIndex.from_product(
    [week["queue"], pd.date_range(start, end, freq="15min", inclusive="left")],
    names=["queue", "interval_start"])
full = traffic.set_index(["queue", "interval_start"])[COUNTS].reindex(grid, fill_value=0)
long = full.reset_index().melt(id_vars=["queue", "interval_start"], value_vars=COUNTS,
                               var_name="measure", value_name="calls")
fig = px.line(long, x="interval_start", y="calls", color="measure", facet_row="queue",
              title="Calls per 15-minute interval", height=250 * len(week) + 100)
fig.update_yaxes(matches=None)
fig.show()

# %% [markdown]
# ## Service level by interval against the target
#
# Each point is one 15-minute interval with at least one answered or abandoned call; the
# dashed line is `SL_TARGET`. The table counts the intervals that met it.

# %%
scored = traffic[traffic["service_level"].notna()]
fig = px.line(scored, x="interval_start", y="service_level", color="queue", markers=True,
              title=f"Service level ({SL_THRESHOLD_S:g} s) per 15 minutes",
              range_y=[-0.02, 1.02])
fig.add_hline(y=SL_TARGET, line_dash="dash", annotation_text=f"target {SL_TARGET:.0%}")
fig.show()

met = scored.assign(met=scored["service_level"] >= SL_TARGET).groupby("queue")["met"]
display(pd.DataFrame({"intervals": met.size(), "met_target": met.sum(),
                      "share_met": met.mean()}).reset_index())

# %% [markdown]
# ## ASA and AHT by hour
#
# Hourly intervals per queue: ASA (the wait callers see) above, AHT (the work per call)
# below. An hour without answered calls has neither.

# %%
hourly = reports.interval_traffic(wh, grain="1h", **options)
analyst.check_kpis(hourly, "interval_traffic 1h")
seconds = hourly.melt(id_vars=["queue", "interval_start"], value_vars=["asa_s", "aht_s"],
                      var_name="kpi", value_name="seconds").dropna(subset=["seconds"])
fig = px.line(seconds, x="interval_start", y="seconds", color="queue", facet_row="kpi",
              markers=True, title="ASA and AHT per hour (s)", height=600)
fig.update_yaxes(matches=None)
fig.show()

# %% [markdown]
# ## Daily queue table
#
# The same KPIs per local day and queue, and the offered calls per day.

# %%
daily = reports.interval_traffic(wh, grain="1d", **options)
analyst.check_kpis(daily, "interval_traffic 1d")
daily = daily.assign(day=daily["interval_start"].dt.date).drop(columns="interval_start")
display(daily.set_index(["day", "queue"]))

fig = px.bar(daily, x="day", y=["answered", "abandoned"], facet_col="queue",
             title="Answered and abandoned calls per day")
fig.show()

# %% [markdown]
# ## Consistency checks
#
# Every grain must add up to the weekly queue table: a broken report fails this run.

# %%
for name, frame in {"15 minutes": traffic, "hours": hourly, "days": daily}.items():
    summed = frame.groupby("queue")[[*COUNTS, "answered_within"]].sum()
    expected = week.set_index("queue")[[*COUNTS, "answered_within"]]
    pd.testing.assert_frame_equal(summed.loc[expected.index], expected, check_dtype=False,
                                  obj=f"{name} summed vs queue_report")
print(f"{len(week)} queue(s), {int(week['offered'].sum())} offered calls: all grains agree")
wh.close()
