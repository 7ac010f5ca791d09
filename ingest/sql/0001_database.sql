-- Context Ledger analytics: the database and the migrations table.
-- Every statement is idempotent (IF NOT EXISTS): `ledger ingest` applies the files of
-- this folder in order and records each one in analytics.schema_migrations.
CREATE DATABASE IF NOT EXISTS analytics;

CREATE TABLE IF NOT EXISTS analytics.schema_migrations
(
    version    UInt32,
    name       String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version;
