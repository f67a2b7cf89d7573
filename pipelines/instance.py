"""The persistent local Dagster instance that runs, the demo and the UI share.

DAGSTER_HOME defaults to ``<data dir>/dagster_home`` and receives the local default
``dagster.yaml`` (telemetry off, one DuckDB writer; ``pipelines/deploy/dagster.local.yaml``), so run history survives restarts and the
UI shows the runs that ``credit-etl run``/``demo`` made.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

# the local default (also the repository's dagster.yaml, a link to it); shipped in the package so
# an installed credit-etl gets it too
REPO_DAGSTER_YAML = Path(__file__).resolve().parent / "deploy" / "dagster.local.yaml"


def dagster_home(data_dir: str | Path) -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or Path(data_dir).resolve() / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists() and REPO_DAGSTER_YAML.exists():
        shutil.copyfile(REPO_DAGSTER_YAML, target)
    return home


def get_instance(data_dir: str | Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(dagster_home(data_dir)))


def run_ui(data_dir: str | Path, *, host: str = "127.0.0.1", port: int = 3000) -> int:
    """Start dagster-webserver (and the daemon, for schedules and sensors) on the instance."""
    home = dagster_home(data_dir)
    env = dict(os.environ, DAGSTER_HOME=str(home), CREDIT_ETL_DATA_DIR=str(Path(data_dir).resolve()))
    print(f"Dagster 界面 / UI: http://{host}:{port}  (DAGSTER_HOME={home}; Ctrl+C 退出 / to stop)")
    cmd = [sys.executable, "-m", "dagster", "dev", "-m", "pipelines.definitions", "-h", host, "-p", str(port)]
    return subprocess.call(cmd, env=env)
