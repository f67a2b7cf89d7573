"""查询使用登记: every profile query leaves exactly one register row, and nothing the command line
offers can change the register (insert-only code path, no command that updates or deletes it,
and a hash chain that shows a change made with another tool)."""

from __future__ import annotations

import getpass
import re
from datetime import date
from pathlib import Path

import duckdb
import pytest

from assets.credit_profile import verify_chain
from assets.load import load_day
from assets.measure import measure_day
from pipelines.cli import build_parser, main
from validated_builder import AUTH_A, file_id, penalty, write_validated
from warehouse.layout import DataDir

REPO = Path(__file__).resolve().parents[2]
PERSON = "50023719900307123X"  # the builder's natural person
DAY = date(2026, 9, 10)


@pytest.fixture
def dd(tmp_path, contracts):
    dd = DataDir(tmp_path / "data")
    write_validated(dd, contracts["penalties"], DAY, passed=[penalty("P1", "2026-09-01"), penalty("P2", "2026-05-06", row=3)])
    write_validated(dd, contracts["repairs"], DAY, passed=[{
        "target_feed": "penalties", "decision_no": "P2", "authority_uscc": AUTH_A, "repair_date": "2026-09-09",
        "repair_unit": "巫山县发展和改革委员会", "_file_id": file_id("r1"), "_row_no": 2, "_dept": "fgw"}])
    load_day(dd, DAY, contracts)
    return dd


def register(dd: DataDir) -> list[tuple]:
    con = duckdb.connect(str(dd.db_path), read_only=True)
    try:
        return con.execute("SELECT * FROM profile_queries ORDER BY query_no").fetchall()
    finally:
        con.close()


def test_every_query_leaves_exactly_one_row(dd, capsys):
    base = ["--data-dir", str(dd.root), "profile"]
    assert main(base + [PERSON, "--reason", "答复投诉", "--operator", "李科员"]) == 0
    text = capsys.readouterr().out
    assert "信用档案" in text and "500237********123X" in text and PERSON not in text
    assert "已修复" in text and "P1" in text
    assert main(base + [PERSON.lower(), "--format", "json", "--reason", "行政许可审查", "--as-of", "2026-09-10"]) == 0
    assert main(base + ["91500237000000000X", "--reason", "核查"]) == 0  # nobody: still registered
    assert "未找到该主体" in capsys.readouterr().out
    rows = register(dd)
    assert len(rows) == 3
    assert [r[0] for r in rows] == [1, 2, 3]
    assert rows[0][2:6] == ("李科员", getpass.getuser(), PERSON, "答复投诉")
    assert rows[1][2] == getpass.getuser() and rows[1][4] == PERSON and rows[1][6] == DAY and rows[1][7] == "json"
    assert rows[0][8] >= 2 and rows[2][8] == 0  # rows the profile showed
    assert verify_chain_ok(dd)

    # no reason, no query: argparse refuses a missing --reason, the command a blank one
    with pytest.raises(SystemExit) as exc:
        main(base + [PERSON])
    assert exc.value.code == 2
    assert main(base + [PERSON, "--reason", "  "]) == 2
    assert "--reason" in capsys.readouterr().err
    assert len(register(dd)) == 3


def verify_chain_ok(dd: DataDir) -> bool:
    con = duckdb.connect(str(dd.db_path), read_only=True)
    try:
        return verify_chain(con) == []
    finally:
        con.close()


def test_the_command_line_cannot_alter_the_register(dd, capsys, tmp_path, contracts, registry):
    base = ["--data-dir", str(dd.root)]
    measure_day(dd, DAY, contracts, registry)  # the night's figures: the export refuses a month with none
    for reason in ("一", "二"):
        assert main(base + ["profile", PERSON, "--reason", reason]) == 0
    before = register(dd)

    # the commands: a new one must be reviewed here; none offers to edit, delete or purge anything
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == {"init", "generate", "template", "contracts", "check", "run", "demo", "dashboard",
                                "export", "profile", "share", "ui", "bench", "province"}
    parsers = list(sub.choices.items())
    for name, parser in parsers:
        for action in parser._actions:
            if action.choices and isinstance(action.choices, dict):  # nested sub-commands (province …)
                parsers += [(f"{name} {n}", p) for n, p in action.choices.items()]
            for opt in action.option_strings:
                assert not re.search(r"delete|purge|remove|clear|truncate|edit|update|amend|audit", opt), (name, opt)

    # the commands that open the warehouse leave every earlier row as it was
    assert main(base + ["export", "--month", "2026-09", "--format", "csv", "--out", str(tmp_path / "e.csv")]) == 0
    assert main(base + ["dashboard", "--month", "2026-09"]) == 0
    assert main(base + ["init", str(tmp_path / "office")]) == 0  # writes a configuration folder only
    assert register(dd) == before
    assert main(base + ["profile", PERSON, "--reason", "三"]) == 0
    after = register(dd)
    assert after[: len(before)] == before and len(after) == len(before) + 1
    assert verify_chain_ok(dd)

    # the only statements on the table in the shipped code: its CREATE and one INSERT
    hits = []
    for path in [*REPO.glob("assets/**/*.py"), *REPO.glob("pipelines/**/*.py"), *REPO.glob("warehouse/**/*.py"),
                 *REPO.glob("warehouse/**/*.sql"), *REPO.glob("bench/**/*.py"), *REPO.glob("contracts/**/*.py")]:
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"(UPDATE|DELETE\s+FROM|DROP\s+TABLE|TRUNCATE|ALTER\s+TABLE|INSERT\s+INTO|CREATE\s+TABLE[^(]*)\s*"
                             r"(?:IF\s+(?:NOT\s+)?EXISTS\s+)?\"?profile_queries", text, re.I):
            hits.append((path.relative_to(REPO).as_posix(), " ".join(m.group(1).upper().split())))
    assert sorted(hits) == [("assets/credit_profile/audit.py", "INSERT INTO"),
                            ("warehouse/sql/040_credit.sql", "CREATE TABLE IF NOT EXISTS")], hits


def test_a_change_made_with_another_tool_is_detected(dd, capsys):
    for reason in ("一", "二", "三"):
        assert main(["--data-dir", str(dd.root), "profile", PERSON, "--reason", reason]) == 0
    con = duckdb.connect(str(dd.db_path))
    try:
        assert verify_chain(con) == []
        con.execute("UPDATE profile_queries SET reason = '改过' WHERE query_no = 2")  # outside the program
        assert verify_chain(con) == [2]
        con.execute("UPDATE profile_queries SET reason = '二' WHERE query_no = 2")
        con.execute("DELETE FROM profile_queries WHERE query_no = 1")
        assert verify_chain(con) == [2]
    finally:
        con.close()
