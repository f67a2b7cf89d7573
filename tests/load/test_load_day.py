"""load_day: versions, current, idempotent reruns, crash safety, quarantine closing, revocation."""

from __future__ import annotations

import hashlib
from datetime import date

import duckdb
import pytest

import assets.load.load as load_mod
from assets.load.load import load_day, month_file, part_file, rebuild_parquet
from validated_builder import file_id, penalty, permit, write_validated
from warehouse.layout import DataDir

D1, D2, D3 = date(2026, 9, 23), date(2026, 9, 24), date(2026, 10, 12)


def table_checksums(dd: DataDir) -> dict[str, str]:
    con = duckdb.connect(str(dd.db_path), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' ORDER BY 1").fetchall()]
        out = {}
        for t in tables:
            rows = con.execute(f'SELECT CAST(x AS VARCHAR) AS s FROM "{t}" x ORDER BY s').fetchall()
            out[t] = hashlib.md5("\n".join(r[0] for r in rows).encode()).hexdigest() + f":{len(rows)}"
        return out
    finally:
        con.close()


def parquet_rows(dd: DataDir) -> dict[str, list[tuple]]:
    """Every Parquet data file's columns and rows, in the file's order."""
    root = dd.parquet_root
    con = duckdb.connect()
    try:
        return {str(p.relative_to(root)): con.execute(
                    f"SELECT * FROM read_parquet('{p}', hive_partitioning = false)").fetchall()
                for p in sorted(root.rglob("*.parquet")) if not p.name.startswith(".")}
    finally:
        con.close()


def parquet_bytes(dd: DataDir) -> dict[str, bytes]:
    root = dd.parquet_root
    """The Parquet data files (hidden temporaries excluded) and their bytes."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def hidden_files(dd: DataDir) -> list:
    return [p for p in dd.parquet_root.rglob(".*")] if dd.parquet_root.exists() else []


def q(dd: DataDir, sql: str):
    con = duckdb.connect(str(dd.db_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def dd(tmp_path):
    return DataDir(tmp_path / "data")


def day1(dd, contracts):
    write_validated(
        dd, contracts["permits"], D1,
        passed=[permit("许A1", D1), permit("许A2", "2026-09-22", row=3)],
        quarantined=[permit("许A3", "2026-09-21", row=4, subject_name=None)],
        failures=[{"_file_id": file_id("f1"), "_row_no": 4, "_dept": "scjgj", "rule_id": "subject_name.required",
                   "field": "subject_name", "message": "行政相对人名称必须填写"}],
    )


def test_versions_current_and_types(dd, contracts):
    day1(dd, contracts)
    s = load_day(dd, D1, contracts)
    assert s.feeds["permits"].loaded_rows == 2 and s.feeds["permits"].quarantined_rows == 1
    rows = q(dd, "SELECT _key, decision_date, typeof(decision_date), _version_count, _first_valid_received, _revoked, _period_month FROM permits_current ORDER BY _key")
    assert rows == [
        ("许A1|11500237743131669T", D1, "DATE", 1, D1, False, "2026-09"),
        ("许A2|11500237743131669T", date(2026, 9, 22), "DATE", 1, D1, False, "2026-09"),
    ]
    # a resubmission on a later day replaces the current version; history keeps both
    write_validated(dd, contracts["permits"], D2, passed=[permit("许A1", D1, fid="f2", permit_content="更正后的内容")])
    load_day(dd, D2, contracts)
    assert q(dd, "SELECT count(*) FROM permits_versions WHERE decision_no = '许A1'") == [(2,)]
    assert q(dd, "SELECT permit_content, _version_count, _first_valid_received, _received_date FROM permits_current WHERE decision_no = '许A1'") == [
        ("更正后的内容", 2, D1, D2)
    ]
    assert q(dd, "SELECT count(*) FROM permits_current") == [(2,)]
    # decimals and integers are typed too
    write_validated(dd, contracts["penalties"], D2, passed=[penalty("罚1", D1, fine_amount="1234.5")])
    load_day(dd, D2, contracts)
    assert q(dd, "SELECT fine_amount, typeof(fine_amount) FROM penalties_current") == [(pytest.approx(1234.5), "DECIMAL(18,4)")]


def test_loading_an_earlier_day_later_does_not_override_newer_version(dd, contracts):
    write_validated(dd, contracts["permits"], D2, passed=[permit("许A1", D1, fid="f2", permit_content="新")])
    load_day(dd, D2, contracts)
    write_validated(dd, contracts["permits"], D1, passed=[permit("许A1", D1, permit_content="旧")])
    load_day(dd, D1, contracts)  # backfill of an older day
    assert q(dd, "SELECT permit_content, _version_count FROM permits_current") == [("新", 2)]


def test_rerun_same_day_is_identical(dd, contracts):
    day1(dd, contracts)
    load_day(dd, D1, contracts)
    write_validated(dd, contracts["permits"], D2, passed=[permit("许A3", "2026-09-21", fid="f2")])
    load_day(dd, D2, contracts)
    before, pq_before = table_checksums(dd), parquet_bytes(dd)
    assert pq_before  # Parquet parts exist
    s = load_day(dd, D2, contracts)
    assert s.feeds["permits"].replaced_rows == 1
    load_day(dd, D1, contracts)
    assert table_checksums(dd) == before
    assert parquet_bytes(dd) == pq_before


def test_parquet_parts_by_month_and_received_day(dd, contracts):
    day1(dd, contracts)
    load_day(dd, D1, contracts)
    f = part_file(dd, "permits", "2026-09", D1)
    assert f.exists() and f.relative_to(dd.parquet_root).as_posix() == "permits/decision_month=2026-09/received_date=2026-09-23.parquet"
    assert f.parent == month_file(dd, "permits", "2026-09")
    # a correction moves a record to another decision month: the old day's part is rewritten
    # without it, the night's part is written in the new month
    write_validated(dd, contracts["permits"], D3, passed=[permit("许A2", "2026-10-09", fid="f3")])
    s = load_day(dd, D3, contracts)
    assert s.feeds["permits"].months_written == ["2026-09", "2026-10"]
    assert s.feeds["permits"].parts_written == 2
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT decision_month, decision_no, _received_date FROM read_parquet('{dd.parquet_root}/permits/*/*.parquet', hive_partitioning=true) ORDER BY 2"
    ).fetchall()
    assert rows == [("2026-09", "许A1", D1), ("2026-10", "许A2", D3)]
    # untouched parts are not rewritten: a new record of September adds a part of its own day
    mtimes = {p: p.stat().st_mtime_ns for p in dd.parquet_root.rglob("*.parquet")}
    D4 = date(2026, 10, 13)
    write_validated(dd, contracts["permits"], D4, passed=[permit("许A9", "2026-09-30", fid="f4")])
    s = load_day(dd, D4, contracts)
    assert s.feeds["permits"].months_written == ["2026-09"] and s.feeds["permits"].parts_written == 1
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert part_file(dd, "permits", "2026-09", D4).exists()
    # a part whose every row is superseded is deleted, and its month directory when left empty
    write_validated(dd, contracts["permits"], date(2026, 10, 14), passed=[permit("许A2", "2026-11-02", fid="f5")])
    s = load_day(dd, date(2026, 10, 14), contracts)
    assert s.feeds["permits"].parts_removed == 1 and s.feeds["permits"].months_removed == ["2026-10"]
    assert not month_file(dd, "permits", "2026-10").exists()
    # rebuild gives the same bytes
    before = parquet_bytes(dd)
    rebuild_parquet(dd, contracts)
    assert parquet_bytes(dd) == before


def test_part_that_only_lost_rows_is_rewritten_from_its_file(dd, contracts):
    """An older part that lost rows to the night is its own file minus the night's keys (the rows, in
    the order, of a rewrite from the current table; the bytes may differ at scale, where DuckDB's
    writer pages a column by the batches it reads); a file out of line with the current table (a crash
    between commit and rename) is rewritten from the table instead."""
    rows = [permit(f"许B{i:03d}", "2026-09-20", row=i + 2) for i in range(40)]
    write_validated(dd, contracts["permits"], D1, passed=rows)
    load_day(dd, D1, contracts)
    old = part_file(dd, "permits", "2026-09", D1)
    write_validated(dd, contracts["permits"], D2, passed=[permit("许B007", "2026-09-20", fid="f2", permit_content="改")])
    s = load_day(dd, D2, contracts)
    assert s.feeds["permits"].parts_written == 2
    got = parquet_rows(dd)
    rebuild_parquet(dd, contracts)
    assert parquet_rows(dd) == got
    assert q(dd, "SELECT count(*) FROM permits_current WHERE _received_date = DATE '2026-09-23'") == [(39,)]
    # the D1 part on disk is stale (still holds 许B011); the next night's rewrite notices
    stale = old.read_bytes()
    write_validated(dd, contracts["permits"], D3, passed=[permit("许B011", "2026-09-20", fid="f3")])
    load_day(dd, D3, contracts)
    good = parquet_bytes(dd)
    old.write_bytes(stale)  # as if the rename of D3's night never happened
    write_validated(dd, contracts["permits"], date(2026, 10, 13), passed=[permit("许B012", "2026-09-20", fid="f4")])
    load_day(dd, date(2026, 10, 13), contracts)
    after = parquet_rows(dd)
    rebuild_parquet(dd, contracts)
    assert parquet_rows(dd) == after and parquet_bytes(dd) != good
    con = duckdb.connect()
    n = con.execute(f"SELECT count(*) FROM read_parquet('{dd.parquet_root}/permits/*/*.parquet')").fetchall()
    assert n == [(40,)]


def test_whole_month_layout_is_converted_to_parts(dd, contracts):
    """A warehouse written in the earlier layout (decision_month=<M>/data.parquet) gets parts on the
    next load, with no leftover month file (no row read twice)."""
    day1(dd, contracts)
    load_day(dd, D1, contracts)
    expected = parquet_bytes(dd)
    legacy = month_file(dd, "permits", "2026-09") / "data.parquet"
    part_file(dd, "permits", "2026-09", D1).rename(legacy)
    load_day(dd, D1, contracts)
    assert parquet_bytes(dd) == expected and not legacy.exists()
    part_file(dd, "permits", "2026-09", D1).rename(legacy)
    rebuild_parquet(dd, contracts)
    assert parquet_bytes(dd) == expected


def test_crash_mid_load_keeps_previous_state(dd, contracts, monkeypatch):
    day1(dd, contracts)
    load_day(dd, D1, contracts)
    before, pq_before = table_checksums(dd), parquet_bytes(dd)
    # night 2 touches penalties and permits; fail while writing the permits Parquet, after
    # the penalties and permits tables were already changed inside the transaction
    write_validated(dd, contracts["penalties"], D2, passed=[penalty("罚1", D1)])
    write_validated(dd, contracts["permits"], D2, passed=[permit("许A1", D1, fid="f2", permit_content="改")],
                    quarantined=[permit("许A7", D1, fid="f2", row=3, decision_doc_name=None)])
    real = load_mod._write_part_tmp

    def boom(con, data_dir, contract, month, day):
        if contract.feed == "permits":
            raise RuntimeError("injected failure")
        return real(con, data_dir, contract, month, day)

    monkeypatch.setattr(load_mod, "_write_part_tmp", boom)
    with pytest.raises(RuntimeError, match="injected"):
        load_day(dd, D2, contracts)
    assert table_checksums(dd) == before
    assert parquet_bytes(dd) == pq_before
    assert hidden_files(dd) == []  # no temporaries left behind
    monkeypatch.undo()
    load_day(dd, D2, contracts)
    assert q(dd, "SELECT count(*) FROM penalties_current") == [(1,)]


def test_rerun_after_a_crash_between_commit_and_rename_repairs_older_parts(dd, contracts, monkeypatch):
    """A crash after the commit leaves DuckDB ahead of Parquet: the current table already has the
    night's winners, the older part on disk still holds the rows they superseded. Loading the
    night again brings every part in line with the current table (no record twice)."""
    rows = [permit(f"许C{i:03d}", "2026-09-20", row=i + 2) for i in range(10)]
    write_validated(dd, contracts["permits"], D1, passed=rows)
    load_day(dd, D1, contracts)
    write_validated(dd, contracts["permits"], D2, passed=[permit("许C003", "2026-09-20", fid="f2", permit_content="改"),
                                                        permit("许C020", "2026-09-21", fid="f2", row=3)])

    def crash(pending):
        raise KeyboardInterrupt("killed between commit and rename")

    monkeypatch.setattr(load_mod, "_publish_pending", crash)
    with pytest.raises(KeyboardInterrupt):
        load_day(dd, D2, contracts)
    monkeypatch.undo()
    assert q(dd, "SELECT count(*) FROM permits_current") == [(11,)]  # committed
    load_day(dd, D2, contracts)
    con = duckdb.connect()
    on_disk = con.execute(
        f"SELECT decision_no, _received_date, permit_content FROM read_parquet('{dd.parquet_root}/permits/*/*.parquet') ORDER BY 1"
    ).fetchall()
    current = q(dd, "SELECT decision_no, _received_date, permit_content FROM permits_current ORDER BY 1")
    assert on_disk == current and len(on_disk) == 11
    assert [r for r in on_disk if r[0] == "许C003"] == [("许C003", D2, "改")]
    after = parquet_bytes(dd)
    rebuild_parquet(dd, contracts)
    assert parquet_rows(dd).keys() == {k for k in after}  # the same parts as a rewrite from the table


def test_killed_subprocess_leaves_previous_state(dd, contracts, tmp_path):
    import subprocess
    import sys
    import textwrap

    day1(dd, contracts)
    load_day(dd, D1, contracts)
    before, pq_before = table_checksums(dd), parquet_bytes(dd)
    write_validated(dd, contracts["permits"], D2, passed=[permit("许A1", D1, fid="f2", permit_content="改")])
    script = tmp_path / "kill.py"
    script.write_text(textwrap.dedent(f"""
        import os
        import assets.load.load as m
        from contracts.loader import load_contracts
        real = m._write_part_tmp
        def die(*a, **k):
            real(*a, **k)
            os._exit(9)   # the process dies hard: no rollback, no cleanup
        m._write_part_tmp = die
        m.load_day({str(dd.root)!r}, "{D2}", load_contracts())
    """))
    r = subprocess.run([sys.executable, str(script)], capture_output=True)
    assert r.returncode == 9, r.stderr.decode()
    assert table_checksums(dd) == before
    assert parquet_bytes(dd) == pq_before  # a leftover temporary is a hidden file, not a data file
    load_day(dd, D2, contracts)
    assert hidden_files(dd) == []  # the rerun removed it
    assert q(dd, "SELECT permit_content FROM permits_current WHERE decision_no = '许A1'") == [("改",)]


def test_corrected_resubmission_closes_quarantine_item(dd, contracts):
    day1(dd, contracts)
    load_day(dd, D1, contracts)
    items = q(dd, "SELECT feed, dept, row_no, received_date, business_key, rule_ids, messages, status FROM quarantine_items")
    assert items == [("permits", "scjgj", 4, D1, "许A3|11500237743131669T", "subject_name.required", "行政相对人名称必须填写", "open")]
    write_validated(dd, contracts["permits"], D2, passed=[permit("许A3", "2026-09-21", fid="f2")])
    s = load_day(dd, D2, contracts)
    assert s.feeds["permits"].quarantine_closed == 1
    assert q(dd, "SELECT status, closed_by_file_id, closed_on FROM quarantine_items") == [("closed", file_id("f2"), D2)]
    # re-loading day 1 (rerun) keeps it closed; reloading day 2 without the fix reopens it
    load_day(dd, D1, contracts)
    assert q(dd, "SELECT status FROM quarantine_items") == [("closed",)]
    write_validated(dd, contracts["permits"], D2, passed=[])
    load_day(dd, D2, contracts)
    assert q(dd, "SELECT status, closed_by_file_id FROM quarantine_items") == [("open", None)]
    # a valid version received BEFORE the bad row does not close it
    write_validated(dd, contracts["permits"], date(2026, 9, 22), passed=[permit("许A3", "2026-09-21", fid="f0")])
    load_day(dd, date(2026, 9, 22), contracts)
    assert q(dd, "SELECT status FROM quarantine_items") == [("open",)]


def test_revocation_keeps_record(dd, contracts):
    day1(dd, contracts)
    load_day(dd, D1, contracts)
    write_validated(dd, contracts["permits"], D2, passed=[permit("许A1", D1, fid="f2", status="无效")])
    load_day(dd, D2, contracts)
    assert q(dd, "SELECT _revoked, status, _version_count FROM permits_current WHERE decision_no = '许A1'") == [(True, "无效", 2)]
    assert q(dd, "SELECT decision_no FROM public_permits ORDER BY 1") == [("许A2",)]
