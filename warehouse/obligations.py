"""Departments × the feeds they owe, as a warehouse table generated from the catalog.

The registry (``contracts/departments.yaml``) says which department owes which feed; the
contracts say each feed's role and deadline. Silence is only visible in SQL when that list is a
table: a department that never sent anything has no row in ``ingest_manifest`` at all. The
table is replaced as a whole (the catalog is small), so a department or feed removed from the
catalog disappears with it; it is refreshed by every nightly run (the dashboard asset) and by
``credit-etl dashboard``.
"""

from __future__ import annotations

import duckdb

from contracts.model import Contract, Deadline, Registry

TABLE = "dept_feed_obligations"
COLUMNS = ["dept", "dept_name", "dept_order", "feed", "feed_title", "role", "enabled", "delivery_kind",
           "deadline_kind", "deadline_days", "deadline_rule"]


def short_rule(deadline: Deadline | None) -> str | None:
    """The deadline as the contract states it: ``7个工作日`` or ``7日`` (calendar days)."""
    if deadline is None:
        return None
    return f"{deadline.days}个工作日" if deadline.kind == "working" else f"{deadline.days}日"


def obligation_rows(contracts: dict[str, Contract], registry: Registry) -> list[tuple]:
    """One row per department and owed feed that has a contract, in registry order."""
    rows = []
    for order, dept in enumerate(registry.departments, start=1):
        for feed in dept.feeds:
            c = contracts.get(feed)
            if c is None:
                continue
            d = c.deadline
            rows.append((dept.code, dept.name, order, feed, c.title, c.role, c.enabled, dept.delivery_for(feed).kind,
                         d.kind if d else None, d.days if d else None, short_rule(d)))
    return rows


def refresh_obligations(con: duckdb.DuckDBPyConnection, contracts: dict[str, Contract], registry: Registry) -> int:
    """Replace the table's content with the catalog's obligations; returns the row count."""
    rows = obligation_rows(contracts, registry)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {TABLE}")
        if rows:
            con.executemany(f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return len(rows)
