"""``credit-etl run``: one nightly collection for a received day, through the real Dagster job.

It executes the same job the 01:30 schedule launches (``nightly_collection`` for one daily
partition) on the persistent local instance, so the run shows in the UI's history. Afterwards it
reads the day's figures back from the warehouse for a Chinese summary.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

import dagster as dg

from warehouse.db import connect
from warehouse.diskspace import explain_disk_full

# Step-by-step DEBUG events stay in the instance's event log (and the UI); the terminal shows
# warnings and errors only.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
from warehouse.layout import DataDir


@dataclass
class NightResult:
    day: date
    success: bool
    run_id: str
    failed_checks: list[str] = field(default_factory=list)
    by_feed: dict[str, dict[str, int]] = field(default_factory=dict)
    recovered: list[str] = field(default_factory=list)  # what the pre-flight fixed (runguard)
    problems: list[str] = field(default_factory=list)  # failed steps, in words
    titles: dict[str, str] = field(default_factory=dict)  # feed id -> Chinese name (行政处罚 …)
    stale_later: list[date] = field(default_factory=list)  # later nights built on this night's earlier state
    # every rejected delivery of the received day in the manifest (names scrubbed): a rerun of the
    # night names the same files as the first run, not only what it recorded itself
    rejected: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)  # late files the night took in from earlier days' folders

    def describe(self) -> str:
        if not self.success:
            head = "失败 / FAILED"
        elif self.failed_checks:
            head = "完成，但有检查未通过 / finished with failed checks"
        else:
            head = "成功 / succeeded"
        lines = [f"{self.day} 夜间归集{head}（run {self.run_id[:8]}）"]
        lines += [f"  运行前已恢复 / recovered: {r}" for r in self.recovered]
        for feed, c in sorted(self.by_feed.items()):
            lines.append(
                f"  {self.titles.get(feed, feed)}（{feed}）: 接收 {c['received']} 行，入库 {c['loaded']} 行，隔离 {c['quarantined']} 行"
            )
        lines += [f"  迟到文件 / file found late: {r}" for r in self.late]
        lines += [f"  拒收文件 / rejected file: {r}" for r in self.rejected]
        lines += [f"  {p}" for p in self.problems]
        if self.stale_later:
            days = "、".join(d.isoformat() for d in self.stale_later)
            lines.append(
                f"  注意：更晚的归集日（{days}）已经运行，但它们的公示状态、红黑名单交叉比对和共享变更文件"
                f"是按此前的入库数据计算的（本日或更早的归集日此后有变）；请按日期顺序重新运行这些归集日（credit-etl run --date …）"
                f" / later nights {days} were built on this night's earlier state: rerun them in order")
        for check in self.failed_checks:
            lines.append(f"  未通过的检查 / failed check: {check}")
        return "\n".join(lines)


def day_counts(data_dir: DataDir, day: date) -> dict[str, dict[str, int]]:
    if not data_dir.db_path.exists():
        return {}
    with connect(data_dir, read_only=True) as con:
        rows = con.execute(
            "SELECT feed, sum(received_rows), sum(loaded_rows), sum(quarantined_rows) FROM metrics_daily "
            "WHERE day = ? GROUP BY feed",
            [day],
        ).fetchall()
    return {r[0]: {"received": int(r[1]), "loaded": int(r[2]), "quarantined": int(r[3])} for r in rows}


def stale_later_nights(layout: DataDir, day: date, contracts: dict) -> list[date]:
    """Later nights whose record statuses were computed from another state of the versions than
    the warehouse holds now. Each night's statuses, cross-check and share changes build on the
    nights before it, so a night rerun with other rows (a corrected file, a night that crashed
    and was run after its successor) leaves its successors stale until they are run again. Read
    from each night's stored fingerprint (``status_nights``), recomputed from the per-day digests:
    a few small queries a night."""
    if not layout.db_path.exists():
        return []
    import duckdb

    from warehouse.record_status import versions_fingerprint

    stale: set[date] = set()
    with connect(layout, read_only=True) as con:
        try:
            rows = con.execute("SELECT DISTINCT feed, as_of, fingerprint FROM status_nights WHERE as_of > ?",
                               [day]).fetchall()
            for feed, as_of, fingerprint in rows:
                if feed in contracts and as_of not in stale and \
                        versions_fingerprint(con, contracts[feed], contracts, as_of) != fingerprint:
                    stale.add(as_of)
        except duckdb.Error:  # a warehouse from before record statuses, or digests to rebuild (read-only)
            return []
    return sorted(stale)


def run_night(
    data_dir: str | Path,
    day: date,
    *,
    http_base: str | None = None,
    instance: dg.DagsterInstance | None = None,
    wait: float | None = None,
    out: Callable[[str], None] | None = None,
    http_enabled: bool = True,
) -> NightResult:
    """Run the night; before the job starts, :mod:`pipelines.runguard` takes the night lock
    (waiting at most ``wait`` seconds, default ``$CREDIT_ETL_WAIT_SECONDS``), recovers runs of
    dead processes with their pool slots, and removes dead writers' temporary files. Raises
    :class:`~pipelines.runguard.WaitTimeout` / :class:`~pipelines.runguard.Interrupted`."""
    from pipelines.instance import get_instance
    from pipelines import runguard
    from warehouse.diskspace import check_free_space
    from warehouse.gx_atomic import repair as repair_gx_files
    from warehouse.tempfiles import clean_stale_temp_files

    layout = DataDir(data_dir)
    # the base URL resolved here, so a changed $CREDIT_ETL_HTTP_BASE is not hidden by the cache
    job, pools = _nightly_job(str(layout.root), http_base or os.environ.get("CREDIT_ETL_HTTP_BASE") or None,
                              http_enabled)
    owns_instance = instance is None
    instance = instance or get_instance(layout.root)
    recovery = runguard.Recovery()
    try:
        with runguard.night_lock(layout, wait=wait, day=day.isoformat(), out=out):
            runguard.recover_stale_runs(instance, recovery)
            for path in clean_stale_temp_files(layout):
                recovery.add(f"已删除中断运行遗留的临时文件 {path}")
            for path in repair_gx_files(layout.reports / "gx"):
                recovery.add(f"已删除损坏（空或不完整）的 Great Expectations 文件 {path.relative_to(layout.root).as_posix()}，将重新生成")
            check_free_space(layout, day)
            runguard.wait_for_pools(instance, pools, wait=wait, out=out, recovery=recovery)
            for line in recovery.lines:
                _say(out, f"运行前已恢复：{line}")
            result = job.execute_in_process(
                partition_key=day.isoformat(), instance=instance, raise_on_error=False, run_config=QUIET,
                tags=runguard.own_tags(),
            )
    finally:
        if owns_instance:
            instance.dispose()
    failed = [
        f"{ev.asset_key.to_user_string()}:{ev.check_name}"
        for ev in result.get_asset_check_evaluations()
        if not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    ]
    problems = step_failure_messages(result, layout, day)
    from assets.ingest import late_deliveries, rejected_deliveries

    try:
        by_feed = day_counts(layout, day)
        rejected = [str(r) for r in rejected_deliveries(layout, day)]  # str(r): the file name scrubbed
        late = [r.late_text() for r in late_deliveries(layout, day)]
    except Exception as exc:  # the warehouse itself unreadable (full disk): the summary is secondary
        by_feed, rejected, late = {}, [], []
        problems.append(explain_disk_full(exc, layout.root, day) or "无法读取当日统计")
    from contracts import load_contracts

    titles = {c.feed: c.title for c in load_contracts(include_disabled=True).values()}
    try:
        stale = stale_later_nights(layout, day, load_contracts())
    except Exception:  # the warehouse unreadable (full disk): said above, the notice is secondary
        stale = []
    return NightResult(day=day, success=result.success, run_id=result.run_id, failed_checks=failed,
                       by_feed=by_feed, recovered=recovery.lines, problems=problems, titles=titles,
                       stale_later=stale, rejected=rejected, late=late)


@functools.lru_cache(maxsize=4)
def _nightly_job(root: str, http_base: str | None, http_enabled: bool) -> tuple[dg.JobDefinition, list[str]]:
    """The resolved ``nightly_collection`` job and its concurrency pools, once per process and data
    directory: the demo, backfills and the bench run many nights in one process, and resolving the
    job (asset graph, selection, resources) is the same work every night."""
    from pipelines.definitions import build_definitions

    defs = build_definitions(root, http_base, http_enabled)
    job = defs.resolve_job_def("nightly_collection")
    pools = sorted({a.op.pool for a in defs.assets if getattr(a, "op", None) is not None and a.op.pool})
    return job, pools


def step_failure_messages(result, layout: DataDir, day: date) -> list[str]:
    """Failed steps in words: a full disk is named as such (with the data directory and the space
    needed) instead of the SQLite/DuckDB error text Dagster recorded."""
    from warehouse.diskspace import is_disk_full, message, needed_bytes

    out: list[str] = []
    for ev in result.all_events:
        if ev.event_type_value != "STEP_FAILURE":
            continue
        err = ev.step_failure_data.error if ev.step_failure_data else None
        texts = []
        while err is not None:
            texts.append(err.message)
            err = err.cause or getattr(err, "context", None)
        if any(is_disk_full(t) for t in texts):
            text = message(layout.root, None, needed_bytes(layout, day))
        else:
            text = (texts[0].strip().splitlines() or ["?"])[-1][:300] if texts else "?"
        line = f"步骤 {ev.step_key} 失败：{text}"
        if line not in out:
            out.append(line)
    return out


def _say(out: Callable[[str], None] | None, text: str) -> None:
    if out is not None:
        out(text)
