"""Thin Dagster assets of the province report: the indicator export and the league page of a
month (monthly partitions), from ``county_metrics_daily``.

``pipelines/province.py`` imports ``report_assets`` (or ``build_report_assets(deps=[<the lake's
county_metrics_daily key>])`` to draw the lineage) and ``ProvinceReportResource`` under the key
``province_report``; the plain functions live in ``report.py`` and ``ranking.py``.
"""

from pathlib import Path
from typing import Sequence

import dagster as dg

from assets.partitions import OWNERS, monthly_partitions
from assets.province.ranking import Period, league

RESOURCE_KEY = "province_report"  # the assets' resource parameter name


class ProvinceReportResource(dg.ConfigurableResource):
    """Where the province's reports go (``<data_dir>/reports``) and where the figures come from:
    ``db`` a DuckDB file holding ``county_metrics_daily``, or None for the lake's views."""

    data_dir: str
    db: str | None = None

    @property
    def reports(self) -> Path:
        return Path(self.data_dir) / "reports"

    def connect(self):
        from assets.province.report import metrics_connection

        return metrics_connection(self.db)


def _month_league(res: ProvinceReportResource, partition_key: str):
    """(period, counties, region, issuer, league) of the partition's month: the figures are read
    once and every output of the asset is written from them."""
    from assets.province.report import province_counties, province_title

    period = Period.month(partition_key[:7])
    counties = province_counties()
    region, issuer = province_title()
    con = res.connect()
    try:
        return period, counties, region, issuer, league(con, period, counties)
    finally:
        con.close()


def build_report_assets(deps: Sequence[dg.AssetKey | str] = ()) -> list[dg.AssetsDefinition]:
    """The two assets; ``deps``: the asset(s) that write ``county_metrics_daily``."""

    @dg.asset(name="province_indicator_export", group_name="province_report", deps=list(deps),
              partitions_def=monthly_partitions, kinds={"xlsx", "csv", "duckdb"}, owners=OWNERS,
              description=("省级区县排名指标导出：各区县及区县部门的归集量、清洗入库量、合规率、及时率、迟报率（按求和后的计数计算），"
                           "按合规率、及时率、归集量排名，未达标标红；XLSX（A4横向一页宽）与 CSV。"
                           " / The province's county league export (XLSX + CSV) for a month."))
    def province_indicator_export(context: dg.AssetExecutionContext, province_report: ProvinceReportResource) -> dg.MaterializeResult:
        from assets.province.report import write_province_export

        period, counties, region, issuer, data = _month_league(province_report, context.partition_key)
        out = province_report.reports
        xlsx = write_province_export(None, period, out, region=region, issuer=issuer, data=data)
        csv = write_province_export(None, period, out, fmt="csv", data=data)
        return dg.MaterializeResult(metadata=_meta(data, xlsx=xlsx, csv=csv))

    @dg.asset(name="province_dashboard", group_name="province_report", deps=list(deps),
              partitions_def=monthly_partitions, kinds={"html", "duckdb"}, owners=OWNERS,
              description=("省级区县排名看板：区县排名表（可排序）、各区县每日趋势图（最差在前）、区县部门明细；离线可用。"
                           " / The province's league page for a month, offline."))
    def province_dashboard(context: dg.AssetExecutionContext, province_report: ProvinceReportResource) -> dg.MaterializeResult:
        from assets.province.report import write_province_dashboard

        period, _, region, _, data = _month_league(province_report, context.partition_key)
        page = write_province_dashboard(None, period, province_report.reports, region=region, data=data)
        return dg.MaterializeResult(metadata=_meta(data, page=page))

    return [province_indicator_export, province_dashboard]


def _meta(data: dict, **paths: Path) -> dict:
    t = data["total"]
    meta = {
        "dagster/row_count": dg.MetadataValue.int(len(data["counties"])),
        "counties_off_target": dg.MetadataValue.int(sum(bool(r["off_target"]) for r in data["counties"])),
        "received_rows": dg.MetadataValue.int(int(t["received"])),
        "loaded_rows": dg.MetadataValue.int(int(t["loaded"])),
        **{k: dg.MetadataValue.path(str(v)) for k, v in paths.items()},
    }
    for key, label in (("compliance", "合规率"), ("timely", "及时率"), ("late", "迟报率")):
        if t[key] is not None:
            meta[label] = dg.MetadataValue.float(float(t[key]))
    return meta


report_assets = build_report_assets()

__all__ = ["RESOURCE_KEY", "ProvinceReportResource", "build_report_assets", "report_assets"]
