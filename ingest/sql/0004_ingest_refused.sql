-- analytics.ingest_refused: stored events the ingestor could not load (an unreadable body,
-- an unsupported schema_version, a body whose id or tenant differs from its row, values
-- ClickHouse cannot store). The ingestor skips them, lists them in its summary, and keeps
-- them here by stream position and event id, so nothing is dropped silently. Written
-- before the checkpoint of their batch; a re-run after a crash writes the same key again
-- (ReplacingMergeTree keeps one).
CREATE TABLE IF NOT EXISTS analytics.ingest_refused
(
    consumer   LowCardinality(String),
    stream     String,
    position   String,
    event_id   String,
    reason     String,
    refused_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (consumer, stream, position);
