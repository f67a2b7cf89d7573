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

-- Per feed × department × month (归集 month: the month rows/records were first received), the
-- sum of metrics_daily, plus the department's declared count for the month from the
-- declarations ledger. report_rate 上报率 = received_rows / declared_count; NULL when the
-- department declared nothing for the month (never assumed 100%) or declared 0.
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
    report_rate         DOUBLE
);
