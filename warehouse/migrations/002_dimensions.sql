-- Dimensions: slowly changing, the newest row per key wins (ReplacingMergeTree on
-- updated_at); read with FINAL.

CREATE TABLE IF NOT EXISTS queues (
    queue String,
    name String,
    channel LowCardinality(String),
    site String,
    service_level_s UInt16,
    service_level_target Float64,
    updated_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY queue;

CREATE TABLE IF NOT EXISTS agents (
    agent_id String,
    name String,
    team String,
    site String,
    skills Array(String),
    hired_on Date,
    active UInt8,
    updated_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY agent_id;

CREATE TABLE IF NOT EXISTS teams (
    team String,
    name String,
    site String,
    supervisor String,
    updated_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY team;

CREATE TABLE IF NOT EXISTS sites (
    site String,
    name String,
    timezone String,
    region String,
    updated_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY site;

CREATE TABLE IF NOT EXISTS calendar (
    region String,
    date Date,
    is_workday UInt8,
    is_holiday UInt8,
    holiday_name String,
    updated_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (region, date);
