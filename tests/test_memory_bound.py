"""Issue 12, memory: one input at its format's size limit keeps every process of the run together
below 1 GiB resident (psutil samples the whole process tree: bench/rss.py).

CI cost (~2–3 min on 2 shared cores): the CSV at its limit goes through a whole ``credit-etl run``
(the night's peak is set by the load step, not by reading); a JSON page at the HTTP page limit
through the day's ingest (streamed: its peak is far below the night's); an XLSX of 20,000 rows
through the ingest (openpyxl reads ~1,200 rows/s, so the XLSX at its limit, ~180,000 rows in a
200 MiB sheet, is measured by ``python -m bench.memory --tree`` instead: bench/results/memory.json).
"""

from __future__ import annotations

import re

import pytest

from bench.memory import limit_input, measure_tree

BOUND_MIB = 1024


def _rows(stdout: str) -> tuple[int, int]:
    m = re.search(r"ROWS (\d+) REJECTED (\d+)", stdout)
    assert m, stdout
    return int(m.group(1)), int(m.group(2))


def test_csv_at_its_limit_whole_night_below_1_gib(tmp_path):
    root = tmp_path / "data"
    info = limit_input("csv", root)
    assert 0.95 * info["limit"] < info["bytes"] <= info["limit"], info
    res = measure_tree("csv", root, night=True, timeout=900)
    assert res["returncode"] in (0, 3), res  # 3: configuration note (HTTP tokens unset), night succeeded
    assert "夜间归集成功" in res["stdout_tail"], res
    rows = int(re.search(r"（permits）: 接收 (\d+) 行", res["stdout_tail"]).group(1))
    assert rows > 100_000, res["stdout_tail"]
    assert 300 < res["peak_tree_mib"] < BOUND_MIB, res  # > 300: the sampler saw the real process


def test_json_page_at_the_http_limit_ingest_below_1_gib(tmp_path):
    root = tmp_path / "data"
    info = limit_input("http", root)
    assert 0.95 * info["limit"] < info["bytes"] <= info["limit"], info
    res = measure_tree("http", root, night=False, timeout=600)
    assert res["returncode"] == 0, res
    rows, rejected = _rows(res["stdout_tail"])
    assert rows > 50_000 and rejected == 0, res  # JSON repeats every key: ~800 bytes a record
    assert 150 < res["peak_tree_mib"] < BOUND_MIB, res


def test_xlsx_ingest_below_1_gib(tmp_path):
    root = tmp_path / "data"
    limit_input("xlsx", root, rows=20_000)
    res = measure_tree("xlsx", root, night=False, timeout=600)
    assert res["returncode"] == 0, res
    assert _rows(res["stdout_tail"]) == (20_000, 0), res
    assert 150 < res["peak_tree_mib"] < BOUND_MIB, res
