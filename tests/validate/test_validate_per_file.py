"""validate_day validates staged files one at a time: same outputs as validating the day at once."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from assets.validate import validate_day, validate_frame
from assets.validate.engine import FAILURE_COLUMNS, FAILURE_SCHEMA, read_staged
from validate_helpers import GOOD_PENALTY, RECEIVED, staged
from warehouse.layout import DataDir


def _write(tmp_path, contract, frame, name, drop=()):
    folder = DataDir(tmp_path).staging_dir(contract.feed, RECEIVED)
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame.drop(columns=list(drop)), preserve_index=False)
    i = table.schema.get_field_index("_received_date")
    table = table.set_column(i, "_received_date", pa.array([RECEIVED] * len(frame), pa.date32()))
    pq.write_table(table, folder / f"{name}.parquet")


def _files(P, same_file_id: bool):
    dup = {**GOOD_PENALTY, "decision_no": "D1"}
    a = staged(P, [dup, {**GOOD_PENALTY, "decision_no": "A2", "decision_date": None}, dup],
               file_id="a", dept="scjgj")
    b = staged(P, [dup, {**GOOD_PENALTY, "decision_no": "B2", "fine_amount": "x"}],
               file_id="a" if same_file_id else "b", dept="jtysj")
    c = staged(P, [{**GOOD_PENALTY, "decision_no": "C1", "org_code": "12345678-9"}, dup],
               file_id="a" if same_file_id else "c", dept="nyncw")
    return a, b, c


def _check(tmp_path, P, same_file_id: bool):
    a, b, c = _files(P, same_file_id)
    _write(tmp_path, P, a, "1")
    _write(tmp_path, P, b, "2", drop=["remarks"])  # a column missing in one file: null there
    _write(tmp_path, P, c, "3")
    whole = read_staged(tmp_path, "penalties", RECEIVED)
    expected = validate_frame(P, whole.to_pandas())
    summary = validate_day(tmp_path, RECEIVED, {"penalties": P})
    out = DataDir(tmp_path).validated_dir("penalties", RECEIVED)
    passed = pq.read_table(out / "passed.parquet")
    quarantined = pq.read_table(out / "quarantined.parquet")
    failures = pq.read_table(out / "failures.parquet")
    assert passed.column_names == whole.column_names + ["_warnings"]
    # what validating the day as one table gives (the former validate_day)
    err = expected.error_mask
    keep = pa.array([i for i in range(len(err)) if not err[i]], pa.int64())
    want_passed = whole.take(keep).append_column(
        "_warnings", pa.array(list(expected.warning_ids[~err]), pa.string()))
    assert passed.equals(want_passed)
    assert quarantined.equals(whole.take(pa.array([i for i in range(len(err)) if err[i]], pa.int64())))
    want = pa.Table.from_pandas(expected.failures[FAILURE_COLUMNS], schema=FAILURE_SCHEMA, preserve_index=False)
    assert failures.equals(want)
    assert str(failures.to_pandas()["_row_no"].dtype) == "Int64"
    s = summary.feeds["penalties"]
    assert (s.received, s.passed, s.quarantined) == (7, len(expected.passed), len(expected.quarantined))
    assert s.files == (1 if same_file_id else 3)
    assert s.errors_by_rule == expected.failures[expected.failures["severity"] == "error"]["rule_id"].value_counts().sort_index().to_dict()
    # reruns give equal bytes
    first = {p.name: p.read_bytes() for p in out.glob("*.parquet")}
    validate_day(tmp_path, RECEIVED, {"penalties": P})
    assert first == {p.name: p.read_bytes() for p in out.glob("*.parquet")}
    assert not list(out.glob(".*.tmp"))
    return expected


def test_per_file_matches_whole_day(tmp_path, contracts):
    expected = _check(tmp_path, contracts["penalties"], same_file_id=False)
    # duplicates across files are not duplicates (unique_key is per file)
    assert list(expected.quarantined["decision_no"]) == ["D1", "A2", "D1", "B2"]


def test_shared_file_id_falls_back_to_whole_day(tmp_path, contracts):
    expected = _check(tmp_path, contracts["penalties"], same_file_id=True)
    assert list(expected.quarantined["decision_no"]).count("D1") == 4
