-- Measure stage (assets/measure): timeliness per record and metrics per feed × department.

-- One row per loaded record (business key with at least one valid version) of feeds with role
-- 'records' and a deadline. first_received: first day the key arrived at all (valid or
-- quarantined); first_valid_received: first day a valid version was loaded. The deadline counts
-- from decision_date (the contract's clock_field, taken from the current version), the decision
-- day itself not counted. on_time = first_valid_received <= deadline. working_days_late: working
-- days in (deadline, first_valid_received] (0 when on time); days_late likewise in calendar days.
-- provisional: a year without an official calendar (Monday–Friday fallback) was used.
CREATE TABLE IF NOT EXISTS timeliness (
    feed                 VARCHAR NOT NULL,
    business_key         VARCHAR NOT NULL,
    dept                 VARCHAR,
    decision_date        DATE,
    first_received       DATE,
    first_valid_received DATE,
    deadline_kind        VARCHAR,   -- 'working' | 'calendar'
    deadline_days        INTEGER,
    deadline             DATE,
    on_time              BOOLEAN,
    working_days_late    INTEGER,
    days_late            INTEGER,
    provisional          BOOLEAN
);

-- Per feed × department × received day. Row counts count rows, so a resubmitted record counts
-- again in received_rows/passed_rows/loaded_rows (归集量 counts rows received). Record counts
-- (timed/on_time/late/provisional_records) count business keys once, on the day the key was
-- first received (its 归集 day), judged by its first valid arrival.
--   compliance_rate 合规率 = passed_rows / received_rows
--   timely_rate     及时率 = on_time_records / timed_records   (timed = loaded records)
--   late_rate       迟报率 = 1 - timely_rate
-- Rates are NULL when the denominator is 0.
CREATE TABLE IF NOT EXISTS metrics_daily (
    feed                VARCHAR NOT NULL,
    dept                VARCHAR NOT NULL,
    day                 DATE    NOT NULL,
    received_rows       BIGINT  NOT NULL,
    passed_rows         BIGINT  NOT NULL,
    quarantined_rows    BIGINT  NOT NULL,
    loaded_rows         BIGINT  NOT NULL,
    timed_records       BIGINT  NOT NULL,
    on_time_records     BIGINT  NOT NULL,
    late_records        BIGINT  NOT NULL,
    provisional_records BIGINT  NOT NULL,
    compliance_rate     DOUBLE,
    timely_rate         DOUBLE,
    late_rate           DOUBLE
);

-- One row per record a department sent: feed × department × business key (the contract's
-- business_key as ``_key``), with the first day that department sent the key at all, valid
-- (versions) or quarantined (quarantine_items). A resubmission, a correction or a duplicate row
-- of the same key adds no row. Rows whose key is NULL (a key part missing, so the row cannot be
-- identified as a record) are rows but not records: they have no row here. Maintained by
-- measure_day for the keys a received day touched; the base of received_records/上报率.
-- period_month: 'YYYY-MM' of the record's decision date (the contract's period_field) in its
-- current version, or, for a record only ever quarantined, in its latest quarantined row whose
-- date was readable; NULL when none is. 上报率 counts records by this month (the month the ledger
-- declares decisions for), received up to the as-of date of the figure.
CREATE TABLE IF NOT EXISTS record_arrivals (
    feed           VARCHAR NOT NULL,
    dept           VARCHAR NOT NULL,   -- '' when the row carried no department
    business_key   VARCHAR NOT NULL,
    first_received DATE    NOT NULL,
    period_month   VARCHAR
);
-- Rows written before period_month existed get the marker '?' and are rebuilt by measure_day
-- (rows written since always carry a month or NULL).
ALTER TABLE record_arrivals ADD COLUMN IF NOT EXISTS period_month VARCHAR DEFAULT '?';

-- Per feed × department × month (归集 month: the month rows/records were first received), the
-- sum of metrics_daily, plus:
--   received_records: records (distinct business keys) of the department whose DECISION date
--     falls in the month (record_arrivals.period_month), received so far (valid or not), i.e. as
--     of the latest night measured. A decision of late October that arrives in November counts
--     for October. Rows with a NULL key are counted in received_rows (归集量) but are not records.
--   declared_count: the department's declared count for the month from the declarations ledger
--     (decisions made in the month).
--   report_rate 上报率 = received_records / declared_count (records, not rows: resending a record
--     or a duplicate row does not raise it); above 1 when the department sent more records than
--     it declared (a ledger mismatch, never capped); NULL when it declared nothing for the month
--     (never assumed 100%) or declared 0. The export recomputes it as of its own date.
CREATE TABLE IF NOT EXISTS metrics_monthly (
    feed                VARCHAR NOT NULL,
    dept                VARCHAR NOT NULL,
    month               VARCHAR NOT NULL,  -- YYYY-MM
    received_rows       BIGINT  NOT NULL,
    passed_rows         BIGINT  NOT NULL,
    quarantined_rows    BIGINT  NOT NULL,
    loaded_rows         BIGINT  NOT NULL,
    timed_records       BIGINT  NOT NULL,
    on_time_records     BIGINT  NOT NULL,
    late_records        BIGINT  NOT NULL,
    provisional_records BIGINT  NOT NULL,
    declared_count      BIGINT,
    compliance_rate     DOUBLE,
    timely_rate         DOUBLE,
    late_rate           DOUBLE,
    report_rate         DOUBLE,
    received_records    BIGINT             -- NULL only in rows written before this column existed
);
-- warehouses created before received_records existed get it appended (same column order);
-- measure_day recomputes the rows where it is NULL.
ALTER TABLE metrics_monthly ADD COLUMN IF NOT EXISTS received_records BIGINT;
