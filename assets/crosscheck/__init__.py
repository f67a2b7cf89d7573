"""The nightly red/black cross-comparison (红黑名单交叉比对) and its report."""

from assets.crosscheck.findings import (
    KIND_LABELS,
    CrosscheckSummary,
    describe_findings,
    findings_sql,
    night_findings,
    run_crosscheck,
)
from assets.crosscheck.report import write_report

__all__ = ["KIND_LABELS", "CrosscheckSummary", "describe_findings", "findings_sql", "night_findings", "run_crosscheck", "write_report"]
