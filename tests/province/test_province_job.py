"""The province code location and ``province_job``: real Dagster runs (in-process) into the real
lake (PostgreSQL catalog, moto S3 on 127.0.0.1), county pushes made by the real push code."""

from __future__ import annotations

import random
import shutil
from datetime import date

import dagster as dg
import duckdb
import yaml

from assets.province import lake as lk
from assets.province.partition import catalog_for
from contracts import CONTRACTS_DIR
from conftest import county_push, deliver, valid_penalty, valid_permit

DAY = date(2026, 10, 12)


def write_config(tmp_path, settings) -> str:
    root = tmp_path / "config"
    root.mkdir()
    (root / "settings.yaml").write_text(yaml.safe_dump(settings.model_dump(mode="json", exclude_none=True),
                                                       allow_unicode=True), encoding="utf-8")
    shutil.copy(CONTRACTS_DIR / "departments.yaml", root / "departments.yaml")
    return str(root)


def test_code_location_loads_and_validates():
    import pipelines.province as prov

    dg.Definitions.validate_loadable(prov.defs)
    job = prov.defs.resolve_job_def("province_job")
    assert {n.name for n in job.graph.node_defs} >= {"province_records", "province_county_metrics"}
    assert isinstance(job.partitions_def, dg.MultiPartitionsDefinition)
    assert job.partitions_def.partition_dimension_names == ["county", "day"]
    specs = {s.key.path[-1]: s for s in prov.defs.resolve_all_asset_specs()}
    assert specs["province_records"].group_name == "province"
    assert specs["province_records"].owners and specs["province_records"].kinds >= {"iceberg"}


def test_province_job_materialises_two_counties_and_the_sensor_adds_them(tmp_path, shipped, lake_env, province_settings):
    import pipelines.province as prov

    rng = random.Random(11)
    data = tmp_path / "province"
    deliver(data, county_push(tmp_path, shipped, "500237", DAY,
                              penalties=[valid_penalty(rng, "罚A1", date(2026, 10, 9), 2)],
                              permits=[valid_permit(rng, "许A1", date(2026, 9, 1), 2)]))
    deliver(data, county_push(tmp_path, shipped, "500238", DAY,
                              penalties=[valid_penalty(rng, "罚B1", date(2026, 10, 10), 2),
                                         valid_penalty(rng, "罚B2", date(2026, 10, 11), 3)]))
    config = write_config(tmp_path, province_settings)
    defs = prov.build_definitions(str(data), config)
    instance = dg.DagsterInstance.ephemeral()
    # the sensor registers both counties and asks for one run per county × day
    sensor = defs.resolve_sensor_def("province_inbox_sensor")
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as ctx:
        res = sensor(ctx)
    assert sorted(r.partition_key.keys_by_dimension["county"] for r in res.run_requests) == ["500237", "500238"]
    for req in res.dynamic_partitions_requests:
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    assert sorted(instance.get_dynamic_partitions("county")) == ["500237", "500238"]
    job = defs.resolve_job_def("province_job")
    for req in res.run_requests:
        result = job.execute_in_process(instance=instance, partition_key=req.partition_key)
        assert result.success
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks == {"province_rows_conserved": True, "province_figures_match_lake": True}
        mats = {m.asset_key.path[-1]: m.metadata for m in result.asset_materializations_for_node("province_records")}
        county = req.partition_key.keys_by_dimension["county"]
        assert mats["province_records"]["rows_in"].value == {"500237": 2, "500238": 2}[county]
        assert mats["province_records"]["dagster/row_count"].value == 2
    con = duckdb.connect()
    lk.register_lake(con, province_settings)
    got = con.execute("SELECT county_code, feed, sum(received_rows), sum(on_time_records), sum(late_records) "
                      "FROM county_metrics_daily GROUP BY ALL ORDER BY ALL").fetchall()
    assert got == [("500237", "penalties", 1, 1, 0), ("500237", "permits", 1, 0, 1), ("500238", "penalties", 2, 2, 0)]
    assert got == independent_figures(data, shipped[0])
    _, catalog = catalog_for(province_settings)
    via = catalog.load_table(("credit", "county_metrics_daily")).scan().to_arrow().to_pylist()
    per = {}
    for r in via:
        k = (r["county_code"], r["feed"])
        per[k] = tuple(a + b for a, b in zip(per.get(k, (0, 0, 0)),
                                            (r["received_rows"], r["on_time_records"], r["late_records"])))
    assert sorted((*k, *v) for k, v in per.items()) == got


def independent_figures(data, contracts):
    """Per county × feed from the batch files themselves, with the calendar's Python deadline
    (not the SQL path the job uses): rows received, records on time, records late."""
    import json

    from assets.measure.calendar import WorkCalendar

    cal = WorkCalendar()
    out = {}
    for path in sorted((data / "inbox").glob("*/*/*.json")):
        county, day = path.parts[-3], date.fromisoformat(path.parts[-2])
        doc = json.loads(path.read_text("utf-8"))
        c = contracts[doc["feed"]]
        clock = c.field(c.clock_field).code
        for rec in doc["records"]:
            due, _ = cal.deadline(date.fromisoformat(rec[clock]), c.deadline)
            n, ok, late = out.get((county, doc["feed"]), (0, 0, 0))
            out[(county, doc["feed"])] = (n + 1, ok + (day <= due), late + (day > due))
    return sorted((*k, *v) for k, v in out.items())


ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def _cli_env(tmp_path, config, lake_env) -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_ETL_FAULT")}
    env.update(lake_env)
    env.update({"CREDIT_ETL_CONFIG": config, "DAGSTER_HOME": str(tmp_path / "dagster_home"),
                "AWS_EC2_METADATA_DISABLED": "true", "CREDIT_ETL_FIRST_DAY": "2026-01-01"})
    (tmp_path / "dagster_home").mkdir(exist_ok=True)
    return env


def _cli(args, env, **kw):
    import subprocess

    return subprocess.run([str(ROOT / ".venv" / "bin" / "credit-etl"), *args], env=env, capture_output=True,
                          text=True, timeout=600, **kw)


def test_cli_runs_a_day_and_connects_to_loopback_only(tmp_path, shipped, lake_env, province_settings):
    """``credit-etl province run`` under strace: every connect() of the process tree (Python,
    libpq, the AWS SDK inside pyarrow) goes to 127.0.0.1 or a local socket."""
    import re
    import shutil as sh

    if not sh.which("strace"):
        import pytest

        pytest.skip("strace not installed (.ci/run installs it)")
    rng = random.Random(5)
    data = tmp_path / "province"
    deliver(data, county_push(tmp_path, shipped, "500237", DAY, penalties=[valid_penalty(rng, "罚C1", date(2026, 10, 9), 2)]))
    deliver(data, county_push(tmp_path, shipped, "500238", DAY, permits=[valid_permit(rng, "许C1", date(2026, 10, 9), 2)]))
    env = _cli_env(tmp_path, write_config(tmp_path, province_settings), lake_env)
    log = tmp_path / "strace.log"
    import subprocess

    proc = subprocess.run(["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(log),
                           str(ROOT / ".venv" / "bin" / "credit-etl"), "--data-dir", str(data), "province", "run",
                           "--day", str(DAY)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "500237 2026-10-12：完成（收到 1 行，入库 1，隔离 0）" in proc.stdout
    assert "500238 2026-10-12：完成（收到 1 行，入库 1，隔离 0）" in proc.stdout
    text = log.read_text()
    v4 = re.findall(r'inet_addr\("([^"]+)"\)', text)
    v6 = re.findall(r'inet_pton\(AF_INET6, "([^"]+)"', text)
    assert "127.0.0.1" in v4  # the trace saw the catalog and S3 connections
    assert all(a.startswith("127.") for a in v4), sorted(set(v4))
    assert all(a in ("::1", "::ffff:127.0.0.1") for a in v6), sorted(set(v6))
    con = duckdb.connect()
    lk.register_lake(con, province_settings)
    assert con.execute("SELECT county_code, feed, received_rows FROM county_metrics_daily ORDER BY ALL").fetchall() == [
        ("500237", "penalties", 1), ("500238", "permits", 1)]
    # an unknown or malformed county code is refused plainly
    bad = _cli(["--data-dir", str(data), "province", "run", "--day", str(DAY), "--county", "5002"], env)
    assert bad.returncode == 2 and "6位" in bad.stderr


def test_kill_9_before_the_commit_leaves_the_previous_snapshot(tmp_path, shipped, lake_env, province_settings):
    """The run is killed (SIGKILL, as kill -9) after writing a table's data files and before its
    catalog commit: that table keeps its previous snapshot, readable; a rerun completes the day."""
    rng = random.Random(9)
    data = tmp_path / "province"
    deliver(data, county_push(tmp_path, shipped, "500237", DAY, penalties=[valid_penalty(rng, "罚K1", date(2026, 10, 9), 2)]))
    env = _cli_env(tmp_path, write_config(tmp_path, province_settings), lake_env)
    points = tmp_path / "points.log"
    first = _cli(["--data-dir", str(data), "province", "run", "--day", str(DAY)], {**env, "CREDIT_ETL_FAULT_LOG": str(points)})
    assert first.returncode == 0, first.stderr[-3000:]
    labels = [line.split("\t")[2] for line in points.read_text().splitlines()]
    n = labels.index("lake.before_commit.records_penalties") + 1
    _, catalog = catalog_for(province_settings)
    snap = catalog.load_table(("credit", "records_penalties")).current_snapshot().snapshot_id
    deliver(data, county_push(tmp_path / "later", shipped, "500237", DAY,
                              penalties=[valid_penalty(rng, "罚K2", date(2026, 10, 10), 2)]))
    killed = _cli(["--data-dir", str(data), "province", "run", "--day", str(DAY)],
                  {**env, "CREDIT_ETL_FAULT_KILL_AT": str(n)}, start_new_session=True)
    assert killed.returncode == -9
    t = catalog.load_table(("credit", "records_penalties"))
    assert t.current_snapshot().snapshot_id == snap
    con = duckdb.connect()
    lk.register_lake(con, province_settings)
    assert con.execute("SELECT decision_no FROM records_penalties").fetchall() == [("罚K1",)]
    again = _cli(["--data-dir", str(data), "province", "run", "--day", str(DAY)], env)
    assert again.returncode == 0, again.stderr[-3000:]
    lk.register_lake(con, province_settings)
    assert con.execute("SELECT decision_no FROM records_penalties ORDER BY 1").fetchall() == [("罚K1",), ("罚K2",)]
    assert con.execute("SELECT received_rows FROM county_metrics_daily").fetchall() == [(2,)]


def test_steps_run_in_separate_processes(tmp_path, shipped, lake_env, province_settings, monkeypatch):
    """Multiprocess executor: each step in its own process, the job found by module path; the
    steps share nothing in memory (no IO manager), each reads the inbox or the lake."""
    rng = random.Random(13)
    data = tmp_path / "province"
    deliver(data, county_push(tmp_path, shipped, "500237", DAY, penalties=[valid_penalty(rng, "罚M1", date(2026, 10, 9), 2)]))
    monkeypatch.setenv("CREDIT_ETL_PROVINCE_DIR", str(data))
    monkeypatch.setenv("CREDIT_ETL_CONFIG", write_config(tmp_path, province_settings))
    home = tmp_path / "dagster_home"
    home.mkdir()
    import os

    with dg.instance_for_test(temp_dir=str(home)) as instance:
        instance.add_dynamic_partitions("county", ["500237"])
        key = dg.MultiPartitionKey({"county": "500237", "day": str(DAY)})
        from pipelines.province import get_province_job

        tags = {"dagster/partition": str(key), "dagster/partition/county": "500237", "dagster/partition/day": str(DAY)}
        result = dg.execute_job(dg.reconstructable(get_province_job), instance=instance, tags=tags,
                                run_config={"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}})
        assert result.success
        starts = [e for e in result.all_events if e.event_type_value == "STEP_START"]
        pids = {e.step_key: e.pid for e in starts}
        assert set(pids) == {"province_records", "province_county_metrics"}
        assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    con = duckdb.connect()
    lk.register_lake(con, province_settings)
    assert con.execute("SELECT county_code, received_rows FROM county_metrics_daily").fetchall() == [("500237", 1)]
