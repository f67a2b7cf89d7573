"""A resident ID written into free text (违法事实, 备注) never reaches public_penalties or the
indicator export: the views and the export scrub free text with warehouse.masking."""

from __future__ import annotations

import io
from datetime import date

import duckdb
import openpyxl

from assets.load.load import load_day
from assets.measure.calendar import WorkCalendar
from assets.measure.metrics import measure_day
from assets.publish.export import write_export
from validated_builder import file_id, penalty, write_validated
from warehouse.layout import DataDir

ID_IN_TEXT = "110101199003077777"


def test_resident_id_in_free_text_is_not_published(tmp_path, contracts, registry):
    dd = DataDir(tmp_path / "data")
    day = date(2026, 9, 10)
    facts = f"当事人（身份证号{ID_IN_TEXT}）未取得许可从事经营"
    remarks = f"联系人身份证：{ID_IN_TEXT}"
    write_validated(dd, contracts["penalties"], day,
                    passed=[penalty("P1", "2026-09-01", row=2, violation_facts=facts, remarks=remarks)],
                    quarantined=[penalty("P9", "2026-09-01", row=3, violation_facts=facts, remarks=remarks, fine_amount="x")],
                    failures=[{"_file_id": file_id("p1"), "_row_no": 3, "rule_id": "fine_amount.type", "message": "罚款金额不是数字"}])
    load_day(dd, day, contracts)
    measure_day(dd, day, contracts, registry, calendar=WorkCalendar(tmp_path / "no_calendars"))

    con = duckdb.connect(str(dd.db_path), read_only=True)
    try:
        internal = con.execute("SELECT violation_facts, remarks FROM penalties_current").fetchall()
        public = con.execute("SELECT * FROM public_penalties").df()
    finally:
        con.close()
    assert internal == [(facts, remarks)]  # the evidence keeps the text as received
    assert len(public) == 1
    text = public.astype(str).to_csv()
    assert ID_IN_TEXT not in text
    assert "110101********7777" in public.loc[0, "violation_facts"] and "110101" in public.loc[0, "remarks"]

    csv_path = write_export(dd, "2026-09", "csv", contracts=contracts, registry=registry)
    xlsx_path = write_export(dd, "2026-09", "xlsx", contracts=contracts, registry=registry)
    assert ID_IN_TEXT not in csv_path.read_bytes().decode("utf-8-sig")
    wb = openpyxl.load_workbook(io.BytesIO(xlsx_path.read_bytes()))
    cells = " ".join(str(c.value) for ws in wb.worksheets for r in ws.iter_rows() for c in r if c.value is not None)
    assert ID_IN_TEXT not in cells
