"""Dagster asset of the dashboard: the quality dashboard and the monthly bulletin, every night."""

import dagster as dg

from assets.dashboard.render import write_dashboard
from assets.feeds import stage_keys
from assets.partitions import DUCKDB_POOL, OWNERS, daily_partitions
from warehouse.resource import WarehouseResource


@dg.asset(
    name="quality_dashboard",
    group_name="publish",  # part of the nightly job's selection (pipelines/jobs.py)
    # it links to the feedback workbooks and the Data Docs; draw after them and after every feed's metrics
    deps=[*stage_keys("daily_metrics"), "feedback_workbooks", "data_docs"],
    partitions_def=daily_partitions,
    kinds={"html", "duckdb"},
    owners=OWNERS,
    pool=DUCKDB_POOL,  # refreshes the dept_feed_obligations table
    description=(
        "归集质量看板：本月及全县的归集量、清洗入库量、合规率、及时率、迟报率、上报率（目标 100%），"
        "报送时限、数据新鲜度、长期未报送提醒、部门排名、日/月趋势、每周报送、常见问题规则与各部门明细，"
        "以及可打印的月度通报；位于 reports/dashboard/index.html，离线可用。"
        " / Offline quality dashboard and printable monthly bulletin for data officers, refreshed every night."
    ),
)
def quality_dashboard(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The page always shows the warehouse's latest state (a rerun of an older night redraws it)."""
    contracts = warehouse.contracts()
    out = write_dashboard(warehouse.layout, contracts=contracts, registry=warehouse.registry())
    h = out.headline
    silent = [b for b in out.banners if b["kind"] in ("never", "silent")]
    if silent:
        context.log.info("长期未报送 / silent departments: " + "；".join(b["text"] for b in silent))
    meta = {
        "dagster/row_count": dg.MetadataValue.int(out.obligations),
        "index": dg.MetadataValue.path(str(out.index or out.month_page)),
        "bulletin": dg.MetadataValue.path(str(out.bulletin)),
        "month": dg.MetadataValue.text(out.month),
        "as_of": dg.MetadataValue.text(out.as_of.isoformat()),
        "received_rows": dg.MetadataValue.int(h["received"]),
        "loaded_rows": dg.MetadataValue.int(h["loaded"]),
        "silent_obligations": dg.MetadataValue.int(len(silent)),
    }
    for key in ("compliance", "timely", "late", "report"):
        if h[key] is not None:
            meta[f"{key}_rate"] = dg.MetadataValue.float(float(h[key]))
    return dg.MaterializeResult(metadata=meta)
