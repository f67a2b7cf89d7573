"""Dagster asset of the ingest stage: everything a night received, landed and parsed."""


from datetime import date

from typing import Optional

import dagster as dg

from assets.ingest import HttpSettings, ingest_day
from assets.metadata import contract_schema, counts_metadata
from assets.feeds import FEEDS, feed_checks, feed_key, feed_specs
from assets.partitions import DUCKDB_POOL, OWNERS, daily_partitions
from warehouse.resource import WarehouseResource


class HttpFeedsResource(dg.ConfigurableResource):
    """How department HTTP endpoints are pulled. Tokens come from the environment variables
    named in ``departments.yaml``; ``base_url`` (or $CREDIT_ETL_HTTP_BASE) redirects every
    endpoint to another host, for the demo's local sample server and for tests."""

    timeout_seconds: float = 30.0
    max_attempts: int = 5
    backoff_seconds: float = 1.0
    base_url: Optional[str] = None
    enabled: bool = True  # False: inbox only (e.g. an office whose departments all drop files)

    def settings(self) -> HttpSettings:
        return HttpSettings(
            enabled=self.enabled,
            timeout=self.timeout_seconds,
            max_attempts=self.max_attempts,
            backoff=self.backoff_seconds,
            base_url=self.base_url,
        )


def _rejected_lines(summary, feed: str, known: set[str]) -> list[str]:
    """Rejected deliveries of ``feed`` on the night's received day, as the manifest holds them
    (this run's and earlier runs' of the same day: a rerun fails the check the first run failed);
    one whose feed is unknown counts against every feed."""
    return [str(r) for r in summary.day_rejected if r.feed == feed or r.feed not in known]  # names scrubbed


@dg.multi_asset(
    name="received_rows",
    specs=feed_specs(
        "received_rows",
        group="ingest",
        kinds={"python", "parquet", "duckdb"},
        owners=OWNERS,
        description=(
            "归集：当日收到的该类信息的全部部门报送（收件箱文件与 HTTP 接口），原样存入落地区（按 SHA-256 命名）并登记清单，"
            "再按数据合同映射表头、规范取值，写出带来源（文件、行号）的暂存行。"
            " / Every file and HTTP page of this feed received that day, kept byte for byte, registered in the"
            " manifest, and parsed into staged rows mapped to the contract fields with lineage."
        ),
    ),
    check_specs=feed_checks(
        "received_rows", "every_file_readable",
        "每个收到的文件都能读取且含合同要求的列（合同违约为错误级） / every received file is readable and has the contract's required columns",
    ),
    partitions_def=daily_partitions,
    pool=DUCKDB_POOL,
    can_subset=False,  # one step lands every department's deliveries of the day
)
def received_rows(context: dg.AssetExecutionContext, warehouse: WarehouseResource, http_feeds: HttpFeedsResource):
    day = date.fromisoformat(context.partition_key)
    contracts = warehouse.contracts()
    summary = ingest_day(warehouse.layout, day, contracts, warehouse.registry(), http=http_feeds.settings())
    this_run = {r.file_id for r in summary.rejected}
    for r in summary.day_rejected:  # str(r): the file name scrubbed
        earlier = "" if r.file_id in this_run else "（此前运行已登记 / recorded by an earlier run）"
        context.log.warning(f"拒收文件 / rejected file{earlier}: {r}")
    for r in summary.late:  # from the manifest: a rerun says it again
        context.log.warning(f"迟到文件 / file found late: {r.late_text()}")
    for line in summary.config_problems:  # the terminal gets it once from `credit-etl run`
        context.log.info(line)
    known = set(FEEDS)
    for feed in FEEDS:
        key = feed_key(feed, "received_rows")
        rejected = _rejected_lines(summary, feed, known)
        files = [r for r in summary.new_records if r.feed == feed]
        by_dept: dict[str, int] = {}
        for r in files:
            by_dept[r.dept or "?"] = by_dept.get(r.dept or "?", 0) + 1
        yield dg.MaterializeResult(
            asset_key=key,
            metadata=counts_metadata(
                summary.rows_by_feed.get(feed, 0),
                new_files=dg.MetadataValue.int(len(files)),
                rejected_files=dg.MetadataValue.int(len(rejected)),
                late_files=dg.MetadataValue.int(sum(r.feed == feed for r in summary.late)),
                config_problems=dg.MetadataValue.int(len(summary.config_problems)),
                # numbers, not a JSON blob: the UI plots each department's deliveries over the days
                **{f"文件数/{dept}": dg.MetadataValue.int(n) for dept, n in sorted(by_dept.items())},
                **{"dagster/column_schema": contract_schema([contracts[feed]] if feed in contracts else [])},
            ),
            check_results=[
                dg.AssetCheckResult(
                    asset_key=key,
                    check_name="every_file_readable",
                    passed=not rejected,
                    severity=dg.AssetCheckSeverity.ERROR,
                    metadata={"rejected": dg.MetadataValue.json(rejected)},
                )
            ],
        )
