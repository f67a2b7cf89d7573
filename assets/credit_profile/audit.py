"""查询使用登记: the append-only register of subject profile queries (table ``profile_queries``).

Append-only by construction: this module is the only code that writes the table and it only
INSERTs; no command of ``credit-etl`` updates or deletes a row (a test scans the code and runs
the commands). DuckDB has no triggers or grants to forbid a change made with another tool, so each
row also carries the hash of the previous row: ``row_hash = sha256(prev_hash | the row's
fields)``. :func:`verify_chain` recomputes the chain and names the first row that no longer fits
(a row changed, deleted or inserted out of band).
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone

GENESIS = "0" * 64


def _hash(prev: str, no: int, at: datetime, operator: str, os_user: str, subject: str, reason: str,
          as_of: date | None, fmt: str, records: int) -> str:
    payload = "\x1f".join([prev, str(no), at.isoformat(), operator, os_user, subject, reason,
                           as_of.isoformat() if as_of else "", fmt, str(records)])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def register_query(con, *, operator: str, os_user: str, subject: str, reason: str, as_of: date | None,
                   fmt: str, records: int, now: datetime | None = None) -> int:
    """Append one row; returns its query number. The caller's connection must be writable."""
    last = con.execute("SELECT query_no, row_hash FROM profile_queries ORDER BY query_no DESC LIMIT 1").fetchone()
    no, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    row_hash = _hash(prev, no, at, operator, os_user, subject, reason, as_of, fmt, records)
    con.execute(
        "INSERT INTO profile_queries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [no, at, operator, os_user, subject, reason, as_of, fmt, records, prev, row_hash],
    )
    return no


def verify_chain(con) -> list[int]:
    """Query numbers of rows whose hash chain is broken (empty: the register is intact)."""
    bad, prev, expected_no = [], GENESIS, 1
    for no, at, operator, os_user, subject, reason, as_of, fmt, records, prev_hash, row_hash in con.execute(
        "SELECT * FROM profile_queries ORDER BY query_no"
    ).fetchall():
        if no != expected_no or prev_hash != prev or row_hash != _hash(prev, no, at, operator, os_user, subject, reason,
                                                                       as_of, fmt, records):
            bad.append(no)
        prev, expected_no = row_hash, no + 1
    return bad
