"""Ingest the sample generator's output and compare row by row with its truth.csv."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date, timedelta

import pytest

from assets.ingest import HttpSettings, ingest_day, read_staged
from ingest_helpers import manifest

sample_feeds = pytest.importorskip("pipelines.samples.feeds")
from pipelines.samples.http import start_sample_server  # noqa: E402

START = date(2026, 3, 2)
DAYS = 3
TOKEN = "sample-token"


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, ):
    from contracts.loader import load_contracts, load_registry
    from warehouse.layout import DataDir

    contracts = load_contracts()
    registry = load_registry(contracts=contracts)
    root = tmp_path_factory.mktemp("truth") / "data"
    sample_feeds.generate(root, start=START, days=DAYS, rows_per_day=25, seed=11)
    dd = DataDir(root)
    env = {d.delivery_for(f).token_env: TOKEN for d in registry.departments for f in d.feeds
           if d.delivery_for(f).token_env}
    tokens = {d.code: TOKEN for d in registry.departments if any(d.delivery_for(f).kind == "http" for f in d.feeds)}
    server, base = start_sample_server(dd, tokens=tokens)
    summaries = []
    try:
        for i in range(DAYS):
            summaries.append(ingest_day(dd, START + timedelta(days=i), contracts, registry,
                                        http=HttpSettings(base_url=base, max_attempts=2, backoff=0.01), env=env))
    finally:
        server.stop()
    return dd, contracts, summaries


def _truth(dd) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    with open(dd.truth, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            out[row["file"]].append(int(row["row_no"]))
    return out


def _delivered_path(m: dict) -> str:
    day = m["received_date"].isoformat()
    if m["source"] == "http":
        return f"http_outbox/{m['dept']}/{m['feed']}/{day}.json"
    return f"inbox/{m['dept']}/{m['feed']}/{day}/{m['original_name']}"


def test_nothing_rejected(ingested):
    _, _, summaries = ingested
    rejected = [str(r) for s in summaries for r in s.rejected]
    assert not rejected


def test_rows_per_file_match_truth(ingested):
    dd, contracts, summaries = ingested
    truth = _truth(dd)
    records = {m["file_id"]: m for m in manifest(dd) if m["status"] == "parsed"}
    staged: dict[str, list[int]] = defaultdict(list)
    for feed in contracts:
        for i in range(DAYS):
            df = read_staged(dd, feed, START + timedelta(days=i))
            for fid, row_no in zip(df["_file_id"], df["_row_no"]):
                staged[_delivered_path(records[fid])].append(int(row_no))
    for m in records.values():  # files with 0 rows count too
        staged.setdefault(_delivered_path(m), [])
    files_with_rows = {k: sorted(v) for k, v in staged.items() if v}
    assert files_with_rows == {k: sorted(v) for k, v in truth.items()}
    # rows_parsed in the manifest agrees with the staged files
    for m in records.values():
        assert m["rows_parsed"] == len(staged[_delivered_path(m)])
    assert sum(s.rows_total for s in summaries) == sum(len(v) for v in truth.values())
