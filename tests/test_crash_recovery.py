"""A killed night never blocks the next one and never changes what the next one produces.

tests/crash_harness.py kills ``credit-etl run`` with SIGKILL (its whole process group) at 20 or
more deterministic crash points spread over every step of the night (``warehouse.faults``),
each followed by an unattended rerun that must finish and give tables, Parquet bytes and landing
files identical to an undisturbed night, with no temporary file left. The waiting behaviour of a
second run (what it waits for, its deadline, SIGTERM) is tested with real processes too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from contracts import load_contracts, load_registry
from pipelines.samples.feeds import generate
from pipelines.samples.http import start_sample_server

ROOT = Path(__file__).resolve().parents[1]
DAY = date(2026, 10, 5)
TOKEN = "crash-token"
POINTS = int(os.environ.get("CREDIT_ETL_CRASH_POINTS", "20"))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine")
    generate(root, start=DAY, days=1, rows_per_day=4, seed=5, defect_rate=0.5)
    env = {}
    registry = load_registry(contracts=load_contracts())
    tokens = {}
    for dept in registry.departments:
        for delivery in dept.delivery.values():
            if delivery.kind == "http":
                env[delivery.token_env] = TOKEN
                tokens[dept.code] = TOKEN
    server, base = start_sample_server(root, tokens=tokens)
    env["CREDIT_ETL_HTTP_BASE"] = base
    try:
        yield root, env
    finally:
        server.stop()


def test_kill_9_at_20_points_then_an_unattended_rerun_gives_the_same_warehouse(pristine, tmp_path):
    root, env = pristine
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "crash_harness.py"), "--pristine", str(root), "--work", str(tmp_path),
         "--day", DAY.isoformat(), "--points", str(POINTS)],
        env={**os.environ, **env, "GX_ANALYTICS_ENABLED": "false"}, capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout)
    assert out["reference_exit"] == 0
    trials = out["trials"]
    assert len(trials) >= min(POINTS, out["points_total"]) and len(trials) >= min(POINTS, 20)
    # every step of the night had at least one kill inside it
    steps = {"received_rows", "validated_rows", "warehouse_records", "daily_metrics", "feedback_workbooks", "data_docs"}
    assert steps <= {t["step"] for t in trials}, out["steps"]
    for t in trials:
        assert t["killed"] == -signal.SIGKILL, t
        assert t["rerun_exit"] == 0, t
        assert t["diff"] == [], t
        assert t["temp_after_rerun"] == [], t
    # a kill inside a step leaves that run STARTED with its pool slot: the rerun said it recovered it
    assert any(any("已标记失败并释放其并发名额" in line for line in t["recovered"]) for t in trials)
    assert any(t["temp_after_kill"] for t in trials), "some kill left a temporary file to clean"
    print(f"crash trials: {len(trials)} kills over {out['points_total']} points in {out['seconds']} s")


HOLD = """
import sys, time
from warehouse.layout import DataDir
from pipelines.runguard import night_lock
with night_lock(DataDir(sys.argv[1]), day="2026-10-04"):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def lock_holder(tmp_path):
    data = tmp_path / "data"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(data)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield data, holder
    finally:
        holder.kill()
        holder.wait()


def _cli(data, *args):
    return [sys.executable, "-m", "pipelines.cli", "--data-dir", str(data), "run", "--date", DAY.isoformat(), *args]


def test_a_waiting_run_says_what_it_waits_for_and_gives_up_after_its_deadline(lock_holder):
    data, holder = lock_holder
    proc = subprocess.run(_cli(data, "--wait", "2"), cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "GX_ANALYTICS_ENABLED": "false"})
    assert proc.returncode == 75, proc.stderr[-2000:]
    assert f"进程 {holder.pid}" in proc.stderr and "归集日 2026-10-04" in proc.stderr  # who holds it
    assert "等待 2 秒后" in proc.stderr and "本次（2026-10-05）未开始" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_waiting_run_honours_sigterm(lock_holder):
    data, _ = lock_holder
    proc = subprocess.Popen(_cli(data, "--wait", "600"), cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "GX_ANALYTICS_ENABLED": "false"})
    try:
        line = proc.stderr.readline()  # blocks until the run says it waits
        assert "另一夜间归集正在运行" in line
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=30)[1]
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert "等待已取消" in rest and "Traceback" not in rest
