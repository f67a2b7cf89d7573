-- Ingest stage (assets/ingest): one row per received delivery (inbox file or HTTP delivery).
-- file_id: SHA-256 of the file's bytes; for an HTTP delivery, SHA-256 of its page hashes (hex,
-- joined with '\n', in page order); for a file refused without reading it (symlink, path
-- traversal), SHA-256 of a description of the attempt; for an HTTP pull that failed before anything
-- arrived, SHA-256 of "http-failed", department, feed, received day and source: one row per
-- endpoint and day, which a rerun that fails again updates (latest error_message; notes count the
-- failed pulls and give the last one's time; first_seen_at stays the first failure).
-- Written after the staged Parquet file, so a crash in between only means the file is parsed again.
CREATE TABLE IF NOT EXISTS ingest_manifest (
    file_id        VARCHAR PRIMARY KEY,
    dept           VARCHAR,
    feed           VARCHAR,
    source         VARCHAR NOT NULL,      -- 'inbox' | 'http'
    original_name  VARCHAR,               -- file name as delivered; for http: <dept>/<feed>/<date>.json
    sha256         VARCHAR,               -- content hash (null when the content was never read)
    bytes          BIGINT,
    received_date  DATE NOT NULL,
    rows_parsed    BIGINT NOT NULL DEFAULT 0,
    status         VARCHAR NOT NULL,      -- 'parsed' | 'rejected'
    error_message  VARCHAR,               -- Chinese, for the department clerk; null when parsed
    landed_path    VARCHAR,               -- relative to the data dir; http: first page (all pages in ingest_pages)
    staged_path    VARCHAR,               -- relative to the data dir; null when rejected
    format         VARCHAR,               -- csv | xlsx | json
    encoding       VARCHAR,
    header_row     INTEGER,               -- record number of the header row (title rows above it)
    pages          INTEGER,               -- http: number of pages
    extra_columns  VARCHAR,               -- JSON list of headers kept in _extra
    notes          VARCHAR,               -- Chinese remarks that are not errors (e.g. header only)
    first_seen_at  TIMESTAMP NOT NULL
);

-- Pages of HTTP deliveries, each landed byte for byte.
CREATE TABLE IF NOT EXISTS ingest_pages (
    file_id      VARCHAR NOT NULL,
    page_no      INTEGER NOT NULL,
    sha256       VARCHAR NOT NULL,
    bytes        BIGINT NOT NULL,
    records      BIGINT NOT NULL,
    landed_path  VARCHAR NOT NULL,
    PRIMARY KEY (file_id, page_no)
);

-- Content that arrived again (same SHA-256) under another name, department, feed or day: noted,
-- not reprocessed. Re-running a day adds nothing here (the key is the delivery's place; for a late
-- file, received_date is the day of the folder it was found in).
CREATE TABLE IF NOT EXISTS ingest_duplicates (
    file_id        VARCHAR NOT NULL,      -- the manifest row the content duplicates
    dept           VARCHAR NOT NULL,
    feed           VARCHAR NOT NULL,
    source         VARCHAR NOT NULL,
    original_name  VARCHAR NOT NULL,
    received_date  DATE NOT NULL,
    first_seen_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (file_id, dept, feed, source, original_name, received_date)
);

-- A late file (found in an earlier day's inbox folder after that day's night had read it; see
-- assets/ingest/inbox.py): the day of that folder. received_date is the night that took it in.
ALTER TABLE ingest_manifest ADD COLUMN IF NOT EXISTS late_from DATE;

-- Received days whose night read the whole inbox at least once (first time kept). A later night
-- looks for late files only in the folders of these days (within 31 days); a day not listed is
-- left to its own night.
CREATE TABLE IF NOT EXISTS ingest_days (
    received_date  DATE PRIMARY KEY,
    recorded_at    TIMESTAMP NOT NULL
);
