"""End to end against the generator's truth: generate → ingest (inbox + sample HTTP server) →
validate; the quarantined rows and their error rule ids equal truth.csv exactly."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

sample_feeds = pytest.importorskip("pipelines.samples.feeds")
ingest = pytest.importorskip("assets.ingest")
sample_http = pytest.importorskip("pipelines.samples.http")

from assets.validate import validate_day  # noqa: E402
from contracts import load_contracts, load_registry  # noqa: E402
from warehouse.layout import DataDir  # noqa: E402

START = date(2026, 3, 30)  # spans the 2026-04-01 display-period regime change
DAYS = 3


def _source_key(name: str) -> str:
    return "HTTP" if name.startswith(("http_outbox", "/api", "http")) else Path(name).name


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("truth") / "data"
    contracts = load_contracts()
    registry = load_registry(contracts=contracts)
    sample_feeds.generate(root, start=START, days=DAYS, rows_per_day=40, seed=20261123)
    server, base = sample_http.start_sample_server(root, tokens={"zfcxjw": "test-token"})
    summaries = []
    try:
        for i in range(DAYS):
            day = START + timedelta(days=i)
            ingest.ingest_day(DataDir(root), day, contracts, registry,
                              http=ingest.HttpSettings(base_url=base, max_attempts=2, backoff=0.05),
                              env={"CREDIT_ETL_TOKEN_ZFCXJW": "test-token"})
            summaries.append(validate_day(root, day, contracts))
    finally:
        server.stop()
    return root, summaries


def test_quarantine_equals_truth(run):
    root, summaries = run
    assert all(s.conserved for s in summaries)
    truth = pd.read_csv(root / "truth.csv", dtype=str, keep_default_na=False)
    truth["key"] = truth["file"].map(_source_key)
    staged = pd.concat(pq.read_table(f, columns=["_file_id", "_row_no", "_dept", "_feed", "_received_date", "_source_name"]).to_pandas()
                       for f in sorted(root.glob("staging/*/*/*.parquet")))
    failures = pd.concat(pq.read_table(f).to_pandas() for f in sorted(root.glob("validated/*/*/failures.parquet")))
    quarantined = pd.concat(pq.read_table(f, columns=["_file_id", "_row_no"]).to_pandas()
                            for f in sorted(root.glob("validated/*/*/quarantined.parquet")))
    errs = (failures[failures["severity"] == "error"].groupby(["_file_id", "_row_no"])["rule_id"]
            .apply(lambda s: ";".join(sorted(set(s)))).rename("ours").reset_index())
    ours = staged.merge(errs, on=["_file_id", "_row_no"], how="left").fillna({"ours": ""})
    ours["key"] = ours["_source_name"].map(_source_key)
    ours["received_date"] = ours["_received_date"].astype(str)
    ours["row_no"] = ours["_row_no"].astype(str)
    joined = truth.merge(ours, left_on=["feed", "dept", "received_date", "key", "row_no"],
                         right_on=["_feed", "_dept", "received_date", "key", "row_no"], how="outer", indicator=True)
    assert (joined["_merge"] == "both").all(), joined[joined["_merge"] != "both"].head(10).to_string()
    assert len(joined) == len(truth) > 300
    wrong = joined[joined["rule_ids"] != joined["ours"]]
    assert wrong.empty, wrong[["feed", "dept", "file", "row_no", "rule_ids", "ours", "defect"]].head(20).to_string()
    # quarantined rows = rows truth calls invalid
    assert len(quarantined) == (truth["valid"] == "false").sum() > 10
    kinds = set(truth.loc[truth["rule_ids"] != "", "rule_ids"].str.split(";").explode())
    assert len(kinds) >= 8, kinds  # the sample exercises many different rules
