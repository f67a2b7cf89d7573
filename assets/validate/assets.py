"""Dagster asset of the validate stage, with the checks that guard it.

The conservation check recounts the Parquet files themselves (staged vs. passed + quarantined)
instead of trusting the summary the validation code returned: a check that reuses the numbers it
checks cannot fail.
"""


from datetime import date
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from assets.metadata import counts_metadata
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


@dg.asset(
    name="validated_rows",
    group_name="validate",
    deps=["received_rows"],
    partitions_def=daily_partitions,
    kinds={"python", "great_expectations", "parquet"},
    owners=OWNERS,
    description=(
        "校验：按数据合同编译的规则逐行校验暂存行；无错误的行进入入库，有错误的行带全部中文原因隔离。"
        " / Every staged row checked against the rules compiled from its contract: rows without errors"
        " go on to loading, rows with errors are quarantined with every reason (in Chinese)."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "rows_conserved",
            asset="validated_rows",
            blocking=True,
            description="每类信息：暂存行数 = 通过行数 + 隔离行数（按磁盘上的文件重新计数） / staged = passed + quarantined, recounted on disk",
        ),
        dg.AssetCheckSpec(
            "compliance_rate_100",
            asset="validated_rows",
            description="合规率目标 100%（低于目标为警告） / 合规率 target 100% (warning below it)",
        ),
    ],
)
def validated_rows(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    layout = warehouse.layout
    contracts = warehouse.contracts()
    summary = validate_day(layout, day, contracts)
    context.log.info(summary.describe())

    counts = {feed: recount(layout, feed, day) for feed in contracts}
    broken = {f: c for f, c in counts.items() if c["staged"] != c["passed"] + c["quarantined"]}
    rates = {f: s.compliance_rate for f, s in summary.feeds.items() if s.received}
    below = {f: round(r * 100, 2) for f, r in rates.items() if r < 1}
    errors_by_rule: dict[str, int] = {}
    for s in summary.feeds.values():
        for rule, n in s.errors_by_rule.items():
            errors_by_rule[rule] = errors_by_rule.get(rule, 0) + n

    return dg.MaterializeResult(
        metadata=counts_metadata(
            summary.received,
            {
                "passed_by_feed": {f: s.passed for f, s in summary.feeds.items()},
                "quarantined_by_feed": {f: s.quarantined for f, s in summary.feeds.items()},
                "errors_by_rule": errors_by_rule,
            },
            passed=dg.MetadataValue.int(summary.passed),
            quarantined=dg.MetadataValue.int(summary.quarantined),
        ),
        check_results=[
            dg.AssetCheckResult(
                check_name="rows_conserved",
                passed=not broken and summary.conserved,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"counts": dg.MetadataValue.json(counts), "mismatched": dg.MetadataValue.json(broken)},
            ),
            dg.AssetCheckResult(
                check_name="compliance_rate_100",
                passed=not below,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"compliance_rate_pct": dg.MetadataValue.json({f: round(r * 100, 2) for f, r in rates.items()})},
            ),
        ],
    )
