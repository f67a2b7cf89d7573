"""Readers never fail a night and a night never fails a reader, with real concurrent processes:
a night started while a reader holds the DuckDB file waits and succeeds; exports run again and
again during a night all succeed; a reader that waits too long gets a Chinese message naming the
holder, never DuckDB's raw IOException."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from pipelines.samples.feeds import generate

ROOT = Path(__file__).resolve().parents[1]
DAY = date(2026, 10, 5)

HOLD = """
import sys, time
from warehouse.db import connect
from warehouse.layout import DataDir
with connect(DataDir(sys.argv[1]), read_only=sys.argv[2] == "read"):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def _env(**kw):
    e = {**os.environ, "GX_ANALYTICS_ENABLED": "false", **kw}
    for k in ("DAGSTER_HOME", "CREDIT_ETL_HTTP_BASE"):
        e.pop(k, None)
    for k in [k for k in e if k.startswith("CREDIT_ETL_TOKEN_")]:  # no sample server: the HTTP department is unset (exit 3)
        e.pop(k)
    return e


def hold(data: Path, mode: str, seconds: float) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(data), mode, str(seconds)], cwd=ROOT, stdout=subprocess.PIPE,
                         text=True, env=_env())
    assert p.stdout.readline().strip() == "held"
    return p


def cli(data: Path, *args: str, **env) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "--data-dir", str(data), *args]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("rw")
    generate(root, start=DAY, days=2, rows_per_day=4, seed=7)
    return root


def test_a_night_started_while_a_reader_holds_the_file_waits_and_succeeds(data):
    from warehouse.db import connect
    from warehouse.layout import DataDir

    with connect(DataDir(data)):
        pass  # the warehouse file exists, so a reader can hold it
    reader = hold(data, "read", 900)  # held until the night is seen waiting for it
    night = subprocess.Popen(cli(data, "run", "--date", DAY.isoformat()), cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=_env())
    seen = []
    try:
        for line in night.stderr:  # the night's first open of the warehouse meets the reader's lock
            seen.append(line)
            if f"正被进程 {reader.pid} 占用，等待其结束后写入" in line:
                break
        else:
            pytest.fail("the night never waited for the reader:\n" + "".join(seen)[-3000:])
        assert night.poll() is None  # still waiting, not failed
        reader.kill()
        reader.wait()
        stdout, stderr = night.communicate(timeout=900)
    finally:
        reader.kill()
        night.kill()
    stderr = "".join(seen) + stderr
    # exit 3 (EXIT_CONFIG): the sample department over HTTP has no token in this test
    assert night.returncode == 3 and "夜间归集成功" in stdout, stdout + stderr[-3000:]
    assert "IOException" not in stderr and "Could not set lock" not in stderr


def test_exports_during_a_night_all_succeed_and_the_night_too(data, tmp_path):
    night = subprocess.Popen(cli(data, "run", "--date", "2026-10-06"), cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=_env())
    results = []
    try:
        while night.poll() is None and len(results) < 40:
            out = tmp_path / f"e{len(results)}.csv"
            p = subprocess.run(cli(data, "export", "--month", "2026-10", "--format", "csv", "--out", str(out)), cwd=ROOT,
                               capture_output=True, text=True, timeout=900, env=_env())
            results.append((p.returncode, p.stderr[-500:]))
        stdout, stderr = night.communicate(timeout=900)
    finally:
        night.kill()
    assert len(results) >= 2, "the night ended before exports could overlap it"
    assert all(code == 0 for code, _ in results), results
    assert not any("IOException" in err or "Could not set lock" in err for _, err in results)
    assert "夜间归集成功" in stdout, stdout + stderr[-3000:]


def test_a_reader_that_waits_too_long_gets_a_chinese_message(data):
    writer = hold(data, "write", 60)
    try:
        proc = subprocess.run(cli(data, "export", "--month", "2026-10"), cwd=ROOT, capture_output=True, text=True,
                              timeout=300, env=_env(CREDIT_ETL_DB_WAIT_SECONDS="2"))
    finally:
        writer.kill()
        writer.wait()
    assert proc.returncode == 75, proc.stderr[-2000:]
    assert f"正被进程 {writer.pid} 占用" in proc.stderr and "等待 2 秒后仍无法读取" in proc.stderr
    assert "IOException" not in proc.stderr and "Traceback" not in proc.stderr
