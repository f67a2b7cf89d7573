"""The province lake with real components: PostgreSQL catalog, moto S3 on 127.0.0.1, pyiceberg,
DuckDB views over pyarrow datasets; county batches built by the real push code."""

from __future__ import annotations

import json
import random
from datetime import date

import duckdb
import pytest

from assets.province import lake as lk
from assets.province.partition import catalog_for, load_partition, measure_partition
from conftest import county_push, deliver, valid_penalty, valid_permit

DAY = date(2026, 10, 12)


def _push_two(tmp_path, shipped):
    rng = random.Random(7)
    a = county_push(tmp_path, shipped, "500237", DAY,
                    penalties=[valid_penalty(rng, "罚A1", date(2026, 10, 9), 2), valid_penalty(rng, "罚A2", date(2026, 9, 10), 3)],
                    permits=[valid_permit(rng, "许A1", date(2026, 10, 9), 2)])
    b = county_push(tmp_path, shipped, "500238", DAY,
                    penalties=[valid_penalty(rng, "罚B1", date(2026, 10, 10), 2)])
    prov = tmp_path / "province"
    deliver(prov, a)
    deliver(prov, b)
    return prov, a, b


def test_two_counties_land_and_read_back_through_duckdb_and_pyiceberg(tmp_path, shipped, lake_env, province_settings):
    contracts, _ = shipped
    prov, a, b = _push_two(tmp_path, shipped)
    sa = load_partition(prov, "500237", DAY, contracts, province_settings)
    sb = load_partition(prov, "500238", DAY, contracts, province_settings)
    assert (sa.rows_in, sa.loaded, sa.quarantined) == (3, 3, 0)
    assert (sb.rows_in, sb.loaded, sb.quarantined) == (1, 1, 0)
    fa = measure_partition("500237", DAY, contracts, province_settings).to_pylist()
    assert {(r["feed"], r["received_rows"], r["timed_records"], r["on_time_records"]) for r in fa} == {
        ("penalties", 2, 2, 1), ("permits", 1, 1, 1)}
    measure_partition("500238", DAY, contracts, province_settings)
    con = duckdb.connect()
    views = lk.register_lake(con, province_settings)
    assert {"records_penalties", "current_penalties", "quarantine", "county_metrics_daily"} <= set(views)
    rows = con.execute("SELECT county_code, county_name, feed, received_rows, loaded_rows, on_time_records, late_records "
                       "FROM county_metrics_daily ORDER BY ALL").fetchall()
    assert rows == [("500237", "巫山县", "penalties", 2, 2, 1, 1), ("500237", "巫山县", "permits", 1, 1, 1, 0),
                    ("500238", "巫溪县", "penalties", 1, 1, 1, 0)]
    # the records keep the county warehouse's types, so analysts' engines compare dates and sums
    assert con.execute("SELECT DISTINCT typeof(decision_date), typeof(fine_amount) FROM records_penalties").fetchall() == [
        ("DATE", "DECIMAL(18,4)")]
    assert con.execute("SELECT sum(fine_amount) FROM current_penalties").fetchall()[0][0] == 1.5
    _, catalog = catalog_for(province_settings)
    via_iceberg = catalog.load_table(("credit", "county_metrics_daily")).scan().to_arrow()
    assert sorted((r["county_code"], r["feed"], r["received_rows"], r["on_time_records"], r["late_records"])
                  for r in via_iceberg.to_pylist()) == sorted((r[0], r[2], r[3], r[5], r[6]) for r in rows)


def _contents(catalog):
    """Every lake table's rows, sorted (what a rerun must reproduce)."""
    out = {}
    for ident in catalog.list_tables("credit"):
        rows = catalog.load_table(ident).scan().to_arrow().to_pylist()
        out[ident[-1]] = sorted(json.dumps(r, sort_keys=True, default=str, ensure_ascii=False) for r in rows)
    return out


def _history(catalog):
    return {ident[-1]: len(catalog.load_table(ident).history()) for ident in catalog.list_tables("credit")}


def _run(prov, county, contracts, settings):
    load_partition(prov, county, DAY, contracts, settings)
    measure_partition(county, DAY, contracts, settings)


def test_rerun_gives_the_same_lake_and_one_snapshot_per_table(tmp_path, shipped, lake_env, province_settings):
    contracts, _ = shipped
    prov, _, _ = _push_two(tmp_path, shipped)
    _run(prov, "500237", contracts, province_settings)
    _run(prov, "500238", contracts, province_settings)
    _, catalog = catalog_for(province_settings)
    before, hist = _contents(catalog), _history(catalog)
    assert set(hist) == {*(lk.records_table(f) for f in lk.lake_feeds(contracts)), "quarantine", "county_metrics_daily"}
    assert all(n == 2 for n in hist.values())  # one snapshot per table per county run
    _run(prov, "500237", contracts, province_settings)
    assert _contents(catalog) == before
    assert {k: v - hist[k] for k, v in _history(catalog).items()} == {k: 1 for k in hist}
    # the other county's partition is untouched by the rerun
    t = catalog.load_table(("credit", "records_penalties"))
    assert {r["county_code"] for r in t.scan().to_arrow().to_pylist()} == {"500237", "500238"}
    assert t.current_snapshot().summary.operation.value == "overwrite"


def test_a_failure_before_the_commit_leaves_the_previous_snapshot(tmp_path, shipped, lake_env, province_settings, monkeypatch):
    contracts, _ = shipped
    prov, _, _ = _push_two(tmp_path, shipped)
    _run(prov, "500237", contracts, province_settings)
    _, catalog = catalog_for(province_settings)
    before = _contents(catalog)
    snap = catalog.load_table(("credit", "records_penalties")).current_snapshot().snapshot_id
    # a later batch arrives; the run dies between writing the data files and the commit
    rng = random.Random(3)
    more = county_push(tmp_path / "later", shipped, "500237", DAY,
                       penalties=[valid_penalty(rng, "罚A9", date(2026, 10, 11), 2)])
    deliver(prov, more)

    def boom(name):
        if name == "records_penalties":
            raise RuntimeError("injected failure before commit")

    original = lk._before_commit
    monkeypatch.setattr(lk, "_before_commit", boom)
    with pytest.raises(RuntimeError, match="injected"):
        load_partition(prov, "500237", DAY, contracts, province_settings)
    t = catalog.load_table(("credit", "records_penalties"))
    assert t.current_snapshot().snapshot_id == snap
    assert _contents(catalog)["records_penalties"] == before["records_penalties"]
    con = duckdb.connect()
    lk.register_lake(con, province_settings)  # still readable through DuckDB
    assert con.execute("SELECT count(*) FROM records_penalties").fetchall()[0][0] == 2
    monkeypatch.setattr(lk, "_before_commit", original)
    _run(prov, "500237", contracts, province_settings)
    lk.register_lake(con, province_settings)
    assert con.execute("SELECT count(*) FROM records_penalties").fetchall()[0][0] == 3


def test_a_bad_row_is_quarantined_with_its_chinese_reason_and_withdrawals_leave_the_current_view(
        tmp_path, shipped, lake_env, province_settings):
    contracts, _ = shipped
    prov, a, _ = _push_two(tmp_path, shipped)
    folder = prov / "inbox" / "500237" / str(DAY)
    pen = next(p for p in folder.glob("*.json") if json.loads(p.read_text("utf-8"))["feed"] == "penalties")
    doc = json.loads(pen.read_text("utf-8"))
    doc["records"][1]["CF_JDRQ"] = "2026-02-30"  # not a real day
    key = {k: doc["records"][0][k] for k in ("CF_WSH", "CF_CFJGDM")}
    doc["withdrawals"] = [{**key, "CXYY": "撤销"}, {"CXYY": "撤销"}]  # the second names no record
    pen.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    (folder / "garbled.json").write_bytes(b"{not json")
    s = load_partition(prov, "500237", DAY, contracts, province_settings)
    assert s.rows_in == 3 + 2 + 1 == s.loaded + s.quarantined
    assert (s.loaded, s.quarantined) == (2 + 1, 1 + 1 + 1)
    measure_partition("500237", DAY, contracts, province_settings)
    load_partition(prov, "500238", DAY, contracts, province_settings)
    con = duckdb.connect()
    lk.register_lake(con, province_settings)
    q = con.execute("SELECT feed, row_number, rule_ids, reasons FROM quarantine "
                    "WHERE county_code = '500237' ORDER BY feed, row_number").fetchall()
    assert [r[:2] for r in q] == [("", 0), ("penalties", 2), ("penalties", 4)]
    assert "无法解析" in q[0][3]
    assert "decision_date.type" in q[1][2] and "处罚决定日期" in q[1][3] and "2026-02-30" in q[1][3]
    assert "撤回记录缺少主键字段" in q[2][3]
    # the withdrawn record left the current view; the other county's records are untouched
    assert con.execute("SELECT count(*) FROM current_penalties WHERE county_code = '500237'").fetchall()[0][0] == 0
    assert con.execute("SELECT count(*) FROM current_penalties WHERE county_code = '500238'").fetchall()[0][0] == 1
    fig = con.execute("SELECT received_rows, passed_rows, quarantined_rows, compliance_rate FROM county_metrics_daily "
                      "WHERE county_code = '500237' AND feed = 'penalties'").fetchall()
    assert fig == [(2, 1, 1, 0.5)]
    # no full identifier in the quarantine's reasons
    from warehouse.masking import find_unmasked

    assert not find_unmasked(" ".join(r[3] for r in q))


def test_concurrent_counties_retry_their_commits(tmp_path, shipped, lake_env, province_settings, monkeypatch, caplog):
    """Two counties' runs race for the same tables: the loser's commit fails its compare-and-swap
    in the catalog and is redone; both partitions end in the lake."""
    import threading

    contracts, _ = shipped
    prov, _, _ = _push_two(tmp_path, shipped)
    # a fresh lake: both runs create the namespace and tables, then reach the first commit together
    barrier = threading.Barrier(2, timeout=30)
    seen = []

    def meet(name):
        if name == "records_penalties" and len(seen) < 2:
            seen.append(name)
            barrier.wait()

    monkeypatch.setattr(lk, "_before_commit", meet)
    errors = []

    def run(county):
        try:
            load_partition(prov, county, DAY, contracts, province_settings)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    caplog.set_level("WARNING", logger="pyiceberg")
    threads = [threading.Thread(target=run, args=(c,)) for c in ("500237", "500238")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    _, catalog = catalog_for(province_settings)
    rows = catalog.load_table(("credit", "records_penalties")).scan().to_arrow().to_pylist()
    assert sorted((r["county_code"], r["decision_no"]) for r in rows) == [
        ("500237", "罚A1"), ("500237", "罚A2"), ("500238", "罚B1")]
    # one of the two commits lost the race and was replayed: still one snapshot per run
    assert len(catalog.load_table(("credit", "records_penalties")).history()) == 2
    assert any("concurrent update" in r.getMessage() for r in caplog.records)


def test_province_settings_are_validated():
    from pydantic import ValidationError

    from contracts.config import Settings

    ok = Settings.model_validate({"province": {"counties": [{"code": "500237", "name": "巫山县"}],
                                               "lake": {"warehouse": "s3://credit-lake/prov"}}})
    assert ok.province.lake.bucket == "credit-lake" and ok.province.county_name("500237") == "巫山县"
    for bad in ({"lake": {"warehouse": "s3://credit-lake/prov", "secret_key": "x"}},  # secrets never in the file
                {"lake": {"warehouse": "/var/lake"}},
                {"counties": [{"code": "5002", "name": "x"}]},
                {"counties": [{"code": "500237", "name": "a"}, {"code": "500237", "name": "b"}]},
                {"lake": {"warehouse": "s3://credit-lake/prov", "endpoint": "127.0.0.1:9000"}},
                {"county": []}):
        with pytest.raises(ValidationError):
            Settings.model_validate({"province": bad})
    with pytest.raises(lk.LakeConfigError, match="CREDIT_ETL_CATALOG_URI"):
        lk.access(ok.province.lake, env={"CREDIT_ETL_S3_ACCESS_KEY": "a", "CREDIT_ETL_S3_SECRET_KEY": "b"})


def test_a_settings_file_with_a_bad_province_section_names_file_and_field(tmp_path):
    import shutil

    from contracts import CONTRACTS_DIR
    from contracts.config import load_office_config
    from contracts.loader import ContractError

    root = tmp_path / "config"
    root.mkdir()
    shutil.copy(CONTRACTS_DIR / "departments.yaml", root / "departments.yaml")
    (root / "settings.yaml").write_text(
        "province:\n  counties: [{code: '500237', name: 巫山县}]\n"
        "  lake: {warehouse: 's3://credit-lake/p', access_key: 'AKIA-in-a-file'}\n", encoding="utf-8")
    with pytest.raises(ContractError) as err:
        load_office_config(root)
    assert "settings.yaml" in str(err.value) and "access_key" in str(err.value)
    (root / "settings.yaml").write_text(
        "province:\n  counties: [{code: '500237', name: 巫山县}]\n  lake: {warehouse: 's3://credit-lake/p'}\n",
        encoding="utf-8")
    assert load_office_config(root).settings.province.lake.bucket == "credit-lake"
