"""Jobs: the nightly collection (one received day, all departments) and the monthly export."""

import dagster as dg

# "publish" holds the feedback workbooks, the Data Docs and the quality dashboard
# (assets/dashboard), so every night ends with a fresh reports/dashboard/index.html.
# "credit" holds the record statuses and the red/black cross-comparison (assets/credit_status,
# assets/crosscheck).
NIGHTLY_GROUPS = ["ingest", "validate", "load", "measure", "publish", "credit"]

nightly_collection = dg.define_asset_job(
    name="nightly_collection",
    selection=dg.AssetSelection.groups(*NIGHTLY_GROUPS),
    description="夜间归集：接收 → 校验 → 入库 → 度量 → 反馈、看板与上报推送 → 公示状态与红黑名单交叉比对（按接收日分区） / nightly: ingest → validate → load → measure → feedback, dashboard and upward push → record statuses and the red/black cross-comparison, per received day",
    # One process, steps in order: the stages share one DuckDB file (single writer) and a
    # night's data fits one process; parallelism lives inside the stages, not across them.
    executor_def=dg.in_process_executor,
)

monthly_export = dg.define_asset_job(
    name="monthly_indicator_export",
    selection=dg.AssetSelection.groups("export"),
    description="月度监测指标导出（城市信用状况监测） / monthly monitored-indicator export for the city ranking",
    executor_def=dg.in_process_executor,
)
