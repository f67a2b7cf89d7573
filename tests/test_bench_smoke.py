"""Smoke tests of the benchmark: the whole nightly job, the stage functions and the DuckDB floor on
a small night, and a few small nights against the same files as one night.

They assert the shape of the JSON and that rows are conserved (every row in ends loaded or
quarantined, counted on disk and in DuckDB); nothing about time (the machine is shared and
timings are noise at this size).
"""

from __future__ import annotations

import json

from bench.run import main


def test_bench_job_smoke(tmp_path):
    out = tmp_path / "job.json"
    assert main(rows=3_000, scenario="job", out=out, data_dir=tmp_path, quiet=True) == 0
    res = json.loads(out.read_text(encoding="utf-8"))

    for key in ("scenario", "rows", "machine", "dataset", "job", "stages", "floor", "ratio", "job_ratio",
                "stages_ratio", "rows_in", "loaded", "quarantined", "conserved", "job_peak_rss_tree_bytes",
                "floor_peak_rss_bytes", "floor_seconds", "job_seconds", "job_process_seconds", "steps_seconds",
                "job_process_cpu_seconds"):
        assert key in res, key
    assert res["scenario"] == "job" and res["rows"] == 3_000
    for key in ("nproc", "memory_bytes", "cpu_model", "python", "duckdb", "pyarrow", "pandas"):
        assert key in res["machine"], key

    # every step of the nightly_collection job ran, timed from the run's own event log
    from pipelines.definitions import defs

    job = defs.resolve_job_def("nightly_collection")
    assert set(res["steps_seconds"]) == {node.name for node in job.graph.node_defs}
    assert {"received_rows", "validated_rows", "warehouse_records", "daily_metrics", "feedback_workbooks",
            "data_docs", "quality_dashboard"} <= set(res["steps_seconds"])
    assert all(v > 0 for v in res["steps_seconds"].values()), res["steps_seconds"]  # timed from its own start and end events
    assert res["job_success"] is True  # no error-severity check failed
    assert set(res["stages"]["pipeline"]["stages_seconds"]) == {"ingest", "validate", "load", "measure"}

    # the data set holds exactly the rows asked for, and the replication was exercised
    assert res["dataset"]["total_rows"] == 3_000
    assert res["dataset"]["seed_rows"] < 3_000

    # conservation, through the job and through the stage functions: rows in = loaded + quarantined
    day = res["job"]["per_day"][0]
    assert res["rows_in"] == 3_000 == res["loaded"] + res["quarantined"]
    # (a feed the benchmark's files do not carry, such as 欠税, has no staged rows and counts 0)
    assert all(c.get("staged", 0) == c.get("loaded", 0) + c.get("quarantined", 0) == c.get("passed", 0) + c.get("quarantined", 0)
               for c in day["by_feed"].values())
    assert sum(c.get("staged", 0) for c in day["by_feed"].values()) == 3_000
    assert res["stages"]["rows_in"] == 3_000 == res["stages"]["loaded"] + res["stages"]["quarantined"]
    assert (res["loaded"], res["quarantined"]) == (res["stages"]["loaded"], res["stages"]["quarantined"])
    assert res["conserved"] is True
    # the generator's defects (~8% of rows) arrive as quarantine, and replication keeps that share
    assert 0 < res["quarantined"] < 0.3 * res["rows_in"]

    # the floor read the same rows (all CSV files; the few XLSX ledger rows have no DuckDB floor)
    assert 0 < res["floor"]["rows"] <= res["rows_in"]
    assert res["ratio"] > 0 and res["stages_ratio"] > 0
    assert res["job_peak_rss_tree_bytes"] > 0 and res["floor_peak_rss_bytes"] > 0


def test_bench_month_smoke(tmp_path):
    """A few small nights in one process vs. the same files as one night: both conserve every row."""
    out = tmp_path / "month.json"
    assert main(rows=300, scenario="month", days=3, out=out, data_dir=tmp_path, quiet=True) == 0
    res = json.loads(out.read_text(encoding="utf-8"))
    assert len(res["month"]["job"]["per_day"]) == 3 and len(res["one_night"]["job"]["per_day"]) == 1
    assert res["month"]["rows_in"] == res["one_night"]["rows_in"] == res["dataset"]["total_rows"] == 300
    for r in (res["month"], res["one_night"]):
        assert r["rows_in"] == r["loaded"] + r["quarantined"] and r["conserved"] is True
    assert res["month_cpu_ratio"] > 0 and res["conserved"] is True


def _big_csv(tmp_path, contract, encoding="utf-8"):
    """A > 1 MiB penalties CSV (header + many rows) as a department would send it."""
    from pipelines.samples.writers import headers

    header = ",".join(headers(contract, "label"))
    line = ",".join(["巫山县某某商贸有限公司", "法人及非法人组织", "91500237MA5U3X8Y1C"] + [""] * (len(contract.fields) - 3))
    rows = [line.replace("某某", f"某{i}") for i in range(12_000)]
    return ("\r\n".join(["行政处罚信息报送表", header, *rows]) + "\r\n").encode(encoding)


def test_ingest_utf8_fast_path_equals_full_decode(tmp_path, monkeypatch):
    """The head-only UTF-8 path (assets.ingest.readers._utf8_head, added for the benchmark)
    gives exactly what decoding the whole file gives, and falls back for mixed encodings."""
    from assets.ingest import readers
    from contracts import load_contracts

    contract = load_contracts()["penalties"]
    data = _big_csv(tmp_path, contract)
    assert len(data) > readers._HEAD_BYTES and readers._utf8_head(data) is not None
    fast = readers.read_csv_bytes(data, contract)
    with monkeypatch.context() as m:
        m.setattr(readers, "_utf8_head", lambda data: None)
        full = readers.read_csv_bytes(data, contract)
    assert (fast.headers, fast.header_row, fast.encoding, fast.delimiter) == (
        full.headers, full.header_row, full.encoding, full.delimiter)
    assert fast.row_no.equals(full.row_no)
    assert all(a.equals(b) for a, b in zip(fast.columns, full.columns))

    # a GBK export appended to the UTF-8 file: pyarrow rejects the bytes, the full decode decides
    mixed = data + "\r\n".join(["巫山县乙商行,个体工商户,92500237MA5U3X8Y2D"] * 10).encode("gbk") + b"\r\n"
    got = readers.read_csv_bytes(mixed, contract)
    assert got.encoding.startswith("mixed")
    assert got.num_rows == 12_010


def test_incremental_night_records_are_its_own(tmp_path):
    """The incremental scenario's night tags its record numbers with the night (``key_tag``), so
    its records are new to the backfill, as a real night's are; without the tag the numbers come
    from the generator's shared space (the ``--corrections`` stress case)."""
    from datetime import date

    from bench import dataset

    tagged = dataset.ensure(tmp_path / "tagged", rows=1_500, start=date(2026, 11, 4), days=1, seed=7,
                            key_tag="1104n", log=lambda *_: None)
    plain = dataset.ensure(tmp_path / "plain", rows=1_500, start=date(2026, 11, 4), days=1, seed=7, log=lambda *_: None)
    assert tagged["key_tag"] == "1104n" and plain["key_tag"] == ""
    assert not dataset.matches({**tagged, "_root": str(tmp_path / "tagged")}, rows=1_500, start=date(2026, 11, 4),
                               days=1, seed=7)  # an untagged request does not reuse a tagged set

    def lines(desc, root):
        n = tag = 0
        for f in desc["files"]:
            if not f.get("scaled"):  # ledgers and repairs are copied as generated
                continue
            text = (root / f["path"]).read_bytes().decode(f.get("encoding") or "utf-8", errors="replace")
            n += f["rows"]
            tag += text.count("-1104n")
        return n, tag

    n, tag = lines(tagged, tmp_path / "tagged")
    assert n > 1_000 and tag >= 0.9 * n, (n, tag)  # every row but those whose number cell is empty
    n, tag = lines(plain, tmp_path / "plain")
    assert n > 1_000 and tag == 0


def test_the_job_benchmark_reaches_its_first_day():
    """Unset, partitions start on the first day of last month: the month scenario's October nights
    were unknown partitions from 1 December on. The benchmark moves the start to its first day,
    never later than a start already set."""
    from datetime import date

    from bench.job import partitions_reach

    days = [date(2026, 10, 3), date(2026, 10, 1)]
    env: dict = {}
    partitions_reach(days, env)
    assert env == {"CREDIT_ETL_FIRST_DAY": "2026-10-01"}
    env = {"CREDIT_ETL_FIRST_DAY": "2026-11-01"}
    partitions_reach(days, env)
    assert env["CREDIT_ETL_FIRST_DAY"] == "2026-10-01"
    env = {"CREDIT_ETL_FIRST_DAY": "2026-01-01"}
    partitions_reach(days, env)
    assert env["CREDIT_ETL_FIRST_DAY"] == "2026-01-01"
