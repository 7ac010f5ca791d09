-- analytics.swarm_events: one row per SwarmEvent (schemas/events.proto), wide, with the
-- columns audits filter on and the full event as JSON (event_json).
--
-- Deduplicated on event_id: the sorting key (tenant_id, project_id, time, event_id) is a
-- function of event_id (events are immutable), so two copies of an event collapse when
-- ReplacingMergeTree merges their parts; the ingestor writes each event exactly once in
-- the first place (see docs/analytics.md), and non_replicated_deduplication_window makes
-- a retried INSERT with the same insert_deduplication_token a no-op.
--
-- Columns that do not apply to an event's kind hold '' / 0 (no Nullable: faster).
-- Times are DateTime64(9, 'UTC') (nanoseconds, as in the ledger).
CREATE TABLE IF NOT EXISTS analytics.swarm_events
(
    tenant_id             LowCardinality(String),
    project_id            LowCardinality(String),
    time                  DateTime64(9, 'UTC') COMMENT 'event timestamp (agent clock)',
    event_id              String COMMENT 'UUIDv7, the idempotency key',
    event_type            LowCardinality(String) COMMENT 'decision, state_change, message, signal, span',
    schema_version        UInt16,
    user_id               String,
    session_id            String,
    agent_id              LowCardinality(String),
    agent_role            LowCardinality(String),
    trace_id              String,
    span_id               String,
    caused_by             String COMMENT 'event_id of the decision behind this event',
    commit_hash           String,
    -- state_change
    target_type           LowCardinality(String),
    target_path           String,
    previous_path         String COMMENT 'rename source',
    operation             LowCardinality(String) COMMENT 'create, modify, delete, rename',
    file_mode             LowCardinality(String),
    previous_file_mode    LowCardinality(String),
    previous_state_hash   String COMMENT 'SHA-256 hex of the content before',
    new_state_hash        String COMMENT 'SHA-256 hex of the content after',
    size_bytes            UInt64,
    lines_added           UInt32,
    lines_removed         UInt32,
    is_reversible         Bool,
    -- decision
    confidence            Float64 COMMENT 'decision confidence_score, 0..1',
    rationale             String,
    input_trigger         String,
    rejected_alternatives Array(String),
    -- message
    message_sender        String,
    message_recipients    Array(String),
    -- signal
    signal_status         LowCardinality(String),
    cpu_load_percent      Float64,
    memory_usage_mb       Float64,
    -- span
    span_name             String,
    span_kind             LowCardinality(String),
    span_parent_id        String,
    span_start            DateTime64(9, 'UTC'),
    span_end              DateTime64(9, 'UTC'),
    span_status           LowCardinality(String),
    -- where the row came from
    source                LowCardinality(String) COMMENT 'local or hub',
    source_stream         LowCardinality(String) COMMENT 'local:<ledger_id> or hub:<project>',
    source_position       String COMMENT 'fixed-width, sortable position inside the stream',
    local_seq             UInt64 COMMENT 'local ledger seq (local source), else 0',
    hub_versionstamp      String COMMENT 'hex FoundationDB commit versionstamp (10 bytes), or empty',
    recorded_at           DateTime64(9, 'UTC') COMMENT 'when the local ledger stored it (local source)',
    ingested_at           DateTime64(3, 'UTC') DEFAULT now64(3),
    event_json            String CODEC(ZSTD(3)) COMMENT 'the full event, SwarmEvent JSON form',
    INDEX idx_event_id event_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_path target_path TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_caused_by caused_by TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (tenant_id, project_id, time, event_id)
SETTINGS non_replicated_deduplication_window = 10000;
