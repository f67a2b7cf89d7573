-- Credit status, cross-comparison and query registration (assets/credit_status, assets/crosscheck,
-- assets/credit_profile).

-- Every change of a record's public status (公示中 / 异议中 / 已到期 / 已修复 / 已撤销 / 不予公示), one
-- row per change, written by the nightly job for its received day (as_of) with the Chinese cause.
-- A record's first row is the night it was first loaded. Reruns of a night replace that night's rows.
CREATE TABLE IF NOT EXISTS record_status_log (
    feed          VARCHAR NOT NULL,
    business_key  VARCHAR NOT NULL,
    as_of         DATE    NOT NULL,
    status        VARCHAR NOT NULL,
    cause         VARCHAR,               -- why the record has this status (Chinese)
    event         VARCHAR NOT NULL,      -- 首次入库 | 状态变化 | 收到新版本 (a correction or resubmission)
    version_count BIGINT
);

-- The nightly red/black cross-comparison (红黑名单交叉比对) and related findings for the office,
-- as of each night: every finding present that night (a night's rows are replaced on a rerun).
--   kind: blacklisted_subject | broken_commitment | repair_too_early | target_missing
-- subject_key is the USCC or the full ID number (internal; reports mask it).
CREATE TABLE IF NOT EXISTS crosscheck_findings (
    as_of         DATE    NOT NULL,
    kind          VARCHAR NOT NULL,
    kind_label    VARCHAR NOT NULL,
    subject_key   VARCHAR,
    subject_shown VARCHAR,               -- as it may be shown: a USCC, or the ID number masked
    subject_name  VARCHAR,
    feed          VARCHAR NOT NULL,      -- the flagged row's feed
    business_key  VARCHAR NOT NULL,
    related_feed  VARCHAR,               -- the list entry, penalty or record it was compared with
    related_key   VARCHAR,
    event_date    DATE,
    dept          VARCHAR,
    reason        VARCHAR NOT NULL       -- Chinese, for the office
);

-- 查询使用登记: every subject profile query. Append-only: the only code path writes INSERT (see
-- assets/credit_profile/audit.py); no command updates or deletes a row. Each row carries the hash
-- of the previous one (row_hash = sha256(prev_hash | fields)), so a change made outside the
-- program (e.g. with a DuckDB shell) is detected by `verify_chain`.
CREATE TABLE IF NOT EXISTS profile_queries (
    query_no     BIGINT    NOT NULL,
    queried_at   TIMESTAMP NOT NULL,     -- UTC
    operator     VARCHAR   NOT NULL,     -- --operator, else the OS user
    os_user      VARCHAR   NOT NULL,
    subject      VARCHAR   NOT NULL,     -- the USCC or ID number queried (internal)
    reason       VARCHAR   NOT NULL,
    as_of        DATE,
    output_format VARCHAR  NOT NULL,
    records      BIGINT    NOT NULL,     -- rows the profile showed
    prev_hash    VARCHAR   NOT NULL,
    row_hash     VARCHAR   NOT NULL
);

-- The nights the record_statuses step computed, per step ('log': record_status_log, 'share': the
-- shared export) and feed: the digest of the status rules then in force and a fingerprint of the
-- versions received up to that night, so the next night can compute only the records whose status
-- can change since (assets/credit_status/status.py); shared_rows: rows shared that night.
CREATE TABLE IF NOT EXISTS status_nights (
    step          VARCHAR NOT NULL,
    feed          VARCHAR NOT NULL,
    as_of         DATE    NOT NULL,
    rules_digest  VARCHAR NOT NULL,
    fingerprint   VARCHAR NOT NULL,
    shared_rows   BIGINT
);
