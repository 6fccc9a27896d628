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
# # Agent performance (RP-03, RP-06)
#
# Per agent over a window: calls handled and AHT, occupancy, not-ready time by reason,
# answer rate of offered rings, and survey scores. Every figure comes from
# `warehouse.reports`; each KPI is defined once in
# [docs/metrics.md, "Report KPIs"](../docs/metrics.md#report-kpis).
#
# The warehouse is `$QUEUECAST_WAREHOUSE` (`chdb:///path` or `clickhouse://...`), else the
# one of your queuecast settings. Change the window in the parameters cell.

# %%
import numpy as np
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
TIME_ZONE = "Asia/Shanghai"  # the clock of the window (the demo center's)
AGENTS = None  # e.g. ["support-early-001"]; None: every agent
SATISFIED_RATIO = 0.8  # a survey is satisfied when score >= this share of the maximum

# %%
wh = analyst.connect()
start, end = analyst.report_window(wh, start=START, end=END, time_zone=TIME_ZONE)
window = {"start": start, "end": end, "time_zone": TIME_ZONE}
print(f"{wh.dialect} warehouse, window [{start}, {end})")

# %% [markdown]
# ## The agent table (RP-03)
#
# *Handled*: answered calls the agent answered first. *AHT*: mean talk + hold + after-call
# work of those calls. *Answer rate*: rings the agent answered ÷ rings offered to the agent.
# *Occupancy*: busy ÷ (busy + ready) time; *not-ready share*: not-ready ÷ logged-in time.

# %%
agents = reports.agent_performance(wh, agents=AGENTS, **window)
assert not agents.empty, f"no agent activity in [{start}, {end}); widen START/END"
for ratio in ("occupancy", "not_ready_share", "answer_rate"):
    inside = agents[ratio].between(0, 1) | agents[ratio].isna()
    assert inside.all(), f"{ratio} outside [0, 1]:\n{agents[~inside]}"
assert (agents["rung_answered"] <= agents["rung"]).all(), "answered more rings than rang"
assert (agents["outbound"] <= agents["handled"]).all(), "more outbound than handled calls"
parts = agents[["ready_s", "not_ready_s", "busy_s"]].sum(axis=1)
assert np.allclose(parts, agents["logged_in_s"], rtol=1e-9, atol=1e-3), (
    "ready + not-ready + busy time must be the logged-in time")
display(agents.set_index("agent_id"))

# %% [markdown]
# ## Calls handled and AHT
#
# Bar height is calls handled; the colour is the agent's AHT, so long handlers stand out
# whatever their volume.

# %%
fig = px.bar(agents, x="agent_id", y="handled", color="aht_s",
             color_continuous_scale="Viridis", hover_data=["outbound", "talk_s", "acw_s"],
             title="Calls handled per agent, coloured by AHT (s)")
fig.show()

# %% [markdown]
# ## Where the logged-in time goes
#
# Hours per state class, clipped to the window: busy (ringing, talking, hold, after-call
# work), ready (waiting for a call) and not ready. Occupancy against not-ready share below:
# agents at the top right are both busy and often away.

# %%
hours = agents.melt(id_vars="agent_id", value_vars=["busy_s", "ready_s", "not_ready_s"],
                    var_name="state", value_name="seconds")
hours = hours.assign(hours=hours["seconds"] / 3600, state=hours["state"].str.removesuffix("_s"))
fig = px.bar(hours, x="agent_id", y="hours", color="state", title="Logged-in hours by state")
fig.show()

fig = px.scatter(agents, x="not_ready_share", y="occupancy", size="handled",
                 hover_name="agent_id", title="Occupancy against not-ready share",
                 range_x=[0, None], range_y=[0, 1.02])
fig.show()

# %% [markdown]
# ## Not-ready share by reason
#
# Shrinkage seen in the states: not-ready seconds per reason ÷ logged-in seconds, for all
# selected agents, then per agent (no reason is shown as `(none)`).

# %%
shrinkage = reports.shrinkage_by_reason(wh, agents=AGENTS, **window)
display(shrinkage)
fig = px.bar(shrinkage.assign(reason=shrinkage["reason"].replace("", "(none)")),
             x="reason", y="share", title="Not-ready share of logged-in time by reason")
fig.show()

per_agent = pd.concat(
    [reports.shrinkage_by_reason(wh, agents=[agent], **window).assign(agent_id=agent)
     for agent in agents["agent_id"]], ignore_index=True)
summed = per_agent.groupby("agent_id")["not_ready_s"].sum()
expected = agents.set_index("agent_id").loc[summed.index, "not_ready_s"]
assert np.allclose(summed, expected, rtol=1e-9, atol=1e-3), (
    "per-reason not-ready time must add up to the agent's not-ready time")
grid = per_agent.assign(reason=per_agent["reason"].replace("", "(none)")).pivot_table(
    index="agent_id", columns="reason", values="share", fill_value=0.0)
fig = px.imshow(grid, aspect="auto", color_continuous_scale="Blues",
                labels={"color": "share"}, title="Not-ready share by reason and agent")
fig.show()

# %% [markdown]
# ## Answer rate
#
# Rings the agent answered ÷ rings offered; a ring not answered went back to the queue
# (RONA) or ended when the caller hung up.

# %%
rings = agents[agents["rung"] > 0].sort_values("answer_rate")
fig = px.bar(rings, x="agent_id", y="answer_rate", hover_data=["rung", "rung_answered"],
             title="Answer rate per agent", range_y=[0, 1.02])
fig.show()

# %% [markdown]
# ## Survey scores (RP-06)
#
# Post-call surveys answered in the window: mean score, mean score ÷ maximum, and the share
# of satisfied callers (score at least `SATISFIED_RATIO` of the maximum); per agent and
# per queue.

# %%
surveys = reports.satisfaction(wh, by="agent", satisfied_ratio=SATISFIED_RATIO, **window)
by_queue = reports.satisfaction(wh, by="queue", satisfied_ratio=SATISFIED_RATIO, **window)
for frame in (surveys, by_queue):
    assert (frame["responses"] > 0).all(), "a survey group without responses"
    for ratio in ("mean_ratio", "satisfied_share"):
        assert (frame[ratio].between(0, 1) | frame[ratio].isna()).all(), f"{ratio} off [0, 1]"
display(by_queue)
if AGENTS is not None:
    surveys = surveys[surveys["agent_id"].isin(AGENTS)]
scores = surveys.melt(id_vars=["agent_id", "responses"],
                      value_vars=["mean_ratio", "satisfied_share"], var_name="measure")
fig = px.bar(scores, x="agent_id", y="value", color="measure", barmode="group",
             hover_data=["responses"], range_y=[0, 1.02],
             title=f"Survey mean ratio and satisfied share (>= {SATISFIED_RATIO:.0%})")
fig.show()

# %% [markdown]
# ## Consistency with the queue table
#
# Every answered queue call has an answering agent, so the agents together handled at least
# the calls the queues answered (more when agents also take direct or outbound calls).

# %%
week = reports.queue_report(wh, **window)
analyst.check_kpis(week, "queue_report")
handled, answered = int(agents["handled"].sum()), int(week["answered"].sum())
if AGENTS is None:
    assert handled >= answered, f"agents handled {handled} calls, queues answered {answered}"
print(f"{len(agents)} agent(s) handled {handled} calls; all queues answered {answered}")
wh.close()
