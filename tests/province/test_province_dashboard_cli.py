"""The province report through its real entry points: the Dagster assets materialised for a month
partition, ``credit-etl province export|dashboard`` over a DuckDB file, and ``credit-etl province
receive`` as a real process on a free port, stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import requests
from openpyxl import load_workbook

from assets.province.report_assets import ProvinceReportResource, build_report_assets, report_assets
from pipelines.cli import main
from province_report_data import MONTH, PLAIN_COUNTY_SQL, build

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return build(tmp_path_factory.mktemp("province") / "province.duckdb")


def test_assets_materialise_the_month(db, tmp_path):
    out = tmp_path / "province"
    result = dg.materialize(report_assets, partition_key="2026-10-01",
                            resources={"province_report": ProvinceReportResource(data_dir=str(out), db=str(db))})
    assert result.success
    xlsx = out / "reports" / "exports" / f"province_indicators_{MONTH}.xlsx"
    page = out / "reports" / "province_dashboard" / f"{MONTH}.html"
    assert xlsx.exists() and (xlsx.with_suffix(".csv")).exists() and page.exists() and (page.parent / "index.html").exists()
    assert (page.parent / "vendor" / "echarts" / "echarts.min.js").exists()
    href = page.read_text(encoding="utf-8").split('id="export-link"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert (page.parent / href).resolve() == xlsx.resolve()  # the page links the month's workbook
    mats = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    con = duckdb.connect(str(db), read_only=True)
    try:
        plain = con.execute(PLAIN_COUNTY_SQL, [MONTH]).fetchall()
    finally:
        con.close()
    meta = mats["province_indicator_export"]
    assert meta["dagster/row_count"].value == 3  # the settings list no counties here: the three that sent
    assert meta["received_rows"].value == sum(p[1] for p in plain)
    assert load_workbook(xlsx)["区县排名"]["B6"].value == plain[0][0]
    # lineage to the lake's asset when pipelines/province.py passes its key
    keyed = build_report_assets(deps=[dg.AssetKey("county_metrics_daily")])
    assert dg.AssetKey("county_metrics_daily") in keyed[0].dependency_keys


@pytest.fixture
def keep_sigpipe():
    """``main()`` sets SIGPIPE to its default (for ``credit-etl … | head``); put back what the test
    process had, so a later test's closed socket does not end the whole run."""
    before = signal.getsignal(signal.SIGPIPE)
    yield
    signal.signal(signal.SIGPIPE, before)


def test_cli_export_and_dashboard(db, tmp_path, capsys, keep_sigpipe):
    data = tmp_path / "data"
    assert main(["--data-dir", str(data), "province", "export", "--month", MONTH, "--db", str(db)]) == 0
    assert main(["--data-dir", str(data), "province", "dashboard", "--start", "2026-10-01", "--end", "2026-10-15",
                 "--db", str(db)]) == 0
    printed = capsys.readouterr().out
    assert "province_indicators_2026-10.xlsx" in printed and "province_indicators_2026-10.csv" in printed
    assert (data / "reports" / "province_dashboard" / "2026-10-01_2026-10-15.html").exists()
    assert main(["--data-dir", str(data), "province", "export", "--month", MONTH, "--db", str(tmp_path / "none.duckdb")]) == 2
    assert "指标数据库不存在" in capsys.readouterr().err


def test_cli_receive_runs_until_sigterm(tmp_path):
    data = tmp_path / "province"
    env = {**os.environ, "CREDIT_ETL_PROVINCE_TOKEN": "cli-token-42"}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "--data-dir", str(data), "province", "receive",
                             "--port", "0", "--county", "500237=巫山县"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "省级收件端已启动" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = line.split(": ", 1)[1].split("（", 1)[0].strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/push")
        body = {"batch_id": "c" * 32, "region_code": "500237", "feed": "permits", "records": [], "withdrawals": []}
        resp = requests.post(url, data=json.dumps(body).encode(), timeout=10,
                             headers={"Authorization": "Bearer cli-token-42", "Content-Type": "application/json"})
        assert resp.json() == {"batch_id": "c" * 32, "status": "accepted"}
        assert len(list((data / "inbox" / "500237").glob("*/" + "c" * 32 + ".json"))) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "已停止" in out and "cli-token-42" not in out + err
    # without its token it does not start (configuration problem, exit 3)
    env.pop("CREDIT_ETL_PROVINCE_TOKEN")
    bad = subprocess.run([sys.executable, "-m", "pipelines.cli", "--data-dir", str(data), "province", "receive",
                          "--port", "0", "--county", "500237=巫山县"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 3 and "CREDIT_ETL_PROVINCE_TOKEN" in bad.stderr


def test_definitions_with_the_lakes_county_x_day_asset_upstream_load():
    """pipelines/province.py puts the monthly report assets downstream of the lake's county × day
    figures: the definitions load and a monthly job resolves."""
    from assets.partitions import daily_partitions

    multi = dg.MultiPartitionsDefinition({"county": dg.DynamicPartitionsDefinition(name="province_county_test"),
                                          "day": daily_partitions})

    @dg.asset(name="province_county_metrics", partitions_def=multi, group_name="province")
    def upstream():
        return None

    assets = build_report_assets(deps=["province_county_metrics"])
    defs = dg.Definitions(assets=[upstream, *assets],
                          resources={"province_report": ProvinceReportResource(data_dir="unused")},
                          jobs=[dg.define_asset_job("province_report", selection=dg.AssetSelection.assets(*assets))])
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("province_report")
    assert job.partitions_def is not None and "2026-10-01" in job.partitions_def.get_partition_keys()
