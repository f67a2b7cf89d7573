-- Upward push (assets/push): what was sent to the city/province platform and what it acknowledged.
-- push_batches is the push manifest: one row per batch, its exact payload (internal: full
-- identifiers stay in the warehouse and travel only to the configured endpoint), and its
-- acknowledgement. batch_id is derived from the batch's content, so a resend carries the same id
-- and the platform can drop a repeat.
CREATE TABLE IF NOT EXISTS push_batches (
    batch_id        VARCHAR PRIMARY KEY,
    target          VARCHAR NOT NULL,      -- push target name (settings.yaml push[].name)
    feed            VARCHAR NOT NULL,
    seq             BIGINT NOT NULL,       -- send order per target
    night           DATE NOT NULL,         -- received day of the night that built the batch
    records         BIGINT NOT NULL,       -- new or changed records
    withdrawals     BIGINT NOT NULL,       -- revoked or repaired records withdrawn
    format          VARCHAR NOT NULL,      -- json | csv
    payload         BLOB NOT NULL,
    status          VARCHAR NOT NULL,      -- 'pending' | 'acknowledged'
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      VARCHAR,
    acknowledged_at TIMESTAMP,
    receipt         VARCHAR                -- the platform's acknowledgement (JSON)
);

-- One row per record in a batch: which key, upserted or withdrawn, and the content fingerprint.
CREATE TABLE IF NOT EXISTS push_items (
    batch_id    VARCHAR NOT NULL,
    target      VARCHAR NOT NULL,
    feed        VARCHAR NOT NULL,
    _key        VARCHAR NOT NULL,
    action      VARCHAR NOT NULL,          -- 'upsert' | 'withdraw'
    reason      VARCHAR,                   -- withdraw: 'revoked' | 'repaired'
    fingerprint VARCHAR NOT NULL
);

-- Audit: every attempt to send a batch (no identifiers, counts only).
CREATE TABLE IF NOT EXISTS push_audit (
    attempted_at TIMESTAMP NOT NULL,
    target      VARCHAR NOT NULL,
    endpoint    VARCHAR NOT NULL,
    batch_id    VARCHAR NOT NULL,
    feed        VARCHAR NOT NULL,
    attempt     BIGINT NOT NULL,
    http_status INTEGER,
    outcome     VARCHAR NOT NULL,          -- 'acknowledged' | 'failed' | 'skipped'
    records     BIGINT NOT NULL,
    withdrawals BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    message     VARCHAR                    -- Chinese
);
