"""Housekeeping: prune Dagster run history and landed files past the configured retention.

Open-source Dagster keeps every run and its event log forever, and the landing zone keeps every
delivery byte for byte; on a shared service both grow without end. Retention comes from the
office's ``settings.yaml`` (``retention.run_history_days``, ``retention.landing_days``).

- **Run history**: finished runs (succeeded, failed, canceled) created before the cutoff are
  deleted with their event logs. Queued and running runs are never touched. The warehouse does
  not depend on run history (asset materialisation history of those runs goes with them).
- **Landed files**: a file in ``landing/`` older than the cutoff is deleted only when no record
  points to it: no version in any ``<feed>_versions`` table and no quarantine item (open or
  closed) carries the file id of the delivery it belongs to (for HTTP deliveries, any of its
  pages). Evidence for a record that still exists is kept however old it is. Manifest rows stay
  (what was received when); the deletion is written to ``housekeeping_log``.

The job ``housekeeping`` runs weekly (Sunday 03:00 Asia/Shanghai) and can be started by hand.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg

from contracts.model import Contract
from warehouse.db import connect
from warehouse.feed_tables import q, versions_table
from warehouse.layout import DataDir
from warehouse.resource import WarehouseResource

FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]

LOG_SQL = """
CREATE TABLE IF NOT EXISTS housekeeping_log (
    done_at  TIMESTAMP NOT NULL,
    kind     VARCHAR NOT NULL,   -- 'run' | 'landed_file'
    target   VARCHAR NOT NULL,   -- run id | landed path (relative to the data dir)
    detail   VARCHAR
)"""


def prune_run_history(instance: dg.DagsterInstance, older_than: datetime, *, batch: int = 500) -> list[str]:
    """Delete finished runs created before ``older_than``; returns their ids."""
    deleted: list[str] = []
    while True:
        records = instance.get_run_records(
            filters=dg.RunsFilter(statuses=FINISHED, created_before=older_than), limit=batch
        )
        if not records:
            return deleted
        for rec in records:
            instance.delete_run(rec.dagster_run.run_id)
            deleted.append(rec.dagster_run.run_id)


@dataclass
class LandingPrune:
    deleted: list[str] = field(default_factory=list)  # relative paths
    kept_referenced: list[str] = field(default_factory=list)  # old but a record points to them


def referenced_landed_paths(con, contracts: dict[str, Contract]) -> set[str]:
    """Landed paths (relative) of every delivery a version or a quarantine item points to."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    sources = [f"SELECT DISTINCT _file_id AS file_id FROM {q(versions_table(c.feed))}"
               for c in contracts.values() if versions_table(c.feed) in tables]
    if "quarantine_items" in tables:
        sources.append("SELECT DISTINCT file_id FROM quarantine_items")
    if not sources:
        return set()
    ids = " UNION ".join(sources)
    rows = con.execute(
        f"WITH ids AS ({ids}) "
        "SELECT m.landed_path FROM ingest_manifest m JOIN ids USING (file_id) WHERE m.landed_path IS NOT NULL "
        "UNION SELECT p.landed_path FROM ingest_pages p JOIN ids USING (file_id)"
    ).fetchall()
    return {r[0] for r in rows}


def prune_landing(data_dir: DataDir, contracts: dict[str, Contract], older_than: datetime) -> LandingPrune:
    """Delete landed files modified before ``older_than`` that no record points to."""
    out = LandingPrune()
    if not data_dir.landing.is_dir():
        return out
    cutoff = older_than.timestamp()
    with connect(data_dir) as con:
        con.execute(LOG_SQL)
        keep = referenced_landed_paths(con, contracts)
        now = datetime.now()
        for path in sorted(data_dir.landing.rglob("*")):
            if not path.is_file() or path.stat().st_mtime >= cutoff:
                continue
            rel = path.relative_to(data_dir.root).as_posix()
            if rel in keep:
                out.kept_referenced.append(rel)
                continue
            path.unlink()
            out.deleted.append(rel)
            con.execute("INSERT INTO housekeeping_log VALUES (?, 'landed_file', ?, ?)",
                        [now, rel, f"超过保留期限（早于 {older_than:%Y-%m-%d}）且无记录引用"])
    for folder in sorted(data_dir.landing.glob("*"), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return out


def log_runs(data_dir: DataDir, run_ids: list[str], older_than: datetime) -> None:
    with connect(data_dir) as con:
        con.execute(LOG_SQL)
        now = datetime.now()
        con.executemany("INSERT INTO housekeeping_log VALUES (?, 'run', ?, ?)",
                        [[now, rid, f"运行记录早于 {older_than:%Y-%m-%d}"] for rid in run_ids])


@dg.op(
    description="清理超过保留期限的运行历史和无记录引用的落地文件 / prune old run history and unreferenced landed files",
    out=dg.Out(dg.Nothing),
)
def prune_history(context: dg.OpExecutionContext, warehouse: WarehouseResource):
    from contracts.config import active_config

    retention = active_config().settings.retention
    now = datetime.now()
    runs_before = now - timedelta(days=retention.run_history_days)
    files_before = now - timedelta(days=retention.landing_days)
    # never the run doing the pruning: it is not finished
    runs = prune_run_history(context.instance, runs_before)
    if runs:
        log_runs(warehouse.layout, runs, runs_before)
    landing = prune_landing(warehouse.layout, warehouse.contracts(), files_before)
    context.log.info(f"删除运行 {len(runs)} 个，落地文件 {len(landing.deleted)} 个；"
                     f"保留仍被记录引用的过期文件 {len(landing.kept_referenced)} 个")
    context.add_output_metadata({
        "runs_deleted": len(runs),
        "landed_files_deleted": len(landing.deleted),
        "landed_files_kept_referenced": len(landing.kept_referenced),
    })


@dg.job(description="定期清理（运行历史、落地文件） / housekeeping: prune run history and landed files")
def housekeeping():
    prune_history()


housekeeping_schedule = dg.ScheduleDefinition(
    name="housekeeping_weekly",
    job=housekeeping,
    cron_schedule="0 3 * * 0",
    execution_timezone="Asia/Shanghai",
    description="每周日 03:00 清理过期运行历史与落地文件 / Sundays 03:00: housekeeping",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
