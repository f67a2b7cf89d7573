"""The per-night fixed costs removed in issue 13 keep their answers: the catalog cache re-reads an
edited contract, and the public views are replaced exactly when their SQL changes."""

from __future__ import annotations

import shutil
import time

import duckdb

from contracts.loader import CONTRACTS_DIR, current_contracts, current_registry, load_contracts
from warehouse.feed_tables import ensure_feed_tables, public_view


def test_catalog_cache_rereads_an_edited_contract(tmp_path):
    cdir = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, cdir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    first = current_contracts(cdir)
    assert current_contracts(cdir)["penalties"] is first["penalties"]  # parsed once
    assert first == load_contracts(cdir)
    assert current_registry(cdir) is current_registry(cdir)

    path = cdir / "penalties.yaml"
    text = path.read_text(encoding="utf-8")
    old_title = first["penalties"].title
    time.sleep(0.01)
    path.write_text(text.replace(f"title: {old_title}", "title: 行政处罚（改）", 1), encoding="utf-8")
    again = current_contracts(cdir)
    assert again["penalties"].title == "行政处罚（改）" != old_title
    assert again == load_contracts(cdir)

    first.pop("penalties")  # callers get their own dict
    assert "penalties" in current_contracts(cdir)


def test_public_views_replaced_only_when_their_sql_changes(tmp_path):
    contracts = load_contracts()
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_feed_tables(con, contracts)
    name = public_view("penalties")

    def stamp():
        return con.execute("SELECT comment FROM duckdb_views() WHERE view_name = ?", [name]).fetchone()[0]

    first = stamp()
    assert first.startswith("sha256:")
    con.execute(f'COMMENT ON VIEW "{name}" IS \'sha256:stale\'')  # as if its SQL had changed
    ensure_feed_tables(con, contracts)
    assert stamp() == first  # replaced, and stamped with its SQL again
    ensure_feed_tables(con, contracts)
    assert stamp() == first
    assert con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] == 0

    con.execute(f'DROP VIEW "{name}"')  # a missing view is created again
    ensure_feed_tables(con, contracts)
    assert stamp() == first
    con.close()


def test_ge_context_reused_until_its_configuration_file_changes(tmp_path):
    """Data Docs nights in one process share the GE context; a new or rewritten configuration
    file (a removed project, a datasource added) gives a fresh one that sees it."""
    from assets.validate.suites import get_context, save_suites

    first = get_context(tmp_path)
    assert get_context(tmp_path) is first
    save_suites(tmp_path, load_contracts(), context=first)
    shutil.rmtree(tmp_path / "reports" / "gx")
    again = get_context(tmp_path)
    assert again is not first
    assert (tmp_path / "reports" / "gx" / "great_expectations.yml").exists()
    assert get_context(tmp_path) is again


def test_event_log_with_reused_connections_is_what_dagsters_own_storage_reads(tmp_path):
    """``credit-etl run``/``demo`` write the event log through ReusingSqliteEventLogStorage; the UI
    and the daemon read the same files with Dagster's stock class: every event, the asset's
    materialisation and its check evaluation are there, and old run databases get closed."""
    import dagster as dg

    from pipelines.event_storage import MAX_OPEN_SHARDS, ReusingSqliteEventLogStorage
    from pipelines.instance import dagster_home, get_instance

    @dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="numbers")])
    def numbers():
        return dg.MaterializeResult(metadata={"n": 3},
                                    check_results=[dg.AssetCheckResult(check_name="positive", passed=True)])

    job = dg.Definitions(assets=[numbers]).resolve_implicit_global_asset_job_def()
    instance = get_instance(tmp_path)
    try:
        assert isinstance(instance.event_log_storage, ReusingSqliteEventLogStorage)
        runs = [job.execute_in_process(instance=instance) for _ in range(MAX_OPEN_SHARDS + 2)]
        assert all(r.success for r in runs)
        assert len(instance.event_log_storage._engines) <= MAX_OPEN_SHARDS
        written = [[e.event_type for e in r.all_events] for r in runs]
    finally:
        instance.dispose()

    stock = dg.DagsterInstance.from_config(str(dagster_home(tmp_path)))  # the UI's view
    try:
        assert type(stock.event_log_storage).__name__ == "SqliteEventLogStorage"
        for run, types in zip(runs, written):
            stored = [r.event_log_entry.dagster_event_type for r in stock.get_records_for_run(run.run_id).records
                      if r.event_log_entry.is_dagster_event]
            assert [t for t in stored if t in types] == [t for t in types if t in stored]
            assert set(types) <= set(stored)
            assert stock.get_run_by_id(run.run_id).is_success
        assert stock.get_latest_materialization_event(dg.AssetKey("numbers")).run_id == runs[-1].run_id
        check = stock.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("numbers"), "positive"), limit=10)
        assert len(check) == len(runs)
    finally:
        stock.dispose()


def test_page_templates_compiled_once_and_recompiled_when_edited(tmp_path):
    from assets.dashboard.render import page_env

    (tmp_path / "p.html.j2").write_text("一{{ x }}", encoding="utf-8")
    env = page_env(tmp_path)
    assert page_env(tmp_path) is env
    assert env.get_template("p.html.j2").render(x=1) == "一1"
    time.sleep(0.01)
    (tmp_path / "p.html.j2").write_text("二{{ x }}", encoding="utf-8")
    import os
    st = (tmp_path / "p.html.j2").stat()
    os.utime(tmp_path / "p.html.j2", (st.st_atime, st.st_mtime + 2))  # a visibly newer file
    assert page_env(tmp_path).get_template("p.html.j2").render(x=1) == "二1"
