"""Dagster assets of the publish stage: what people read after a night and at month end."""


from datetime import date

import dagster as dg

from assets.feeds import stage_keys
from assets.measure.calendar import default_calendar
from assets.metadata import counts_metadata
from assets.partitions import OWNERS, daily_partitions, monthly_partitions
from assets.publish.export import write_export
from assets.validate import build_data_docs, write_feedback
from warehouse.resource import WarehouseResource


@dg.asset(
    name="feedback_workbooks",
    group_name="publish",
    deps=stage_keys("validated_rows"),
    partitions_def=daily_partitions,
    kinds={"excel"},
    owners=OWNERS,
    description=(
        "部门反馈：每个有被退回记录的部门一份 XLSX（按收到原样显示的取值、出错单元格标红、原文件名和行号、"
        "全部中文原因，附汇总表和更正后报送期限），位于 reports/feedback/<部门>/<部门名称>_<日期>_校验反馈.xlsx。"
        " / One workbook per department with its rejected rows as received, the bad cells marked, every reason."
    ),
)
def feedback_workbooks(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    paths = write_feedback(warehouse.layout, day, warehouse.contracts(), warehouse.registry(), calendar=default_calendar())
    return dg.MaterializeResult(
        metadata=counts_metadata(
            len(paths),
            workbooks=dg.MetadataValue.json([str(p.relative_to(warehouse.layout.root)) for p in paths]),
        )
    )


@dg.asset(
    name="data_docs",
    group_name="publish",
    deps=stage_keys("validated_rows"),
    partitions_def=daily_partitions,
    kinds={"great_expectations", "html"},
    owners=OWNERS,
    pool="data_docs",  # one site, one writer: backfilled days must not build it at the same time
    description=(
        "Great Expectations 数据文档：由合同编译的校验套件及当日校验结果，位于 reports/data_docs/index.html。"
        " / Great Expectations Data Docs: the suites compiled from the contracts and the day's results."
    ),
)
def data_docs(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    index = build_data_docs(warehouse.layout, warehouse.contracts(), received=day)
    return dg.MaterializeResult(metadata={"index": dg.MetadataValue.path(str(index))})


@dg.asset(
    name="monthly_indicators",
    group_name="export",
    deps=stage_keys("daily_metrics"),
    partitions_def=monthly_partitions,
    kinds={"excel", "csv"},
    owners=OWNERS,
    description=(
        "月度监测指标导出（城市信用状况监测）：每个部门 × 信息类别的归集量、清洗入库量、合规率、及时率、迟报率、上报率，"
        "及各类合计；XLSX 另含迟报记录、未整改问题和时限规则说明。"
        " / The monitored-indicator export per department and feed with totals, as CSV (UTF-8 BOM) and XLSX."
    ),
)
def monthly_indicators(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    month = context.partition_key[:7]
    contracts, registry = warehouse.contracts(), warehouse.registry()
    # a month the warehouse has no data for at all raises MonthHasNoData (Chinese message): the
    # run fails visibly instead of writing an all-zero workbook
    xlsx = write_export(warehouse.layout, month, fmt="xlsx", contracts=contracts, registry=registry)
    csv = write_export(warehouse.layout, month, fmt="csv", contracts=contracts, registry=registry)
    rows = sum(1 for _ in csv.open(encoding="utf-8-sig")) - 1
    return dg.MaterializeResult(
        metadata=counts_metadata(rows, xlsx=dg.MetadataValue.path(str(xlsx)), csv=dg.MetadataValue.path(str(csv)))
    )
