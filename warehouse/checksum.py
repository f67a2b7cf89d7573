"""Content checksums of the warehouse, for the rerun-safety guarantee.

Order-independent: each table's rows are rendered as text, sorted and hashed, so two
warehouses with the same content give the same checksums whatever their physical order.
"""

from __future__ import annotations

import duckdb


def table_checksums(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, str]]:
    """{table or view name: (row count, md5 of the sorted rows)} for every table and view."""
    names = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY table_name"
    ).fetchall()]
    out = {}
    for name in names:
        count, digest = con.execute(
            f'SELECT count(*), md5(coalesce(string_agg(t::VARCHAR, chr(10) ORDER BY t::VARCHAR), \'\')) FROM "{name}" t'
        ).fetchone()
        out[name] = (int(count), digest)
    return out
