-- Load stage (assets/load). Per-feed <feed>_versions / <feed>_current tables and public_<feed>
-- views are generated from the contracts by warehouse/feed_tables.py; this file holds the
-- feed-independent tables.

-- One row per quarantined row (validated/<feed>/received_date=<d>/quarantined.parquet), with its
-- error rule ids and messages from failures.parquet. 'open' until a valid version of the same
-- business key is loaded later (a later received day, or the same day from another delivery);
-- then 'closed' with the closing delivery's file id and received date. Rows whose business key
-- could not be read (NULL business_key) stay open until the department fixes them some other way.
CREATE TABLE IF NOT EXISTS quarantine_items (
    feed              VARCHAR NOT NULL,
    dept              VARCHAR,
    file_id           VARCHAR NOT NULL,
    row_no            BIGINT  NOT NULL,
    received_date     DATE    NOT NULL,
    source_name       VARCHAR,
    business_key      VARCHAR,
    rule_ids          VARCHAR,   -- error rule ids, ';'-separated, sorted
    messages          VARCHAR,   -- their Chinese messages, '；'-separated, in rule id order
    status            VARCHAR NOT NULL,   -- 'open' | 'closed'
    closed_by_file_id VARCHAR,
    closed_on         DATE,
    period_month      VARCHAR    -- 'YYYY-MM' of the row's decision (period_field) date when readable
);
-- warehouses created before period_month existed get it appended (NULL for their old items)
ALTER TABLE quarantine_items ADD COLUMN IF NOT EXISTS period_month VARCHAR;

-- Per feed and received day: the versions held (row count, XOR of row hashes). Kept by the load
-- (assets/load) for the day it loads, so "the versions received up to night D" can be compared
-- from a few hundred rows instead of a scan of the versions tables (warehouse/record_status.py
-- versions_fingerprint_sql); a warehouse loaded before this table existed is filled once.
CREATE TABLE IF NOT EXISTS versions_days (
    feed           VARCHAR NOT NULL,
    received_date  DATE    NOT NULL,
    row_count      BIGINT  NOT NULL,
    row_xor        UBIGINT NOT NULL
);
