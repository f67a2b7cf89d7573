"""The share files are written by DuckDB's CSV writer; their bytes must be what Python's csv
module gives for the same rows (the format receiving platforms were built against)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import duckdb
import pytest

from assets.credit_status.status import _copy_csv, _csv_bytes

AWKWARD = ["", " ", "a", "中文名称", 'say "hi"', '"', '""', "x,y", ",", "line\nbreak", "cr\rhere", "\r\n", " lead",
           "trail ", "#hash", "a#b", "'q", "a;b", "\t", "NULL", "null", "\\N", 'a"b,c', "500237********123X", "重庆市,巫山县"]


def _text(rng: random.Random) -> str | None:
    if rng.random() < 0.1:
        return None
    if rng.random() < 0.5:
        return rng.choice(AWKWARD)
    return "".join(rng.choice(AWKWARD + list("abc公司0123 ")) for _ in range(rng.randint(1, 4)))


def test_duckdb_csv_writer_gives_pythons_bytes(tmp_path):
    rng = random.Random(20261130)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")  # as the warehouse's connections (warehouse.db)
    con.execute("CREATE TABLE t (_key VARCHAR, name VARCHAR, decided DATE, amount DECIMAL(18,4), n BIGINT, note VARCHAR)")
    rows = []
    for i in range(20000):
        rows.append((f"k{i:05d}", _text(rng),
                     None if rng.random() < 0.1 else date(2000, 1, 1) + timedelta(days=rng.randint(0, 12000)),
                     None if rng.random() < 0.1 else Decimal(rng.randint(-10**12, 10**12)) / 10000,
                     None if rng.random() < 0.1 else rng.choice([0, -1, 7, 2**63 - 1, -(2**63), rng.randint(-10**9, 10**9)]),
                     _text(rng)))
    rng.shuffle(rows)  # written in key order, whatever the table's order
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", rows)
    header = ["主体名称", "决定日期", "金额（万元）", "数量", "备注,含逗号"]
    target = tmp_path / "share.csv"
    n = _copy_csv(con, "SELECT * FROM t", header, target)
    expected = con.execute("SELECT * EXCLUDE (_key) FROM t ORDER BY _key").fetchall()
    assert n == len(expected) == 20000
    assert target.read_bytes() == _csv_bytes(header, expected)
    assert [p.name for p in tmp_path.iterdir()] == ["share.csv"]  # no temporary file left


def test_no_rows_gives_the_header_alone(tmp_path):
    con = duckdb.connect()
    con.execute("CREATE TABLE t (_key VARCHAR, name VARCHAR)")
    assert _copy_csv(con, "SELECT * FROM t", ["名称"], tmp_path / "x.csv") == 0
    assert (tmp_path / "x.csv").read_bytes() == _csv_bytes(["名称"], [])


@pytest.mark.parametrize("sql_type", ["BOOLEAN", "DOUBLE", "TIMESTAMP"])
def test_a_type_without_a_checked_text_form_is_refused(tmp_path, sql_type):
    """Python and DuckDB spell these differently (True/true, float digits): refused, not guessed."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t (_key VARCHAR, v {sql_type})")
    with pytest.raises(TypeError, match="share CSV"):
        _copy_csv(con, "SELECT * FROM t", ["值"], tmp_path / "x.csv")
    assert not list(tmp_path.iterdir())


def test_a_snapshot_larger_than_the_memory_cap_is_written_in_order(tmp_path):
    """An ordered COPY on two threads ran out of memory on the 10M-row warehouse's full snapshot
    (2.3M rows under the 320 MB cap); scaled down here: 300,000 rows of ~250 bytes under 128 MB,
    which failed the same way before the COPY ran on one thread."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET threads = 2")
    con.execute("""CREATE TABLE t AS SELECT md5(i::VARCHAR) AS _key, repeat(md5((i * 7)::VARCHAR), 3) AS a,
                   repeat(md5((i * 11)::VARCHAR), 3) AS b, repeat(md5((i * 13)::VARCHAR), 2) AS c, i AS n
                   FROM range(300000) r(i)""")
    con.execute("SET memory_limit = '128MB'")
    target = tmp_path / "share.csv"
    assert _copy_csv(con, "SELECT * FROM t", ["甲", "乙", "丙", "序号"], target) == 300000
    assert con.execute("SELECT current_setting('threads')").fetchone()[0] == 2  # given back
    lines = target.read_bytes().decode("utf-8-sig").split("\r\n")
    assert lines[0] == "甲,乙,丙,序号" and lines[-1] == "" and len(lines) == 300002
    # in key order: the serial numbers come back in the order of their keys
    want = [r[0] for r in con.execute("SELECT n FROM t ORDER BY _key").fetchall()]
    assert [int(line.rsplit(",", 1)[1]) for line in lines[1:-1]] == want
