-- The catalog's obligations as a table (warehouse/obligations.py refreshes it from
-- contracts/departments.yaml and the feed contracts every night): one row per department and
-- feed it owes. It lets SQL see silence: a department that owes a feed and never sent anything
-- has a row here and none in ingest_manifest.
CREATE TABLE IF NOT EXISTS dept_feed_obligations (
    dept           VARCHAR NOT NULL,   -- department code (departments.yaml)
    dept_name      VARCHAR NOT NULL,
    dept_order     INTEGER NOT NULL,   -- position in the registry (the order people know)
    feed           VARCHAR NOT NULL,
    feed_title     VARCHAR NOT NULL,   -- the contract's Chinese title
    role           VARCHAR NOT NULL,   -- records | ledger | repair (contracts/model.py)
    enabled        BOOLEAN NOT NULL,   -- the contract's enabled flag
    delivery_kind  VARCHAR NOT NULL,   -- inbox | http
    deadline_kind  VARCHAR,            -- working | calendar; NULL when the feed has no deadline
    deadline_days  INTEGER,
    deadline_rule  VARCHAR,            -- the rule in Chinese, e.g. 7个工作日
    PRIMARY KEY (dept, feed)
);
