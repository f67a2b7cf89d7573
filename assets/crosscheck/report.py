"""The night's cross-comparison report for the office: ``reports/crosscheck/<date>.xlsx`` (Chinese).

Sheet 比对结果: one row per finding (type, subject as it may be shown — a natural person's ID
number masked by warehouse.masking —, the flagged record, what it was compared with, the date,
the reporting department, the Chinese reason, and whether it is new tonight). Sheet 说明: what
each type means. Written every night, also when there is nothing to report, so the office can
see the comparison ran. Same night, same bytes.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from contracts.model import Contract, Registry
from warehouse.files import write_bytes, xlsxwriter_bytes
from warehouse.layout import DataDir
from warehouse.masking import scrub_text

HEADER = ["序号", "发现类型", "主体名称", "主体标识", "信息类别", "记录", "比对对象", "比对记录", "日期", "报送部门",
          "原因", "首次发现", "今晚新发现"]
EXPLAIN = [
    ("黑名单主体获得许可、补贴或红名单", "行政许可决定日期、涉农补贴发放日期或红名单认定日期当天，该主体在严重失信主体名单中（列入日期当天起，移出日期当天止）。"),
    ("信用承诺未履行", "主体作出信用承诺后（承诺日期当天及以后）受到行政处罚，承诺记为未履行。"),
    ("信用修复不符合条件", "修复日期早于该记录的最短公示期（按其失信程度和决定日期施行的规定），不予修复，记录继续公示。"),
    ("关联记录不存在", "信用修复或异议所指的记录在仓库中找不到，请核实信息类别和文书号。"),
    ("说明", "已修复、已撤销的记录不参与比对；比对按当晚已收到的信息进行。主体标识中自然人证件号码已遮蔽。"),
]


def write_report(data_dir, day: date, rows: list[dict], contracts: dict[str, Contract],
                 registry: Registry | None = None) -> Path:
    """The report, streamed by XlsxWriter (constant memory): the findings are everything known as
    of the night, so they grow with the warehouse; openpyxl's per-cell objects took ~3 s for the
    ~6,000 findings of a 10M-row warehouse."""
    dd = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
    titles = {c.feed: c.title for c in contracts.values()}
    depts = {d.code: d.name for d in registry.departments} if registry else {}

    def build(wb) -> None:
        title = wb.add_format({"bold": True, "font_size": 14})
        bold = wb.add_format({"bold": True})
        # identifiers stay text (an 18-digit number would turn into 5.0E+17)
        text = wb.add_format({"num_format": "@", "valign": "top"})
        wrap = wb.add_format({"num_format": "@", "valign": "top", "text_wrap": True})
        ws = wb.add_worksheet("比对结果")
        for col, width in enumerate((6, 22, 24, 22, 14, 30, 14, 30, 12, 24, 80, 12, 10)):
            ws.set_column(col, col, width)
        ws.freeze_panes(2, 0)
        ws.set_landscape()  # printed for the office: one page wide
        ws.fit_to_pages(1, 0)
        ws.write_string(0, 0, f"红黑名单交叉比对结果（{day.isoformat()}）", title)
        for c, h in enumerate(HEADER):
            ws.write_string(1, c, h, bold)
        if not rows:
            ws.write_string(2, 1, "当晚无比对发现", text)
        for i, r in enumerate(rows, start=1):
            values = [
                r["kind_label"], r["subject_name"] or "", r["subject_shown"] or "",
                titles.get(r["feed"], r["feed"]), r["business_key"], titles.get(r["related_feed"], r["related_feed"] or ""),
                r["related_key"] or "", r["event_date"].isoformat() if r["event_date"] else "",
                depts.get(r["dept"], r["dept"] or ""), scrub_text(r["reason"]),
                r["first_found"].isoformat() if r["first_found"] else "", "是" if r["first_found"] == day else "否",
            ]
            ws.write_number(i + 1, 0, i, text)
            for c, v in enumerate(values, start=1):
                ws.write_string(i + 1, c, str(v), wrap if c == 10 else text)
        notes = wb.add_worksheet("说明")
        notes.set_column(0, 0, 30)
        notes.set_column(1, 1, 100)
        notes.write_row(0, 0, ["发现类型", "含义"])
        for n, (k, v) in enumerate(EXPLAIN, start=1):
            notes.write_row(n, 0, [k, v])

    return write_bytes(xlsxwriter_bytes(build, constant_memory=True), dd.crosscheck_file(day), private=False)
