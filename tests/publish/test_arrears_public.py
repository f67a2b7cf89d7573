"""Issue 11 point 3: utility arrears stop showing once paid, and after their display limit.

Real path: CSV files in the inbox → ingest_day → validate_day → load_day → the public view in
the DuckDB file. A paid arrears record leaves ``public_utility_arrears`` the night its payment
(the same record sent again with 欠费状态 已缴清 and 缴清日期) arrives; its history stays."""

from __future__ import annotations

import csv
import io
from datetime import date

import duckdb

from assets.ingest import ingest_day
from assets.load.load import load_day
from assets.validate import validate_day
from warehouse.layout import DataDir

AUTH = "11500237743131669T"
ROW = {"user_name": "王五", "user_kind": "自然人", "user_id_no": "500237199512120018", "account_no": "W1",
       "fee_type": "水费", "billing_period": "2026-08", "arrears_amount": "800.00", "reminder_count": "2",
       "determination_date": "2026-10-05", "determination_reason": "两次催缴未缴",
       "determining_unit": "巫山县自来水有限公司", "determining_unit_uscc": AUTH,
       "phone": "13812345678", "address": "巫山县高唐街道广东中路88号"}


def deliver(dd: DataDir, contract, day: date, name: str, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([f.label for f in contract.fields])
    for r in rows:
        w.writerow([r.get(f.name) or "" for f in contract.fields])
    folder = dd.inbox / "water" / contract.feed / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(buf.getvalue().encode("gbk"))


def night(dd, day, contracts, registry):
    ingest_day(dd, day, contracts, registry, depts=["water"])
    validate_day(dd, day, contracts)
    load_day(dd, day, contracts)


def query(dd, sql):
    con = duckdb.connect(str(dd.db_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_paid_arrears_leave_the_public_view_the_night_the_payment_arrives(tmp_path, contracts, registry):
    dd = DataDir(tmp_path / "data")
    A = contracts["utility_arrears"]
    d1, d2 = date(2026, 10, 9), date(2026, 10, 12)
    deliver(dd, A, d1, "欠费_1009.csv", [
        {**ROW, "payment_status": "未缴清"},
        {**ROW, "account_no": "W2", "arrears_amount": "0.12万元"},  # 1200 yuan, converted
        {**ROW, "account_no": "W3", "arrears_amount": "300"},  # below the listing threshold
        {**ROW, "account_no": "W4", "determination_date": "2024-06-03", "billing_period": "2024-03"},  # display limit over
    ])
    night(dd, d1, contracts, registry)
    assert query(dd, "SELECT account_no, user_id_no, phone FROM public_utility_arrears ORDER BY 1") == [
        ("W1", "500237********0018", "138****5678"), ("W2", "500237********0018", "138****5678")]
    assert query(dd, "SELECT arrears_amount FROM utility_arrears_current WHERE account_no = 'W2'") == [(1200,)]
    assert query(dd, "SELECT split_part(business_key, '|', 1), rule_ids FROM quarantine_items") == [("W3", "ARR-LISTING")]
    # W4 is loaded (history) but past its 12-month display limit (determined 2024-06-03)
    assert query(dd, "SELECT count(*) FROM utility_arrears_current WHERE account_no = 'W4'") == [(1,)]

    deliver(dd, A, d2, "欠费_1012.csv", [{**ROW, "payment_status": "已缴清", "paid_date": "2026-10-10"}])
    night(dd, d2, contracts, registry)
    assert query(dd, "SELECT account_no FROM public_utility_arrears ORDER BY 1") == [("W2",)]
    # the history stays: both versions of W1, the current one paid
    assert query(dd, "SELECT count(*) FROM utility_arrears_versions WHERE account_no = 'W1'") == [(2,)]
    assert query(dd, "SELECT payment_status, paid_date, _revoked FROM utility_arrears_current WHERE account_no = 'W1'") == [
        ("已缴清", date(2026, 10, 10), True)]
