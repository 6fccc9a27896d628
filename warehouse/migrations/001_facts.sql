-- Fact tables. Timestamps are DateTime('UTC') (seconds) plus a *_ms column (0-999): the
-- subset ClickHouse 18.16 and chdb both accept (no DateTime64, TTL, CODEC).
-- Facts a replay may redeliver are ReplacingMergeTree keyed by their id: read them with
-- FINAL (correct before background merges), e.g. SELECT ... FROM calls FINAL.
-- Columns the materialized views read stay plain String: on 18.16 a LowCardinality column
-- pushed through a view fails with "Type mismatch ... got type LowCardinality(String)".

CREATE TABLE IF NOT EXISTS calls (
    call_id String,
    event_id String,
    queue String,
    agent_id String,
    region LowCardinality(String),
    offered_at DateTime('UTC'),
    offered_ms UInt16,
    answered_at Nullable(DateTime('UTC')),
    ended_at DateTime('UTC'),
    wait_s Float64,
    talk_s Float64,
    hold_s Float64,
    acw_s Float64,
    outcome String,
    disposition String,
    transfers UInt8,
    survey_score Nullable(UInt8),
    loaded_at DateTime('UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(offered_at)
ORDER BY call_id;

CREATE TABLE IF NOT EXISTS call_segments (
    call_id String,
    segment_no UInt16,
    kind LowCardinality(String),
    queue String,
    agent_id String,
    start_at DateTime('UTC'),
    start_ms UInt16,
    end_at DateTime('UTC'),
    end_ms UInt16,
    event_id String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(start_at)
ORDER BY (call_id, segment_no);

CREATE TABLE IF NOT EXISTS agent_state_intervals (
    agent_id String,
    state LowCardinality(String),
    reason Nullable(String),
    `start` DateTime('UTC'),
    start_ms UInt16,
    `end` DateTime('UTC'),
    end_ms UInt16,
    event_id String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(`start`)
ORDER BY (agent_id, `start`, start_ms);

CREATE TABLE IF NOT EXISTS ticket_events (
    event_id String,
    ticket_id String,
    occurred_at DateTime('UTC'),
    occurred_ms UInt16,
    kind LowCardinality(String),
    queue String,
    agent_id String,
    channel LowCardinality(String),
    status LowCardinality(String),
    priority LowCardinality(String)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (ticket_id, occurred_at, event_id);

CREATE TABLE IF NOT EXISTS surveys (
    survey_id String,
    call_id String,
    ticket_id String,
    agent_id String,
    answered_at DateTime('UTC'),
    score UInt8,
    max_score UInt8,
    comment String,
    event_id String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(answered_at)
ORDER BY survey_id;

CREATE TABLE IF NOT EXISTS qa_scores (
    evaluation_id String,
    call_id String,
    agent_id String,
    evaluator String,
    form String,
    scored_at DateTime('UTC'),
    score Float64,
    max_score Float64,
    event_id String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(scored_at)
ORDER BY evaluation_id;

-- scheduling.publish.SCHEDULE_ROW_COLUMNS: every version is a full snapshot.
CREATE TABLE IF NOT EXISTS schedules (
    schedule_id String,
    queue String,
    version UInt32,
    agent_id String,
    kind LowCardinality(String),
    start_utc DateTime('UTC'),
    end_utc DateTime('UTC'),
    paid UInt8,
    template String,
    published_at DateTime('UTC'),
    published_by String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(start_utc)
ORDER BY (schedule_id, version, agent_id, kind, start_utc);

CREATE TABLE IF NOT EXISTS forecasts (
    queue String,
    forecast_id String,
    version UInt32,
    interval_start DateTime('UTC'),
    calls Float64,
    aht Float64,
    created_at DateTime('UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(interval_start)
ORDER BY (queue, forecast_id, version, interval_start);
