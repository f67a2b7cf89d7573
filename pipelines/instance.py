"""The persistent local Dagster instance that runs, the demo and the UI share.

DAGSTER_HOME defaults to ``<data dir>/dagster_home`` and receives the local default
``dagster.yaml`` (telemetry off, one DuckDB writer; ``pipelines/deploy/dagster.local.yaml``), so run history survives restarts and the
UI shows the runs that ``credit-etl run``/``demo`` made.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
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


_STORAGE_KEYS = ("storage", "run_storage", "event_log_storage", "schedule_storage")


def get_instance(data_dir: str | Path) -> dg.DagsterInstance:
    """The instance of ``dagster_home(data_dir)``. When its ``dagster.yaml`` leaves storage at
    Dagster's SQLite default, this process writes the event log through
    :class:`pipelines.event_storage.ReusingSqliteEventLogStorage` (same files and rows, connections
    reused: most of Dagster's per-event cost of a small night); a configured storage (PostgreSQL,
    ``pipelines/deploy/dagster.yaml``) is used as configured."""
    import yaml
    from dagster._core.instance.ref import InstanceRef

    home = dagster_home(data_dir)
    config_file = home / "dagster.yaml"
    config = yaml.safe_load(config_file.read_text(encoding="utf-8")) if config_file.exists() else None
    if isinstance(config, dict) and any(k in config for k in _STORAGE_KEYS):
        return dg.DagsterInstance.from_config(str(home))
    overrides = {"event_log_storage": {
        "module": "pipelines.event_storage", "class": "ReusingSqliteEventLogStorage",
        # Dagster's default SQLite layout (DagsterSqliteStorage): <home>/history/runs/
        "config": {"base_dir": str(home / "history" / "runs")},
    }}
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=overrides))


def _tree(pid: int) -> list:
    """The process and all its descendants that are alive now (psutil)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def stop_tree(pid: int, procs: list | None = None, *, grace: float = 20.0) -> None:
    """SIGTERM the process group of ``pid`` (and every known descendant, in case one started its
    own session), wait up to ``grace`` seconds, then SIGKILL whatever is left."""
    import psutil

    procs = list({p.pid: p for p in (procs or []) + _tree(pid)}.values())
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _gone, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_ui(data_dir: str | Path, *, host: str = "127.0.0.1", port: int = 3000) -> int:
    """Start dagster-webserver (and the daemon, for schedules and sensors) on the instance.

    ``dagster dev`` runs in its own process group. SIGTERM or SIGINT (Ctrl+C) to this process
    stops the whole tree — ``dagster dev``, the webserver, the daemon and the code servers — so
    the port is free again when the command returns (a service manager stopping the UI must not
    leave a webserver bound to the port)."""
    home = dagster_home(data_dir)
    env = dict(os.environ, DAGSTER_HOME=str(home), CREDIT_ETL_DATA_DIR=str(Path(data_dir).resolve()))
    print(f"Dagster 界面 / UI: http://{host}:{port}  (DAGSTER_HOME={home}; Ctrl+C 退出 / to stop)", flush=True)
    cmd = [sys.executable, "-m", "dagster", "dev", "-m", "pipelines.definitions", "-h", host, "-p", str(port)]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    seen: list = []  # descendants seen when stopping: they are re-parented once dagster dev exits
    stopped: list[float] = []

    def on_signal(signum, _frame):
        stopped.append(time.monotonic())
        seen.extend(_tree(proc.pid))
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if stopped and time.monotonic() - stopped[0] > 20:  # dagster dev ignored SIGTERM
                    code = -signal.SIGTERM
                    break
    finally:
        stop_tree(proc.pid, seen)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopped:
        print("Dagster 界面已停止 / UI stopped", flush=True)
        return 0
    return code
