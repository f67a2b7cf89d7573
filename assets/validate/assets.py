"""Dagster asset of the validate stage, with the checks that guard it.

The conservation check recounts the Parquet files themselves (staged vs. passed + quarantined)
instead of trusting the summary the validation code returned: a check that reuses the numbers it
checks cannot fail.
"""


from datetime import date

import dagster as dg
import pyarrow.parquet as pq

from assets.metadata import counts_metadata
from assets.feeds import FEEDS, feed_checks, feed_key, feed_specs
from assets.partitions import OWNERS, daily_partitions
from assets.validate import validate_day
from warehouse.layout import DataDir
from warehouse.resource import WarehouseResource


def _rows(paths) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in paths)


def recount(layout: DataDir, feed: str, day: date) -> dict[str, int]:
    """Rows on disk for one feed and day: staged, passed, quarantined."""
    vdir = layout.validated_dir(feed, day)
    return {
        "staged": _rows(sorted(layout.staging_dir(feed, day).glob("*.parquet"))),
        "passed": _rows([vdir / "passed.parquet"]) if (vdir / "passed.parquet").exists() else 0,
        "quarantined": _rows([vdir / "quarantined.parquet"]) if (vdir / "quarantined.parquet").exists() else 0,
    }


@dg.multi_asset(
    name="validated_rows",
    specs=feed_specs(
        "validated_rows",
        group="validate",
        kinds={"python", "great_expectations", "parquet"},
        owners=OWNERS,
        upstream="received_rows",
        description=(
            "校验：按数据合同编译的规则逐行校验暂存行；无错误的行进入入库，有错误的行带全部中文原因隔离。"
            " / Every staged row checked against the rules compiled from its contract: rows without errors"
            " go on to loading, rows with errors are quarantined with every reason (in Chinese)."
        ),
    ),
    check_specs=[
        *feed_checks("validated_rows", "rows_conserved",
                     "暂存行数 = 通过行数 + 隔离行数（按磁盘上的文件重新计数） / staged = passed + quarantined, recounted on disk",
                     blocking=True),
        *feed_checks("validated_rows", "compliance_rate_100",
                     "合规率目标 100%（低于目标为警告） / 合规率 target 100% (warning below it)"),
    ],
    partitions_def=daily_partitions,
    can_subset=False,  # one step validates every feed of the day
)
def validated_rows(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    day = date.fromisoformat(context.partition_key)
    layout = warehouse.layout
    contracts = warehouse.contracts()
    summary = validate_day(layout, day, contracts)
    context.log.info(summary.describe())

    for feed in FEEDS:
        key = feed_key(feed, "validated_rows")
        counts = recount(layout, feed, day)
        s = summary.feeds.get(feed)
        conserved = counts["staged"] == counts["passed"] + counts["quarantined"] and (s is None or s.conserved)
        rate = s.compliance_rate if s is not None else None
        meta = counts_metadata(
            counts["staged"],
            passed=dg.MetadataValue.int(counts["passed"]),
            quarantined=dg.MetadataValue.int(counts["quarantined"]),
            # numbers, not a JSON blob, so the UI plots them per feed over the days
            **{f"错误行数/{rule}": dg.MetadataValue.int(n) for rule, n in sorted((s.errors_by_rule if s else {}).items())},
        )
        if rate is not None:
            meta["合规率"] = dg.MetadataValue.float(round(rate * 100, 2))
        yield dg.MaterializeResult(
            asset_key=key,
            metadata=meta,
            check_results=[
                dg.AssetCheckResult(
                    asset_key=key,
                    check_name="rows_conserved",
                    passed=conserved,
                    severity=dg.AssetCheckSeverity.ERROR,
                    metadata={"staged": dg.MetadataValue.int(counts["staged"]),
                              "passed": dg.MetadataValue.int(counts["passed"]),
                              "quarantined": dg.MetadataValue.int(counts["quarantined"])},
                ),
                dg.AssetCheckResult(
                    asset_key=key,
                    check_name="compliance_rate_100",
                    passed=rate is None or rate >= 1,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"合规率": dg.MetadataValue.float(round(rate * 100, 2))} if rate is not None else {},
                ),
            ],
        )
