"""The nightly job end to end through the real Dagster machinery, on generated department files,
a real sample HTTP server and a real DuckDB file: checks pass, every row is accounted for, and
running the same night twice leaves the warehouse identical."""

from __future__ import annotations

import csv
from datetime import date

import dagster as dg
import pytest

from contracts import load_contracts, load_registry
from pipelines.definitions import ALL_ASSETS, build_resources
from pipelines.nightly import run_night
from pipelines.samples.feeds import generate
from pipelines.samples.http import start_sample_server
from warehouse.checksum import table_checksums
from warehouse.db import connect
from warehouse.layout import DataDir

DAY = date(2026, 9, 29)
TOKEN = "test-token"


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    root = tmp_path_factory.mktemp("night")
    generate(root, start=date(2026, 9, 28), days=3, rows_per_day=6, seed=11)
    registry = load_registry(contracts=load_contracts())
    tokens = {}
    with pytest.MonkeyPatch.context() as mp:
        for dept in registry.departments:
            for delivery in dept.delivery.values():
                if delivery.kind == "http":
                    mp.setenv(delivery.token_env, TOKEN)
                    tokens[dept.code] = TOKEN
        server, base = start_sample_server(root, tokens=tokens)
        try:
            yield DataDir(root), base, mp
        finally:
            server.stop()


def _nightly_assets():
    return [a for a in ALL_ASSETS if a.op.name != "monthly_indicators"]


def test_materialize_one_night_passes_its_checks_and_accounts_for_every_row(night):
    layout, base, _ = night
    result = dg.materialize(
        _nightly_assets(),
        partition_key=DAY.isoformat(),
        resources=build_resources(str(layout.root), base),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    checks: dict[str, dict[str, bool]] = {}
    for ev in result.get_asset_check_evaluations():
        checks.setdefault(ev.check_name, {})[ev.asset_key.path[0]] = ev.passed
    feeds = set(load_contracts())
    for name in ("rows_conserved", "loaded_equals_passed", "every_file_readable"):
        assert set(checks[name]) == feeds and all(checks[name].values()), (name, checks[name])
    # the sample data has defects on purpose: the 100% target check warns for some feed
    assert set(checks["compliance_rate_100"]) == feeds and not all(checks["compliance_rate_100"].values())

    with open(layout.truth, encoding="utf-8") as fh:
        truth = [r for r in csv.DictReader(fh) if r["received_date"] == DAY.isoformat()]
    expected = {}
    for r in truth:
        c = expected.setdefault(r["feed"], {"received": 0, "passed": 0})
        c["received"] += 1
        c["passed"] += r["valid"] == "true"

    materialized = {
        ev.asset_key.to_user_string(): ev.step_materialization_data.materialization.metadata
        for ev in result.get_asset_materialization_events()
    }
    for feed, c in expected.items():
        # one asset per feed: its own row counts and rates, as numbers the UI can plot
        assert materialized[f"{feed}/received_rows"]["dagster/row_count"].value == c["received"], feed
        assert materialized[f"{feed}/validated_rows"]["passed"].value == c["passed"], feed
        rate = materialized[f"{feed}/validated_rows"]["合规率"]
        assert isinstance(rate, dg.FloatMetadataValue)
        assert rate.value == pytest.approx(round(100 * c["passed"] / c["received"], 2)), feed
    # per-department rates on the measured asset, equal to the warehouse's own figures
    with connect(layout, read_only=True) as con:
        rows = con.execute(
            "SELECT feed, dept, sum(passed_rows), sum(received_rows) FROM metrics_daily WHERE day = ? "
            "GROUP BY feed, dept HAVING sum(received_rows) > 0", [DAY]).fetchall()
    assert rows
    for feed, dept, passed, received in rows:
        value = materialized[f"{feed}/daily_metrics"][f"合规率/{dept}"]
        assert isinstance(value, dg.FloatMetadataValue)
        assert value.value == pytest.approx(round(100 * passed / received, 2)), (feed, dept)
    with connect(layout, read_only=True) as con:
        for feed, c in expected.items():
            loaded = con.execute(f'SELECT count(*) FROM "{feed}_versions" WHERE _received_date = ?', [DAY]).fetchone()[0]
            assert loaded == c["passed"], feed
    feedback = list((layout.feedback).glob(f"*/*_{DAY.isoformat()}_校验反馈.xlsx"))
    assert feedback, "departments with rejected rows get a feedback workbook"
    assert (layout.data_docs / "index.html").exists()


def test_running_the_same_night_twice_gives_the_same_warehouse(night):
    layout, base, _ = night
    instance = dg.DagsterInstance.ephemeral()
    first = run_night(layout.root, DAY, http_base=base, instance=instance)
    assert first.success, first.describe()
    with connect(layout, read_only=True) as con:
        before = table_checksums(con)
    landing_before = sorted(p.name for p in layout.landing.rglob("*") if p.is_file())
    parquet_before = {p: p.read_bytes() for p in layout.parquet_root.rglob("*.parquet")}

    second = run_night(layout.root, DAY, http_base=base, instance=instance)
    assert second.success, second.describe()
    with connect(layout, read_only=True) as con:
        after = table_checksums(con)
    assert after == before
    assert sorted(p.name for p in layout.landing.rglob("*") if p.is_file()) == landing_before
    assert {p: p.read_bytes() for p in layout.parquet_root.rglob("*.parquet")} == parquet_before
    assert "夜间归集成功" in second.describe()


def test_credit_etl_run_command_runs_the_night_and_reports_in_chinese(night, capsys, monkeypatch, tmp_path):
    from pipelines.cli import main

    layout, base, _ = night
    monkeypatch.setenv("CREDIT_ETL_HTTP_BASE", base)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert main(["--data-dir", str(layout.root), "run", "--date", "2026-09-30"]) == 0
    out = capsys.readouterr().out
    assert "2026-09-30 夜间归集成功" in out and "接收" in out and "隔离" in out
    assert (tmp_path / "dagster_home" / "dagster.yaml").exists()  # the persistent instance

    # without the department's token the HTTP pulls are skipped and reported once as a
    # configuration problem (exit 3, distinct from a data failure); the inbox deliveries still load
    monkeypatch.delenv("CREDIT_ETL_TOKEN_ZFCXJW", raising=False)
    assert main(["--data-dir", str(layout.root), "run", "--date", "2026-09-28"]) == 3
    captured = capsys.readouterr()
    assert "夜间归集成功" in captured.out and "every_file_readable" not in captured.out
    assert [line for line in captured.err.splitlines() if "CREDIT_ETL_TOKEN_ZFCXJW" in line][0].startswith("配置问题")


REJECTED_DAY = date(2026, 10, 5)


def test_a_rerun_of_a_night_fails_the_check_for_the_delivery_the_first_run_rejected(tmp_path, capsys, monkeypatch):
    """The rejected delivery is in the manifest since the first run; the rerun records nothing new
    but reports the same outcome: the check fails naming the file, and `credit-etl run` exits 1."""
    from pipelines.cli import main

    root = tmp_path / "data"
    generate(root, start=REJECTED_DAY, days=1, rows_per_day=4, seed=5)
    layout = DataDir(root)
    empty = layout.inbox / "scjgj" / "penalties" / REJECTED_DAY.isoformat() / "空文件.csv"
    empty.parent.mkdir(parents=True, exist_ok=True)
    empty.write_bytes(b"")
    check = "penalties/received_rows:every_file_readable"

    first = run_night(root, REJECTED_DAY, instance=dg.DagsterInstance.ephemeral(), http_enabled=False)
    assert first.success and check in first.failed_checks, first.describe()
    assert any("空文件.csv" in r and "文件为空" in r for r in first.rejected), first.rejected
    with connect(layout, read_only=True) as con:
        manifest_before = table_checksums(con)["ingest_manifest"]

    # the rerun through the command, as cron runs it: same failed check, same file named, exit 1
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    for dept in load_registry(contracts=load_contracts()).departments:  # as in the first run: no HTTP pulls
        for delivery in dept.delivery.values():
            if delivery.token_env:
                monkeypatch.delenv(delivery.token_env, raising=False)  # (the module's fixture may have set it)
    assert main(["--data-dir", str(root), "run", "--date", REJECTED_DAY.isoformat()]) == 1
    out = capsys.readouterr().out
    assert f"未通过的检查 / failed check: {check}" in out, out
    assert "拒收文件 / rejected file: scjgj/penalties/空文件.csv: 文件为空" in out, out
    assert "夜间归集成功" not in out and "有检查未通过" in out, out
    with connect(layout, read_only=True) as con:
        assert table_checksums(con)["ingest_manifest"] == manifest_before  # nothing recorded twice


LATE_FOLDER_DAY = date(2026, 10, 5)
LATE_NIGHT = date(2026, 10, 6)


def test_a_file_put_into_an_earlier_days_folder_is_taken_in_by_the_next_real_night_once(tmp_path):
    """Two real nights: a file that lands in 10-05's folder after 10-05's night is loaded by
    10-06's night as received on 10-06, said in the run's output; rerunning 10-05 does not take it
    again and rerunning 10-06 gives the same warehouse."""
    root = tmp_path / "data"
    generate(root, start=LATE_FOLDER_DAY, days=2, rows_per_day=4, seed=5)
    layout = DataDir(root)
    instance = dg.DagsterInstance.ephemeral()

    def night_of(day):
        result = run_night(root, day, instance=instance, http_enabled=False)
        assert result.success and not result.failed_checks, result.describe()
        return result

    night_of(LATE_FOLDER_DAY)
    # after that night, a department finishes its upload into the same day's folder: the first
    # record line of one of its CSV files, a file of its own (its own bytes, one record)
    source = sorted(layout.inbox.glob(f"*/penalties/{LATE_FOLDER_DAY}/*.csv"))[0]
    late = source.with_name("补报_" + source.name)
    late.write_bytes(b"\n".join(source.read_bytes().split(b"\n")[:2]) + b"\n")
    dept = source.parts[-4]

    second = night_of(LATE_NIGHT)
    text = second.describe()
    assert f"迟到文件 / file found late: {dept}/penalties/{late.name}：在 {LATE_FOLDER_DAY} 的目录中发现" in text, text
    assert f"接收日按 {LATE_NIGHT} 计；1 行" in text, text
    with connect(layout, read_only=True) as con:
        row = con.execute("SELECT received_date, late_from, status, rows_parsed FROM ingest_manifest "
                          "WHERE original_name = ?", [late.name]).fetchall()
        assert row == [(LATE_NIGHT, LATE_FOLDER_DAY, "parsed", 1)]
        staged = con.execute("SELECT _received_date, count(*) FROM penalties_versions WHERE _source_name = ? "
                             "GROUP BY ALL UNION ALL SELECT received_date, count(*) FROM quarantine_items "
                             "WHERE source_name = ? GROUP BY ALL", [late.name, late.name]).fetchall()
        assert [(d, n) for d, n in staged] == [(LATE_NIGHT, 1)], staged  # loaded or quarantined, once
        after = table_checksums(con)

    # rerun of the earlier night: the manifest has the file, nothing is taken twice
    night_of(LATE_FOLDER_DAY)
    with connect(layout, read_only=True) as con:
        again = table_checksums(con)
    for table in ("ingest_manifest", "ingest_duplicates", "penalties_versions", "quarantine_items"):
        assert again[table] == after[table], table
    # rerun of the later night: the same warehouse, the same words
    third = night_of(LATE_NIGHT)
    with connect(layout, read_only=True) as con:
        assert table_checksums(con) == after
    assert [line for line in third.describe().splitlines() if "迟到文件" in line] == [
        line for line in text.splitlines() if "迟到文件" in line]
