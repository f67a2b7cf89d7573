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
