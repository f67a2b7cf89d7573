"""Dagster asset of the ingest stage: everything a night received, landed and parsed."""


from datetime import date

from typing import Optional

import dagster as dg

from assets.ingest import HttpSettings, ingest_day
from assets.metadata import contract_schema, counts_metadata
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


@dg.asset(
    name="received_rows",
    group_name="ingest",
    partitions_def=daily_partitions,
    kinds={"python", "parquet", "duckdb"},
    owners=OWNERS,
    pool=DUCKDB_POOL,
    description=(
        "归集：当日收到的全部部门报送（收件箱文件与 HTTP 接口），原样存入落地区（按 SHA-256 命名）并登记清单，"
        "再按数据合同映射表头、规范取值，写出带来源（文件、行号）的暂存行。"
        " / Every file and HTTP page received that day, kept byte for byte, registered in the manifest,"
        " and parsed into staged rows mapped to the contract fields with lineage."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "every_file_readable",
            asset="received_rows",
            description="每个收到的文件都能读取且含合同要求的列（合同违约为错误级） / every received file is readable and has the contract's required columns",
        )
    ],
)
def received_rows(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, http_feeds: HttpFeedsResource
) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    contracts = warehouse.contracts()
    summary = ingest_day(warehouse.layout, day, contracts, warehouse.registry(), http=http_feeds.settings())
    rejected = [f"{r.dept}/{r.feed}/{r.original_name}: {r.error_message}" for r in summary.rejected]
    for line in rejected:
        context.log.warning(f"拒收文件 / rejected file: {line}")
    for line in summary.config_problems:  # the terminal gets it once from `credit-etl run`
        context.log.info(line)
    return dg.MaterializeResult(
        metadata=counts_metadata(
            summary.rows_total,
            {"rows_by_feed": summary.rows_by_feed, "files_by_department": summary.files_by_dept},
            new_files=dg.MetadataValue.int(summary.new_files),
            duplicate_files_skipped=dg.MetadataValue.int(summary.duplicates),
            rejected_files=dg.MetadataValue.int(len(summary.rejected)),
            config_problems=dg.MetadataValue.json(summary.config_problems),
            **{"dagster/column_schema": contract_schema(contracts.values())},
        ),
        check_results=[
            dg.AssetCheckResult(
                check_name="every_file_readable",
                passed=not summary.rejected,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"rejected": dg.MetadataValue.json(rejected)},
            )
        ],
    )
