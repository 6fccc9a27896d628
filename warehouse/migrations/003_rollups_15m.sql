-- 15-minute rollups of `calls`, maintained on insert by materialized views: plain counts and
-- sums in SummingMergeTree tables (merges add rows of the same key), plus the longest wait as
-- a max state. Read them by grouping again (parts are merged lazily), never row by row:
--   SELECT queue, interval_start, sum(offered) AS n_offered, sum(answered) AS n_answered,
--          sum(answered_within_20s) / sum(offered) AS service_level,
--          sum(answered_wait_sum) / sum(answered) AS asa_s,
--          (sum(talk_sum) + sum(hold_sum) + sum(acw_sum)) / sum(answered) AS aht_s,
--          maxMerge(wait_max) AS max_wait_s
--   FROM calls_queue_15m GROUP BY queue, interval_start
-- A view sees every insert, so dedup is the loader's job: warehouse.load.insert_new drops calls
-- already stored; a call inserted twice around it is counted twice here (calls FINAL still
-- holds it once).
-- Columns the views read stay plain String, not LowCardinality (18.16: "Type mismatch").
-- No alias in a view may reuse a column name of `calls`: later uses of the name resolve to the
-- alias ("aggregate function ... is found inside another aggregate function" on 18.16).

-- Per queue (the last queue the call waited in) and 15-minute interval of offered_at (as the
-- reports), over the calls offered to a queue: queue != '' (streams.facts names a queue only
-- when the call joined it or was sent on by it; IVR-only and direct calls have '').
-- outcome: answered | abandoned (hung up queued or ringing) | unanswered (voicemail, ...).
-- wait_s is over all queues of the call. Talk, hold and ACW are summed over answered calls.
CREATE TABLE IF NOT EXISTS calls_queue_15m (
    queue String,
    interval_start DateTime('UTC'),
    offered UInt64,
    answered UInt64,
    abandoned UInt64,
    short_abandoned UInt64,
    answered_within_20s UInt64,
    abandoned_within_20s UInt64,
    wait_sum Float64,
    answered_wait_sum Float64,
    abandoned_wait_sum Float64,
    talk_sum Float64,
    hold_sum Float64,
    acw_sum Float64,
    wait_max AggregateFunction(max, Float64)
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(interval_start)
ORDER BY (queue, interval_start);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_queue_15m_mv TO calls_queue_15m AS
SELECT
    queue,
    toStartOfFifteenMinutes(offered_at) AS interval_start,
    count() AS offered,
    countIf(outcome = 'answered') AS answered,
    countIf(outcome = 'abandoned') AS abandoned,
    countIf(outcome = 'abandoned' AND wait_s <= 5) AS short_abandoned,
    countIf(outcome = 'answered' AND wait_s <= 20) AS answered_within_20s,
    countIf(outcome = 'abandoned' AND wait_s <= 20) AS abandoned_within_20s,
    sum(wait_s) AS wait_sum,
    sumIf(wait_s, outcome = 'answered') AS answered_wait_sum,
    sumIf(wait_s, outcome = 'abandoned') AS abandoned_wait_sum,
    sumIf(talk_s, outcome = 'answered') AS talk_sum,
    sumIf(hold_s, outcome = 'answered') AS hold_sum,
    sumIf(acw_s, outcome = 'answered') AS acw_sum,
    maxState(wait_s) AS wait_max
FROM calls
WHERE queue != ''
GROUP BY queue, interval_start;

-- Per agent (the first agent who answered) and 15-minute interval of answered_at: calls
-- handled and their durations; transfers and holds are counts per call, summed.
CREATE TABLE IF NOT EXISTS calls_agent_15m (
    agent_id String,
    interval_start DateTime('UTC'),
    handled UInt64,
    talk_sum Float64,
    hold_sum Float64,
    acw_sum Float64,
    ring_sum Float64,
    transfers_sum UInt64,
    holds_sum UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(interval_start)
ORDER BY (agent_id, interval_start);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_agent_15m_mv TO calls_agent_15m AS
SELECT
    agent_id,
    toStartOfFifteenMinutes(assumeNotNull(answered_at)) AS interval_start,
    count() AS handled,
    sum(talk_s) AS talk_sum,
    sum(hold_s) AS hold_sum,
    sum(acw_s) AS acw_sum,
    sum(ring_s) AS ring_sum,
    sum(toUInt64(transfers)) AS transfers_sum,
    sum(toUInt64(holds)) AS holds_sum
FROM calls
WHERE isNotNull(answered_at) AND agent_id != ''
GROUP BY agent_id, interval_start;
