"""Deterministic crash points for the crash-recovery tests (never active in production).

``fault_point(label)`` marks a moment where a crash is interesting: just before and after an
atomic rename, after a DuckDB connection opens and before it closes, inside the load
transaction. Two environment variables, set only by tests/test_crash_recovery.py, act on them:

- ``CREDIT_ETL_FAULT_LOG=<file>``: append one line per point reached (``n<TAB>step<TAB>label``),
  so a test can see how many points a night passes and which step each belongs to;
- ``CREDIT_ETL_FAULT_KILL_AT=<n>``: at the n-th point, SIGKILL the whole process group (the
  ``credit-etl run`` process tree), as ``kill -9`` would.

Without them a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

LOG_ENV = "CREDIT_ETL_FAULT_LOG"
KILL_ENV = "CREDIT_ETL_FAULT_KILL_AT"

_count = 0


def _step() -> str:
    try:
        import dagster as dg

        return dg.OpExecutionContext.get().op_handle.name
    except Exception:  # outside a Dagster step (CLI set-up, plain function tests)
        return "-"


def fault_point(label: str) -> None:
    global _count
    log, kill = os.environ.get(LOG_ENV), os.environ.get(KILL_ENV)
    if not log and not kill:
        return
    _count += 1
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{_count}\t{_step()}\t{label}\n")
    if kill and _count == int(kill):
        try:
            os.killpg(os.getpgid(0), signal.SIGKILL)
        finally:
            os.kill(os.getpid(), signal.SIGKILL)
