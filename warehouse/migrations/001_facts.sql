-- Fact tables. Timestamps are DateTime('UTC') (seconds) plus a *_ms column (0-999): the
-- subset ClickHouse 18.16 and chdb both accept (no DateTime64, TTL, CODEC).
-- Facts a replay may redeliver are ReplacingMergeTree keyed by their id: read them with
-- FINAL (correct before background merges), e.g. SELECT ... FROM calls FINAL.
-- Columns the materialized views read stay plain String: on 18.16 a LowCardinality column
-- pushed through a view fails with "Type mismatch ... got type LowCardinality(String)".

-- One row per finished call (streams.facts, CC/ACD rows): written once the call has ended and
-- its agent's after-call work is over. `queue` is the last queue the call waited in (where
-- it was answered or abandoned), `queues` every queue in order; `agent_id` the first agent
-- who answered, `agents` every agent who talked to the caller. Durations in seconds:
-- ivr_s (all IVR legs, the post-call survey included), wait_s (over all queue legs: the wait
-- the producer reported on answer or abandon, else queued until overflowed or transferred),
-- ring_s, talk_s (answered until ended, hold excluded), hold_s, acw_s.
-- region is the caller's province (the country for numbers abroad), city and carrier too.
-- outcome: answered | abandoned (hung up queued or ringing) | ivr_abandoned | unanswered
-- (ended otherwise: voicemail, callback, closed, ...); disposition is the contract's.
CREATE TABLE IF NOT EXISTS calls (
    call_id String,
    event_id String,
    direction LowCardinality(String),
    caller String,
    dialed String,
    customer_id String,
    site LowCardinality(String),
    region LowCardinality(String),
    city LowCardinality(String),
    carrier LowCardinality(String),
    queue String,
    first_queue String,
    queues Array(String),
    agent_id String,
    agents Array(String),
    offered_at DateTime('UTC'),
    offered_ms UInt16,
    queued_at Nullable(DateTime('UTC')),
    answered_at Nullable(DateTime('UTC')),
    answered_ms UInt16,
    ended_at DateTime('UTC'),
    ended_ms UInt16,
    ivr_s Float64,
    wait_s Float64,
    ring_s Float64,
    talk_s Float64,
    hold_s Float64,
    acw_s Float64,
    outcome String,
    abandon_stage LowCardinality(String),
    disposition String,
    ended_by LowCardinality(String),
    transfers UInt8,
    overflows UInt8,
    holds UInt16,
    survey_score Nullable(UInt8),
    survey_max Nullable(UInt8),
    loaded_at DateTime('UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(offered_at)
ORDER BY call_id;

-- One row per leg of a call: kind ivr | queue (queued until answered, abandoned, overflowed
-- or ended) | agent (answered until transferred away or ended). segment_id is the id of
-- the event that opened the leg.
CREATE TABLE IF NOT EXISTS call_segments (
    segment_id String,
    call_id String,
    segment_no UInt16,
    kind LowCardinality(String),
    queue String,
    agent_id String,
    start_at DateTime('UTC'),
    start_ms UInt16,
    end_at DateTime('UTC'),
    end_ms UInt16,
    duration_s Float64,
    outcome LowCardinality(String)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(start_at)
ORDER BY (call_id, segment_no);

-- streams.agent_states spells; spell_id is the id of the event that opened the spell.
CREATE TABLE IF NOT EXISTS agent_state_intervals (
    spell_id String,
    agent_id String,
    state LowCardinality(String),
    reason Nullable(String),
    call_id String,
    queue String,
    `start` DateTime('UTC'),
    start_ms UInt16,
    `end` DateTime('UTC'),
    end_ms UInt16,
    duration_s Float64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(`start`)
ORDER BY (agent_id, `start`, start_ms);

CREATE TABLE IF NOT EXISTS ticket_events (
    event_id String,
    ticket_id String,
    occurred_at DateTime('UTC'),
    occurred_ms UInt16,
    kind LowCardinality(String),
    category String,
    agent_id String,
    status LowCardinality(String),
    priority LowCardinality(String)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (ticket_id, occurred_at, event_id);

CREATE TABLE IF NOT EXISTS surveys (
    survey_id String,
    survey String,
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

-- scheduling.publish.SCHEDULE_ROW_COLUMNS plus row_id (the publishing event's id and the
-- row's position in the version): every version is a full snapshot.
CREATE TABLE IF NOT EXISTS schedules (
    row_id String,
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

-- One row per forecast interval of a published version (wfm.forecast_published); aht is
-- NULL when the forecast has none; row_id is the event's id and the interval's position.
CREATE TABLE IF NOT EXISTS forecasts (
    row_id String,
    queue String,
    forecast_id String,
    version UInt32,
    interval_start DateTime('UTC'),
    calls Float64,
    aht Nullable(Float64),
    calls_low Nullable(Float64),
    calls_high Nullable(Float64),
    model String,
    published_at DateTime('UTC'),
    published_by String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(interval_start)
ORDER BY (queue, forecast_id, version, interval_start);
