"""Data Docs validate a feed in row chunks (``gx_chunks``): the one merged result must be the
result of one Great Expectations run over the whole frame, expectation by expectation."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assets.validate.suites import run_suite
from test_ge import penalty_rows, subsidy_rows
from validate_helpers import staged

pytestmark = pytest.mark.filterwarnings("ignore")


def _comparable(result) -> list:
    return [(er.expectation_config.type, er.expectation_config.meta.get("rule_id"), er.success,
             json.dumps(er.result, sort_keys=True, default=str, ensure_ascii=False),
             bool(er.exception_info and er.exception_info.get("raised_exception")))
            for er in result.results]


@pytest.mark.parametrize("feed,make", [("penalties", penalty_rows), ("agri_subsidies", subsidy_rows)])
@pytest.mark.parametrize("result_format", ["SUMMARY", "COMPLETE"])
@pytest.mark.parametrize("chunk_rows", [5, 40])
def test_merged_chunks_equal_one_whole_run(contracts, feed, make, result_format, chunk_rows):
    contract = contracts[feed]
    df = staged(contract, make())
    whole, whole_failing = run_suite(contract, df, result_format=result_format)
    chunked, chunked_failing = run_suite(contract, df, result_format=result_format, chunk_rows=chunk_rows)

    assert _comparable(chunked) == _comparable(whole)
    assert chunked.success == whole.success
    assert chunked.statistics == whole.statistics
    assert {k: v.tolist() for k, v in chunked_failing.items()} == {k: v.tolist() for k, v in whole_failing.items()}
    assert chunked.meta["batch_markers"].get("pandas_data_fingerprint") == \
        whole.meta["batch_markers"].get("pandas_data_fingerprint")
    assert not any(exc for *_, exc in _comparable(whole))

    results = {er.expectation_config.meta["rule_id"]: er for er in whole.results}
    types = {er.expectation_config.type for er in whole.results}
    # every kind of expectation the suites compile to is compared, failing ones included
    assert {"expect_column_values_to_not_be_null", "expect_column_values_to_be_in_set",
            "expect_column_value_lengths_to_be_between", "expect_rows_to_pass_credit_rule",
            "expect_column_values_to_be_iso_dates", "expect_column_values_to_be_decimal_text"} <= types
    assert sum(not er.success for er in whole.results) >= (15 if feed == "penalties" else 5)
    if feed == "penalties":
        assert "expect_column_values_to_be_valid_uscc" in types and "expect_column_values_to_be_valid_ric" in types
        assert any(er.expectation_config.kwargs.get("row_condition") and not er.success for er in whole.results)
        # duplicates of one delivery far apart in the frame (87 rows, chunks of 5 or 40): found
        key = results["PEN-KEY-UNIQUE"].result
        assert key["unexpected_count"] >= 6
        assert len(df) > 2 * 40


def test_unchunked_only_when_the_rule_reads_other_rows(contracts):
    from assets.validate import gx_chunks
    from assets.validate.suites import build_suite

    contract = contracts["penalties"]
    configs = build_suite(contract).expectation_configurations
    whole = [c.meta["rule_id"] for c in configs if not gx_chunks.row_local(c, contract)]
    assert whole == ["PEN-KEY-UNIQUE"]


def test_staged_frames_chunks_are_the_day_in_order(tmp_path, contracts):
    """Chunks across files of different schemas: the day's rows in file order, dtypes of the
    whole day's frame, positions as index."""
    from assets.validate.engine import read_staged
    from assets.validate.suites import StagedFrames, _batch_frame
    from warehouse.layout import DataDir

    contract = contracts["penalties"]
    day = date(2026, 6, 10)
    layout = DataDir(tmp_path)
    folder = layout.staging_dir("penalties", day)
    folder.mkdir(parents=True)
    rows = staged(contract, penalty_rows())
    parts = [rows.iloc[:30], rows.iloc[30:31], rows.iloc[31:].drop(columns=["legal_rep"])]
    for i, part in enumerate(parts):
        pq.write_table(pa.Table.from_pandas(part.reset_index(drop=True), preserve_index=False), folder / f"{i}.parquet")
    whole = _batch_frame(contract, read_staged(tmp_path, "penalties", day).to_pandas())
    frames = StagedFrames(layout, contract, day, chunk_rows=8)
    chunks = list(frames.chunks())
    assert [len(c) for c in chunks[:-1]] == [8] * (len(chunks) - 1) and 0 < len(chunks[-1]) <= 8
    got = pd.concat(chunks)
    assert list(got.index) == list(range(len(whole)))
    pd.testing.assert_frame_equal(got, whole)
    assert dict(frames.empty().dtypes) == dict(whole.dtypes)
    narrow = frames.narrow(["decision_no", "legal_rep", "_file_id"])
    pd.testing.assert_frame_equal(narrow, whole[["decision_no", "legal_rep", "_file_id"]])
