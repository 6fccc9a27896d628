-- 15-minute rollups, maintained on insert into calls by materialized views.
-- Counts are uniqExact states of call_id, so a call redelivered to the MV is still counted
-- once; sums (wait, talk, hold, acw) are plain sums: warehouse.load.insert_new keeps
-- redeliveries out of calls (and so out of these views). Read with the -Merge functions:
--   SELECT queue, interval_start, uniqExactMerge(offered) AS offered_calls, ...
--   FROM calls_queue_15m GROUP BY queue, interval_start
-- "answered within" uses a 20 s threshold; abandoned means outcome = 'abandoned'.

CREATE TABLE IF NOT EXISTS calls_queue_15m (
    queue String,
    interval_start DateTime('UTC'),
    offered AggregateFunction(uniqExact, String),
    answered AggregateFunction(uniqExactIf, String, UInt8),
    abandoned AggregateFunction(uniqExactIf, String, UInt8),
    answered_within_20s AggregateFunction(uniqExactIf, String, UInt8),
    wait_sum AggregateFunction(sum, Float64),
    wait_count AggregateFunction(count),
    talk_sum AggregateFunction(sum, Float64),
    talk_count AggregateFunction(countIf, UInt8),
    handle_sum AggregateFunction(sum, Float64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(interval_start)
ORDER BY (queue, interval_start);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_queue_15m_mv TO calls_queue_15m AS
SELECT
    queue,
    toStartOfFifteenMinutes(offered_at) AS interval_start,
    uniqExactState(call_id) AS offered,
    uniqExactIfState(call_id, toUInt8(isNotNull(answered_at))) AS answered,
    uniqExactIfState(call_id, toUInt8(outcome = 'abandoned')) AS abandoned,
    uniqExactIfState(call_id, toUInt8(isNotNull(answered_at) AND wait_s <= 20))
        AS answered_within_20s,
    sumState(wait_s) AS wait_sum,
    countState() AS wait_count,
    sumState(talk_s) AS talk_sum,
    countIfState(toUInt8(isNotNull(answered_at))) AS talk_count,
    sumState(talk_s + hold_s + acw_s) AS handle_sum
FROM calls
GROUP BY queue, interval_start;

CREATE TABLE IF NOT EXISTS calls_agent_15m (
    agent_id String,
    interval_start DateTime('UTC'),
    handled AggregateFunction(uniqExact, String),
    talk_sum AggregateFunction(sum, Float64),
    hold_sum AggregateFunction(sum, Float64),
    acw_sum AggregateFunction(sum, Float64),
    transfers_sum AggregateFunction(sum, UInt64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(interval_start)
ORDER BY (agent_id, interval_start);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_agent_15m_mv TO calls_agent_15m AS
SELECT
    agent_id,
    toStartOfFifteenMinutes(assumeNotNull(answered_at)) AS interval_start,
    uniqExactState(call_id) AS handled,
    sumState(talk_s) AS talk_sum,
    sumState(hold_s) AS hold_sum,
    sumState(acw_s) AS acw_sum,
    sumState(toUInt64(transfers)) AS transfers_sum
FROM calls
WHERE isNotNull(answered_at) AND agent_id != ''
GROUP BY agent_id, interval_start;
