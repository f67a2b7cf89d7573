"""Public views (masking, what is hidden) and the indicator export."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime

import duckdb
import openpyxl
import pytest
from stdnum.cn import uscc

from assets.load.load import load_day
from assets.measure.calendar import WorkCalendar
from assets.measure.metrics import measure_day
from assets.publish.export import COLUMNS, NOTE_COLUMN, build_export, write_export
from validated_builder import AUTH_A, declaration, file_id, penalty, permit, write_validated
from warehouse.layout import DataDir

ID_RE = re.compile(r"\d{17}[\dXx]")
IDS = ["50023719900307123X", "500237198001011234", "500237199512120018", "110101199003077777"]


def unmasked_ids(values) -> list[str]:
    found = []
    for v in values:
        if isinstance(v, str):
            found += [m for m in ID_RE.findall(v) if not uscc.is_valid(m)]
    return found


@pytest.fixture
def dd(tmp_path):
    return DataDir(tmp_path / "data")


def arrears_row(acct, *, fid="w1", row=2, **over):
    r = {"user_name": "王五", "user_kind": "自然人", "user_id_no": "500237199512120018", "account_no": acct, "fee_type": "水费",
         "billing_period": "2026-08", "arrears_amount": "800.00", "reminder_count": "2", "determination_date": "2026-09-07",
         "determination_reason": "两次催缴未缴", "determining_unit": "巫山县自来水有限公司", "determining_unit_uscc": AUTH_A,
         "phone": "13812345678", "address": "巫山县高唐街道广东中路88号3单元501",
         "_file_id": file_id(fid), "_row_no": row, "_dept": "water"}
    r.update(over)
    return r


def subsidy_row(no):
    return {"claim_no": no, "county": "巫山县", "township": "龙门街道", "recipient_name": "赵六", "recipient_id_no": "110101199003077777",
            "subsidy_type": "耕地地力保护补贴", "subsidised_area": "10.5", "contracted_area": "12", "total_subsidy": "1050.00",
            "status": "已发放", "payment_date": "2026-09-05", "granting_unit": "巫山县农业农村委员会", "granting_unit_uscc": AUTH_A,
            "_file_id": file_id("s1"), "_row_no": 2, "_dept": "nyncw"}


@pytest.fixture
def loaded(dd, contracts, registry, tmp_path):
    day = date(2026, 9, 10)
    pens = [
        penalty("P1", "2026-09-01", row=2),                                                # shown, ID masked
        penalty("P2", "2019-06-01", row=3, display_end="2020-01-01"),                     # 公示期 over
        penalty("P3", "2026-09-01", row=4, publicity_status="撤销"),                       # revoked
        penalty("P4", "2026-05-06", row=5),                                                # repaired (after 3 months)
        penalty("P5", "2026-05-06", row=6, procedure_kind="简易程序"),                      # 轻微 after 2026-04-01
        penalty("P6", "2026-05-06", row=7, penalty_category="警告", fine_amount=None),      # 轻微 (警告 only)
        penalty("P7", "2025-12-01", row=8, severity_tier="轻微", display_end="2099-12-31"),  # 轻微 under the 2019 rules
        penalty("P8", "2026-05-06", row=9, penalty_category="警告;罚款"),                    # not only 警告: 一般
    ]
    write_validated(dd, contracts["penalties"], day, passed=pens,
                    quarantined=[penalty("P9", "2026-09-01", row=10, subject_id_no="500237198001011234", violation_facts=None)],
                    failures=[{"_file_id": file_id("p1"), "_row_no": 10, "rule_id": "violation_facts.required", "message": "违法事实必须填写"}])
    write_validated(dd, contracts["repairs"], day, passed=[{"target_feed": "penalties", "decision_no": "P4", "authority_uscc": AUTH_A,
                    "repair_date": "2026-09-09", "repair_unit": "巫山县发展和改革委员会", "_file_id": file_id("r1"), "_row_no": 2, "_dept": "fgw"},
                    {"target_feed": "penalties", "decision_no": "P1", "authority_uscc": AUTH_A,
                    "repair_date": "2026-09-09", "repair_unit": "巫山县发展和改革委员会", "_file_id": file_id("r1"), "_row_no": 3, "_dept": "fgw"}])
    write_validated(dd, contracts["utility_arrears"], day, passed=[arrears_row("W1")])
    write_validated(dd, contracts["agri_subsidies"], day, passed=[subsidy_row("C1")])
    write_validated(dd, contracts["permits"], day, passed=[permit("L1", "2026-08-20")])  # late
    write_validated(dd, contracts["declarations"], day, passed=[declaration("2026-09", "penalties", 10)])
    cal = WorkCalendar(tmp_path / "no_calendars")
    load_day(dd, day, contracts)
    measure_day(dd, day, contracts, registry, calendar=cal)
    return dd


def views(dd):
    con = duckdb.connect(str(dd.db_path), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE view_name LIKE 'public_%' ORDER BY 1").fetchall()]
        return {n: con.execute(f"SELECT * FROM {n}").df() for n in names}
    finally:
        con.close()


def test_public_views_hide_and_mask(loaded, contracts):
    v = views(loaded)
    assert set(v) == {f"public_{c.feed}" for c in contracts.values() if c.role == "records"}
    pen = v["public_penalties"]
    assert sorted(pen["decision_no"]) == ["P1", "P7", "P8"]  # P1's repair is before its 3 months: it stays
    assert set(pen["_status"]) == {"公示中"}
    assert set(pen["subject_id_no"]) == {"500237********123X"}
    assert not any(c.startswith("_") and c not in ("_dept", "_status") for c in pen.columns)  # no lineage / _extra
    arr = v["public_utility_arrears"].iloc[0]
    assert arr["user_id_no"] == "500237********0018"
    assert arr["phone"] == "138****5678"
    assert arr["address"] == "巫山县高唐街****"
    assert v["public_agri_subsidies"].iloc[0]["recipient_id_no"] == "110101********7777"
    assert v["public_permits"].iloc[0]["legal_rep_id_no"] == "500237********1234"
    # internal tables keep the full values
    con = duckdb.connect(str(loaded.db_path), read_only=True)
    assert con.execute("SELECT count(*) FROM penalties_current").fetchall() == [(8,)]
    con.close()


def test_no_unmasked_resident_id_in_any_public_view(loaded):
    for name, df in views(loaded).items():
        for col in df.columns:
            vals = [str(x) for x in df[col].tolist() if x is not None]
            assert unmasked_ids(vals) == [], (name, col)
            for i in IDS:
                assert i not in " ".join(vals), (name, col)


def test_export_columns_totals_and_rates(loaded, contracts, registry):
    df = build_export(loaded, "2026-09", contracts, registry)
    assert list(df.columns) == [*COLUMNS, NOTE_COLUMN]  # the CSV writes the ten COLUMNS only
    owed = [(d.code, f) for d in registry.departments for f in d.feeds if contracts[f].role == "records"]
    records_feeds = [c for c in contracts.values() if c.role == "records"]
    assert len(df) == len(owed) + len(records_feeds)
    totals = df[df["部门代码"] == "ALL"]
    assert list(totals["信息类别"]) == [c.title for c in records_feeds]
    assert set(totals["部门名称"]) == {"全部"}
    pen = df[(df["部门代码"] == "scjgj") & (df["信息类别"] == "行政处罚")].iloc[0]
    # 9 received, 8 passed; timeliness: P1 (01 Sep, received 10 Sep: 7th working day is 10 Sep) on time,
    # older decisions late; 上报率 counts records by decision month: P1, P3, P9 (quarantined, still
    # reported) were decided in September → 3 / 10 (the others, P4 of May included, belong to their
    # own months)
    assert (pen["归集量"], pen["清洗入库量"], pen["合规率"], pen["上报率"]) == (9, 8, "88.89", "30.00")
    assert pen["上报率说明"] == "截至2026-09-10"
    assert float(pen["及时率"]) + float(pen["迟报率"]) == pytest.approx(100.0)
    jt = df[(df["部门代码"] == "jtysj") & (df["信息类别"] == "行政处罚")].iloc[0]
    assert (jt["归集量"], jt["合规率"], jt["及时率"], jt["迟报率"], jt["上报率"]) == (0, "", "", "", "")
    tot = totals[totals["信息类别"] == "行政处罚"].iloc[0]
    # the total's 上报率 covers the departments that declared (only scjgj): its 3 records ÷ its 10,
    # never 3 ÷ an unknown; the note says how much of the total that is
    owing = [d for d in registry.departments if "penalties" in d.feeds]
    assert (tot["归集量"], tot["上报率"]) == (9, "30.00")
    assert tot["上报率说明"] == f"截至2026-09-10；已申报台账1/{len(owing)}项，上报率按已申报的项计算"
    per = df[(df["部门代码"] == "scjgj") & (df["信息类别"] == "行政许可")].iloc[0]
    assert (per["归集量"], per["及时率"], per["迟报率"], per["上报率"]) == (1, "0.00", "100.00", "")


def test_export_files_deterministic_and_masked(loaded, contracts, registry, tmp_path):
    csv1 = write_export(loaded, "2026-09", "csv", contracts=contracts, registry=registry)
    assert csv1 == loaded.exports / "indicators_2026-09.csv"
    raw = csv1.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.decode("utf-8-sig").splitlines()[0] == ",".join(COLUMNS)
    x1 = write_export(loaded, "2026-09", "xlsx", contracts=contracts, registry=registry)
    b1 = x1.read_bytes()
    x2 = write_export(loaded, "2026-09", "xlsx", out=tmp_path / "again.xlsx", contracts=contracts, registry=registry)
    assert x2.read_bytes() == b1
    assert write_export(loaded, "2026-09", "csv", out=tmp_path / "again.csv", contracts=contracts, registry=registry).read_bytes() == raw
    wb = openpyxl.load_workbook(x1)
    assert wb.sheetnames == ["监测指标", "迟报记录", "未整改问题", "说明"]
    main = wb["监测指标"]
    assert [c.value for c in main[5]] == ["序号"] + COLUMNS[1:] + [NOTE_COLUMN]
    # in the workbook rates are percentages (numbers, sortable in Excel); unknown stays empty
    csv_rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))[1:]
    by_key = {(r[1], r[3]): r for r in csv_rows if r[1] != "ALL"}
    by_key.update({("全县合计", r[3]): r for r in csv_rows if r[1] == "ALL"})
    seen = 0
    for cells in main.iter_rows(min_row=6):
        key = (cells[1].value or cells[2].value, cells[3].value)
        if key not in by_key:
            continue
        seen += 1
        text = by_key[key]
        assert [cells[4].value, cells[5].value] == [int(text[4]), int(text[5])]
        for cell, expected in zip(cells[6:10], text[6:10]):
            assert cell.value == (pytest.approx(float(expected) / 100) if expected else None)
            assert cell.number_format == "0.00%"
    assert seen == len(csv_rows)  # every CSV figure is in the workbook, as a percentage
    late = [[c.value for c in r] for r in wb["迟报记录"].iter_rows(min_row=2)]
    assert any(r[0] == "行政许可" and r[3].startswith("L1|") for r in late)
    assert all(isinstance(r[4], datetime) for r in late)  # dates typed as dates
    open_items = [[c.value for c in r] for r in wb["未整改问题"].iter_rows(min_row=2)]
    assert len(open_items) == 1 and open_items[0][6].startswith("P9|") and open_items[0][7] == "violation_facts.required"
    notes = "\n".join(str(c.value) for r in wb["说明"].iter_rows() for c in r)
    assert "第7个工作日" in notes and "7个自然日" in notes and "暂定" not in notes
    # 上报率 counts records (business keys), and says what happens to rows without a key
    assert "上报率=决定日期在本月的报送记录数÷部门台账申报的本月决定数" in notes
    assert "业务主键缺项无法识别的行计入归集量但不计为记录" in notes and "超过100%照实显示并标注台账不符" in notes
    assert "上报率按截至2026-09-10已接收的记录计算" in notes
    cells = [str(c.value) for ws in wb.worksheets for r in ws.iter_rows() for c in r if c.value is not None]
    assert unmasked_ids(cells + [raw.decode("utf-8-sig")]) == []


def test_export_report_rate_counts_records_and_totals(dd, contracts, registry, tmp_path):
    """A duplicated row and a resent record raise 归集量 but not 上报率 (records ÷ declared)."""
    cal = WorkCalendar(tmp_path / "none")
    d1, d2 = date(2026, 9, 10), date(2026, 9, 11)
    dup = [{"_file_id": file_id("p1"), "_row_no": r, "rule_id": "PEN-KEY-UNIQUE"} for r in (3, 4)]
    write_validated(dd, contracts["penalties"], d1, passed=[penalty("A", "2026-09-08")],
                    quarantined=[penalty("B", "2026-09-08", row=3), penalty("B", "2026-09-08", row=4)], failures=dup)
    write_validated(dd, contracts["declarations"], d1, passed=[declaration(
        "2026-09", "penalties", 2, dept=d.code, fid=f"d-{d.code}") for d in registry.departments if "penalties" in d.feeds])
    load_day(dd, d1, contracts)
    measure_day(dd, d1, contracts, registry, calendar=cal)
    write_validated(dd, contracts["penalties"], d2, passed=[penalty("A", "2026-09-08", fid="p2"), penalty("B", "2026-09-08", fid="p2", row=3)])
    load_day(dd, d2, contracts)
    measure_day(dd, d2, contracts, registry, calendar=cal)
    df = build_export(dd, "2026-09", contracts, registry)
    pen = df[(df["部门代码"] == "scjgj") & (df["信息类别"] == "行政处罚")].iloc[0]
    assert (pen["归集量"], pen["清洗入库量"], pen["合规率"], pen["上报率"]) == (5, 3, "60.00", "100.00")
    owing = [d for d in registry.departments if "penalties" in d.feeds]
    tot = df[(df["部门代码"] == "ALL") & (df["信息类别"] == "行政处罚")].iloc[0]
    # every owing department declared 2; only scjgj sent its 2 records
    assert (tot["归集量"], tot["上报率"]) == (5, pct(2, 2 * len(owing)))


def pct(num, den):
    from decimal import ROUND_HALF_UP, Decimal

    return str((Decimal(num) * 100 / Decimal(den)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def test_export_marks_provisional(dd, contracts, registry, tmp_path):
    write_validated(dd, contracts["permits"], date(2027, 3, 2), passed=[permit("Z", "2027-02-25")])
    load_day(dd, date(2027, 3, 2), contracts)
    measure_day(dd, date(2027, 3, 2), contracts, registry, calendar=WorkCalendar(tmp_path / "none"))
    wb = openpyxl.load_workbook(write_export(dd, "2027-03", "xlsx", contracts=contracts, registry=registry))
    notes = {r[0].value: r[3].value for r in wb["说明"].iter_rows(min_row=2)}
    assert "暂定" in notes["行政许可"] and "暂定" not in (notes["行政处罚"] or "")
