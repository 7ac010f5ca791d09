-- analytics.ingest_checkpoints: how far each ingestor got in each source stream.
-- One row per committed batch; the current checkpoint of a stream is max(position)
-- (positions are fixed-width and sortable), exact before or after merges.
-- consumer: the ingestor name (`ledger ingest --consumer`, default 'default').
-- stream:   'local:<ledger_id>' (position = local seq, 20 digits) or
--           'hub:<tenant>/<project>' (position = hub position, 24 hex digits).
CREATE TABLE IF NOT EXISTS analytics.ingest_checkpoints
(
    consumer   LowCardinality(String),
    stream     String,
    position   String,
    events     UInt64 COMMENT 'events of this batch',
    updated_at DateTime64(9, 'UTC') DEFAULT now64(9)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (consumer, stream, position);
