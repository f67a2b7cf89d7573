"""Dagster asset of the measure stage: timeliness per record and metrics per dept × feed × day."""


from datetime import date

import dagster as dg

from assets.measure import measure_day
from assets.metadata import counts_metadata
from assets.feeds import FEEDS, feed_checks, feed_key, feed_specs
from assets.partitions import DUCKDB_POOL, OWNERS, daily_partitions
from warehouse.resource import WarehouseResource


def _pct(num: int, den: int) -> float | None:
    return round(100.0 * num / den, 2) if den else None


def rate_metadata(rows: list[tuple]) -> dict:
    """Numeric metadata of one feed's day from its metrics_daily rows
    ``(dept, received, passed, loaded, timed, on_time, late)``: the feed's 合规率/及时率/迟报率 and
    each department's, as floats (percent) so the Dagster UI plots them over the days; a rate
    whose denominator is 0 is left out (no figure is better than a made-up 100%)."""
    meta: dict = {}
    tot = [sum(int(r[i] or 0) for r in rows) for i in range(1, 7)]
    received, passed, loaded, timed, on_time, late = tot
    meta["归集量"] = dg.MetadataValue.int(received)
    meta["清洗入库量"] = dg.MetadataValue.int(loaded)
    meta["迟报条数"] = dg.MetadataValue.int(late)
    for name, value in (("合规率", _pct(passed, received)), ("及时率", _pct(on_time, timed)),
                        ("迟报率", _pct(timed - on_time, timed))):
        if value is not None:
            meta[name] = dg.MetadataValue.float(value)
    for dept, d_received, d_passed, _loaded, d_timed, d_on_time, _late in sorted(rows):
        for name, value in (("合规率", _pct(int(d_passed or 0), int(d_received or 0))),
                            ("及时率", _pct(int(d_on_time or 0), int(d_timed or 0)))):
            if value is not None:
                meta[f"{name}/{dept}"] = dg.MetadataValue.float(value)
    return meta


@dg.multi_asset(
    name="daily_metrics",
    specs=feed_specs(
        "daily_metrics",
        group="measure",
        kinds={"duckdb", "sql"},
        owners=OWNERS,
        upstream="warehouse_records",
        description=(
            "度量：逐条计算报送时限（决定日期起第 N 个工作日，按国务院节假日安排含调休）与是否及时，"
            "并按部门 × 日/月汇总归集量、清洗入库量、合规率、及时率、迟报率、上报率（元数据中的比率可在界面中按日绘图）。"
            " / Deadline and on-time flag per record (State Council working-day calendar), then"
            " received, loaded, compliance, timeliness, late and reporting rates per department × day and month"
            " (the rates are numeric metadata the UI plots over time)."
        ),
    ),
    check_specs=feed_checks(
        "daily_metrics", "calendar_not_provisional",
        "所用工作日历均为正式日历（否则按周一至周五临时计算，结果为暂定） / no figure relies on the Monday–Friday fallback",
    ),
    partitions_def=daily_partitions,
    pool=DUCKDB_POOL,
    can_subset=False,  # metrics of all feeds are recomputed together
)
def daily_metrics(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    day = date.fromisoformat(context.partition_key)
    contracts = warehouse.contracts()
    summary = measure_day(warehouse.layout, day, contracts, warehouse.registry())
    years = sorted({y for f in summary.feeds.values() for y in f.provisional_years})
    if years:
        context.log.warning(f"{years} 年无正式工作日历，及时率为暂定值 / no official calendar for {years}: provisional figures")
    with warehouse.connect() as con:
        rows = con.execute(
            "SELECT feed, dept, sum(received_rows), sum(passed_rows), sum(loaded_rows), sum(timed_records),"
            " sum(on_time_records), sum(late_records) FROM metrics_daily WHERE day = ? GROUP BY feed, dept",
            [day],
        ).fetchall()
    by_feed: dict[str, list[tuple]] = {}
    for r in rows:
        by_feed.setdefault(r[0], []).append(r[1:])
    for feed in FEEDS:
        key = feed_key(feed, "daily_metrics")
        s = summary.feeds.get(feed)
        feed_years = sorted(s.provisional_years) if s else []
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                **counts_metadata(s.records_timed if s else 0),
                **rate_metadata(by_feed.get(feed, [])),
                "provisional_years": dg.MetadataValue.json(feed_years),
            },
            check_results=[
                dg.AssetCheckResult(
                    asset_key=key,
                    check_name="calendar_not_provisional",
                    passed=not feed_years,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"provisional_years": dg.MetadataValue.json(feed_years)},
                )
            ],
        )
