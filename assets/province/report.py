"""The province's indicator export (XLSX + CSV) and its league page, from the county league
(``ranking.league``) over ``county_metrics_daily``.

Both reuse the county's code rather than copying it: the workbook is drawn with the indicator
workbook's pieces from ``assets/publish/export.py`` (``indicator_formats``, ``title_block``,
``write_header``, ``write_rate``, ``print_setup``, ``table_sheet``, ``xlsxwriter_bytes``), so it
has the same title block, percentages, red off-target rates and A4 landscape one page wide; the
page is rendered with the dashboard's Jinja environment, style and shared script
(``assets/dashboard/render.py``: ``page_env``, ``page_assets``, ``script_json``, ``copy_vendor``)
and draws its charts with the ECharts shipped in ``assets/dashboard/vendor`` (no request to
another host).

Files (``<province data dir>/reports/``):

    exports/province_indicators_<key>.xlsx   区县排名 (counties in rank order, 全省合计), 区县部门
                                             (each county in rank order: its departments by
                                             their rank within the county, then the county's
                                             合计), 说明 (order and definitions)
    exports/province_indicators_<key>.csv    one header row, ``CSV_COLUMNS``: a 区县 row per
                                             county, a 部门 row per county × department (名次:
                                             the province-wide department rank), a 全省 row
    province_dashboard/<key>.html            the league page (and index.html for the latest)

``<key>`` is the month (YYYY-MM) or ``<start>_<end>``. Every text passes through the one
masking policy (``warehouse.masking.scrub_text``): a department name carrying a phone or ID
number is shown masked. Choices where the issue is silent: the page's league table is in rank
order (1 first; any column sorts on click), while the charts per county come worst first,
the county that needs a call first; a listed county that sent nothing is in both, last,
flagged 无数据.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Mapping

import jinja2
import pandas as pd

from assets.dashboard.render import copy_vendor, page_assets, page_env, script_json
from assets.province.ranking import RANK_ORDER, Period, league
from assets.publish.export import (
    indicator_formats,
    print_setup,
    table_sheet,
    title_block,
    write_header,
    write_rate,
)
from warehouse.files import text_width, write_bytes, xlsxwriter_bytes
from warehouse.masking import scrub_text

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
SHEET_LEAGUE = "区县排名"
SHEET_DEPTS = "区县部门"
SHEET_NOTES = "说明"
CSV_COLUMNS = ["统计期间", "层级", "名次", "区县代码", "区县名称", "部门", "归集量", "清洗入库量", "合规率", "及时率", "迟报率", "未达标"]
RATES = (("合规率", "compliance"), ("及时率", "timely"), ("迟报率", "late"))
DEFINITIONS = (
    "归集量=各区县推送并由省级接收的行数（含重报）；清洗入库量=校验通过入库行数；合规率=Σ通过行数÷Σ接收行数；"
    "及时率=Σ按时记录÷Σ计时记录；迟报率=100%−及时率。比率均由期间内各日、各信息类别的计数先求和再计算，不对比率取平均。"
)


def _s(v) -> str:
    return "" if v is None else scrub_text(str(v))


def export_name(key: str, fmt: str) -> str:
    """File name of the export for a period key (YYYY-MM or <start>_<end>)."""
    return f"province_indicators_{key}.{fmt}"


def _off(row: dict) -> str:
    return "、".join(row["off_target"])


# -- CSV ---------------------------------------------------------------------------------------
def csv_frame(data: dict) -> pd.DataFrame:
    label = data["period"].label
    rows = []
    for r in data["counties"]:
        rows.append([label, "区县", r["rank"], r["county_code"], _s(r["county_name"]), "", *_figures(r)])
    for r in data["departments"]:
        rows.append([label, "部门", r["rank"], r["county_code"], _s(r["county_name"]), _s(r["dept"]), *_figures(r)])
    t = data["total"]
    rows.append([label, "全省", "", "", "全省合计", "", *_figures(t)])
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


def _figures(r: dict) -> list:
    return [int(r["received"]), int(r["loaded"]), r["compliance"] or "", r["timely"] or "", r["late"] or "", _off(r)]


def csv_bytes(data: dict) -> bytes:
    return csv_frame(data).to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


# -- XLSX --------------------------------------------------------------------------------------
def _period_cell(period: Period):
    return datetime(period.start.year, period.start.month, 1) if period.key == period.start.strftime("%Y-%m") else period.label


def _note(total_counties: int) -> str:
    return ("说明：合规率、及时率目标为100%，迟报率目标为0%，未达目标的比率标红；比率由期间内的计数求和后计算（不对比率取平均），"
            f"空白表示无可计算的记录；区县按{'、'.join(RANK_ORDER)}排名，数值相同的并列；共{total_counties}个区县；指标口径见“说明”表。")


def _write_figures(ws, f, r: int, c0: int, kind: str, row: dict) -> None:
    ws.write_number(r, c0, int(row["received"]), f[(kind, "int")])
    ws.write_number(r, c0 + 1, int(row["loaded"]), f[(kind, "int")])
    for i, (col, key) in enumerate(RATES):
        write_rate(ws, f, r, c0 + 2 + i, kind, col, row[key])
    ws.write_string(r, c0 + 5, _off(row), f[(kind, "text")])


def _league_sheet(wb, data: dict, region: str, issuer: str, exported: date) -> None:
    period = data["period"]
    ws = wb.add_worksheet(SHEET_LEAGUE)
    f = indicator_formats(wb)
    headers = ["名次", "区县代码", "区县名称", "归集量", "清洗入库量", "合规率", "及时率", "迟报率", "未达标项"]
    last = len(headers) - 1
    header_row = title_block(ws, f, last, f"{region}公共信用信息归集监测区县排名（{period.label}）", region=region,
                             period=_period_cell(period), exported=exported, issuer=issuer,
                             note=_note(len(data["counties"])), note_height=36,
                             period_label="统计月份" if isinstance(_period_cell(period), datetime) else "统计期间")
    write_header(ws, f, header_row, headers, [6, 10, 16, 11, 11, 10, 10, 10, 22])
    r = header_row
    for row in data["counties"]:
        r += 1
        ws.write_string(r, 0, str(row["rank"]), f[("feed", "center")])
        ws.write_string(r, 1, row["county_code"], f[("feed", "text")])
        ws.write_string(r, 2, _s(row["county_name"]), f[("feed", "text")])
        _write_figures(ws, f, r, 3, "feed", row)
    r += 1
    ws.write_string(r, 0, "", f[("grand", "center")])
    ws.write_string(r, 1, "", f[("grand", "text")])
    ws.write_string(r, 2, "全省合计", f[("grand", "text")])
    _write_figures(ws, f, r, 3, "grand", data["total"])
    ws.freeze_panes(header_row + 1, 3)
    print_setup(ws, header_row)
    ws.repeat_rows(0, header_row)


def _dept_sheet(wb, data: dict, region: str, issuer: str, exported: date) -> None:
    period = data["period"]
    ws = wb.add_worksheet(SHEET_DEPTS)
    f = indicator_formats(wb)
    headers = ["全省名次", "县内名次", "区县代码", "区县名称", "部门", "归集量", "清洗入库量", "合规率", "及时率", "迟报率", "未达标项"]
    last = len(headers) - 1
    header_row = title_block(ws, f, last, f"{region}各区县部门归集监测指标（{period.label}）", region=region,
                             period=_period_cell(period), exported=exported, issuer=issuer,
                             note=("说明：每个区县按其排名先后列出，区县内各部门按县内名次排列，其后为区县合计；"
                                   f"全省名次为全部区县部门统一按{'、'.join(RANK_ORDER)}排名；未达目标的比率标红；指标口径见“说明”表。"),
                             note_height=36,
                             period_label="统计月份" if isinstance(_period_cell(period), datetime) else "统计期间")
    names = [text_width(_s(r["dept"])) for r in data["departments"]]
    write_header(ws, f, header_row, headers, [8, 8, 10, 10, min(max(names + [20]) + 2, 40), 11, 11, 10, 10, 10, 22])
    by_county: dict[str, list[dict]] = {}
    for row in data["departments"]:
        by_county.setdefault(row["county_code"], []).append(row)
    r = header_row
    for county in data["counties"]:
        for row in sorted(by_county.get(county["county_code"], []), key=lambda x: (x["county_rank"], x["dept"])):
            r += 1
            ws.write_string(r, 0, str(row["rank"]), f[("feed", "center")])
            ws.write_string(r, 1, str(row["county_rank"]), f[("feed", "center")])
            ws.write_string(r, 2, row["county_code"], f[("feed", "text")])
            ws.write_string(r, 3, _s(county["county_name"]), f[("feed", "text")])
            ws.write_string(r, 4, _s(row["dept"]), f[("feed", "text")])
            _write_figures(ws, f, r, 5, "feed", row)
        r += 1
        for c, v in enumerate(["", "", county["county_code"], _s(county["county_name"]), "合计"]):
            ws.write_string(r, c, v, f[("dept", "text")])
        _write_figures(ws, f, r, 5, "dept", county)
    ws.freeze_panes(header_row + 1, 5)
    print_setup(ws, header_row)
    ws.repeat_rows(0, header_row)


def xlsx_bytes(data: dict, *, region: str, issuer: str, exported: date) -> bytes:
    notes = pd.DataFrame([["排名顺序", "、".join(RANK_ORDER) + "；数值（按显示的两位小数）相同者并列，下一名次顺延"],
                          ["指标口径", DEFINITIONS],
                          ["目标", "合规率、及时率 100%，迟报率 0%；未达标的比率标红，未推送任何数据的区县标“无数据”"],
                          ["统计期间", f"{data['period'].start.isoformat()} 至 {data['period'].end.isoformat()}（省级接收日）"]],
                         columns=["项目", "说明"])

    def build(wb):
        _league_sheet(wb, data, region, issuer, exported)
        _dept_sheet(wb, data, region, issuer, exported)
        table_sheet(wb, SHEET_NOTES, notes)

    return xlsxwriter_bytes(build)


def write_province_export(con, period: Period, out_dir: str | Path, *, fmt: str = "xlsx",
                          counties: Mapping[str, str] | None = None, region: str = "全省",
                          issuer: str = "省社会信用信息平台", exported: date | None = None,
                          data: dict | None = None) -> Path:
    """Write ``exports/province_indicators_<key>.<fmt>`` under ``out_dir`` (the province's
    ``reports`` folder); return its path. ``con``: a DuckDB connection with ``county_metrics_daily``;
    ``data``: the month's :func:`league` when the caller has it already (then ``con`` is not read)."""
    if fmt not in ("xlsx", "csv"):
        raise ValueError(f"导出格式只能是 xlsx 或 csv / fmt must be xlsx or csv: {fmt!r}")
    data = data if data is not None else league(con, period, counties)
    target = Path(out_dir) / "exports" / export_name(period.key, fmt)
    if fmt == "csv":
        return write_bytes(csv_bytes(data), target, private=False)
    return write_bytes(xlsx_bytes(data, region=scrub_text(region), issuer=scrub_text(issuer),
                                  exported=exported or date.today()), target, private=False)


# -- the league page ---------------------------------------------------------------------------
def page_data(data: dict, region: str) -> dict:
    """What the page shows, masked; charts worst first (reverse rank order)."""
    def row(r: dict, **extra) -> dict:
        return {"code": r["county_code"], "name": _s(r["county_name"]), "received": r["received"], "loaded": r["loaded"],
                "compliance": r["compliance"], "timely": r["timely"], "late": r["late"], "off": _off(r),
                "rank": r.get("rank"), **extra}

    counties = [row(r) for r in data["counties"]]
    charts = []
    for r in reversed(data["counties"]):
        s = data["daily"].get(r["county_code"])
        charts.append({"code": r["county_code"], "name": _s(r["county_name"]), "rank": r["rank"], "series": s})
    return {
        "region": scrub_text(region),
        "period": data["period"].label,
        "start": data["period"].start.isoformat(),
        "end": data["period"].end.isoformat(),
        "key": data["period"].key,
        "order": "、".join(RANK_ORDER),
        "total": row(data["total"]),
        "counties": counties,
        "departments": [row(r, dept=_s(r["dept"]), county_rank=r["county_rank"]) for r in data["departments"]],
        "charts": charts,
    }


def render_province_page(d: dict) -> str:
    env = page_env(TEMPLATES)
    return env.get_template("province.html.j2").render(
        d=d, **page_assets(TEMPLATES / "province.js"),
        data_json=jinja2.utils.markupsafe.Markup(script_json({"charts": d["charts"]})),
        export_href=f"../exports/{export_name(d['key'], 'xlsx')}",
    )


def write_province_dashboard(con, period: Period, out_dir: str | Path, *, counties: Mapping[str, str] | None = None,
                             region: str = "全省", latest: bool = True, data: dict | None = None) -> Path:
    """Write ``province_dashboard/<key>.html`` (and ``index.html`` when ``latest``) under
    ``out_dir`` with ECharts copied beside it; return the page's path. ``data``: the month's
    :func:`league` when the caller has it already."""
    d = page_data(data if data is not None else league(con, period, counties), region)
    folder = Path(out_dir) / "province_dashboard"
    copy_vendor(folder)
    page = render_province_page(d).encode("utf-8")
    path = write_bytes(page, folder / f"{period.key}.html", private=False)
    if latest:
        write_bytes(page, folder / "index.html", private=False)
    return path


# -- where the figures and the names come from -------------------------------------------------
class MetricsSourceMissing(LookupError):
    """Neither a DuckDB file nor the province lake is configured."""


def province_settings():
    """The ``province:`` section of the office settings (``contracts/config.py``), or None
    before the lake side's settings exist."""
    from contracts.config import active_config

    return getattr(active_config().settings, "province", None)


def province_counties() -> dict[str, str]:
    """code → name of the counties the settings list (``province.counties``); {} when unset."""
    section = province_settings()
    return {c.code: c.name for c in (getattr(section, "counties", None) or [])}


def province_title() -> tuple[str, str]:
    """(region, issuer) for titles: ``province.name`` if the settings have it, else the
    office registry's region and issuing unit (the province office's own departments.yaml)."""
    from contracts import load_registry

    registry = load_registry()
    name = getattr(province_settings(), "name", None)
    return (name or registry.region), registry.issuer


def metrics_connection(db: str | Path | None = None):
    """A DuckDB connection on which ``county_metrics_daily`` can be read: the file ``db``
    (read-only), else an in-memory connection with the lake's views (``register_lake`` of
    ``assets/province/lake.py``, given the office settings, whose ``province.lake`` it reads)."""
    import duckdb

    from contracts.config import active_config

    if db is not None:
        if not Path(db).exists():
            raise MetricsSourceMissing(f"指标数据库不存在 / no such database: {db}")
        return duckdb.connect(str(db), read_only=True)
    section = province_settings()
    try:
        from assets.province.lake import register_lake  # the lake side's module
    except ImportError:
        register_lake = None
    if register_lake is None or section is None or getattr(section, "lake", None) is None:
        raise MetricsSourceMissing("未找到区县指标来源：请用 --db 指定含 county_metrics_daily 表的 DuckDB 文件，"
                                   "或在 settings.yaml 的 province.lake 中配置省级数据湖 / no county_metrics_daily source")
    con = duckdb.connect()
    try:
        register_lake(con, active_config().settings)
    except Exception:
        con.close()
        raise
    return con
