"""Dagster steps on Celery workers (dagster-celery): the executor, the worker app and the launcher.

Province mode runs many county × day partitions; one process per run is not enough, so the
steps of a run go to Celery workers over a Redis broker (``credit-etl province workers --count N``
starts N worker processes on a machine; more machines start more with the same settings).

Settings, all from the environment (never in code, run config, logs or files):

- ``CREDIT_ETL_CELERY_BROKER``: the broker URL, e.g. ``redis://:<password>@redis.intranet:6379/0``.
  The same Redis serves as the result backend (``CREDIT_ETL_CELERY_BACKEND`` to use another).
  The executor reads it through Dagster's ``{"env": ...}`` config, so the URL is resolved when a
  run starts and is not stored with the run; the workers read it when they start.
- ``CREDIT_ETL_CELERY_VISIBILITY_TIMEOUT`` (seconds, default 7200): see below.
- The Dagster instance (``DAGSTER_HOME`` with ``pipelines/deploy/dagster.province.yaml`` and its
  ``CREDIT_ETL_DAGSTER_PG_URL``) must be the same for the run's orchestrator and every worker:
  a worker loads the instance from the reference the task carries (with the ``env:`` names, not
  the values) and writes the step's events into the same PostgreSQL.

**A killed worker's step runs again** (choice and why). Dagster's run retries re-execute a whole
run, and only after the run has failed; but when a Celery worker dies mid-step, the run does not
fail: the orchestrator waits for a result that never comes. So the retry must come from Celery:

- ``task_acks_late``: a step's task message is acknowledged only after the step finished, so
  a message whose worker died is still owned by the broker;
- ``task_reject_on_worker_lost``: when the pool process executing the step dies (SIGKILL, the
  OOM killer), the worker puts the message back at once and a worker runs the step again;
- when the whole worker node dies (machine lost, SIGKILL of the worker and its pool), nobody is
  left to reject the message: Redis hands an unacknowledged message to another worker after the
  ``visibility_timeout``. It must be longer than the longest step (a live step past it would be
  handed out twice); the default is 2 hours, the tests shorten it.

A re-run step is safe because every step replaces exactly its own partition (county × day) in
one commit: a step killed before its commit left the previous state, one killed after it is
replaced by the identical result. Dagster's run retries (``run_retries`` in the instance) stay on
for what Celery cannot see: an orchestrator that dies.

A step that kills its worker every time is handed out again and again (each delivery shows in
the workers' logs); run monitoring fails its run after ``max_runtime_seconds`` and an officer
must look.

Orchestrators: each run's orchestrator is its own process (the daemon's run launcher, or
``dagster job execute``); two ``dg.execute_job`` calls of Celery runs in threads of one process
were seen to hang before the runs started, so the tests and the benchmark never do that.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import dagster as dg
from dagster_celery import celery_executor
from dagster_celery.config import DEFAULT_CONFIG
from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

BROKER_ENV = "CREDIT_ETL_CELERY_BROKER"
BACKEND_ENV = "CREDIT_ETL_CELERY_BACKEND"
VISIBILITY_ENV = "CREDIT_ETL_CELERY_VISIBILITY_TIMEOUT"
QUEUE = "dagster"  # dagster-celery's queue (steps may pick another with the dagster-celery/queue tag)
WORKER_PREFIX = "credit-etl-worker"


def celery_settings() -> dict:
    """Celery app settings shared by the executor (the publishing side) and the workers."""
    visibility = int(os.environ.get(VISIBILITY_ENV) or 7200)
    return {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # one step at a time per worker process: a prefetched step would wait behind a long one
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": {**DEFAULT_CONFIG["broker_transport_options"],
                                     "visibility_timeout": visibility},
        "result_backend_transport_options": {"visibility_timeout": visibility},
        "broker_connection_retry_on_startup": True,
        # results are read by the orchestrator once; a day is plenty for a long run
        "result_expires": 86400,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
    }


def _backend_env() -> str:
    return BACKEND_ENV if os.environ.get(BACKEND_ENV) else BROKER_ENV


# The executor of province jobs. Broker and backend are ``{"env": ...}`` references: resolved
# when the run starts, never written into the run's stored config.
province_celery_executor = celery_executor.configured(
    {
        "broker": {"env": BROKER_ENV},
        "backend": {"env": _backend_env()},
        "config_source": celery_settings(),
    },
    name="celery",
)


def make_worker_app():
    """The Celery app the workers run (``celery -A pipelines.workers:app worker``): dagster-celery's
    queues and task, with the settings above and the broker from the environment."""
    broker = os.environ.get(BROKER_ENV)
    backend = os.environ.get(BACKEND_ENV) or broker
    executor = CeleryExecutor.for_cli(broker=broker, backend=backend, config_source=celery_settings())
    worker_app = make_app(executor.app_args())
    create_task(worker_app)
    return worker_app


app = make_worker_app()


# --- the county nightly job on Celery: the machinery's proof on a job that exists -------------

def nightly_collection_on_celery() -> dg.JobDefinition:
    """The county ``nightly_collection`` job with its steps on Celery workers (reconstructable: a
    worker imports this function). The county office itself keeps the in-process job (one night
    fits one process); this one exists to prove and measure the province machinery on a real job,
    and for an office whose nights outgrow one process."""
    from pipelines.definitions import build_definitions
    from pipelines.jobs import NIGHTLY_GROUPS

    base = build_definitions()
    job = dg.define_asset_job(
        name="nightly_collection_on_celery",
        selection=dg.AssetSelection.groups(*NIGHTLY_GROUPS),
        partitions_def=base.resolve_job_def("nightly_collection").partitions_def,
        executor_def=province_celery_executor,
    )
    defs = dg.Definitions(assets=base.assets, asset_checks=base.asset_checks, jobs=[job],
                          resources=base.resources)
    return defs.resolve_job_def(job.name)


# --- the province job on Celery ---------------------------------------------------------------

def _province_celery_job() -> dg.UnresolvedAssetJobDefinition:
    from assets.province.assets import province_partitions

    return dg.define_asset_job(
        "province_job_celery",
        selection=dg.AssetSelection.groups("province"),
        partitions_def=province_partitions,
        executor_def=province_celery_executor,
        description="省级模式（Celery 工作进程执行）：某县某接收日的推送批次入湖并计算县级指标 / "
                    "province_job with its steps on the Celery workers",
    )


province_celery_job = _province_celery_job()


def get_province_celery_job() -> dg.JobDefinition:
    """``province_job_celery`` with its resources bound, for ``dg.reconstructable``: the
    orchestrator and every worker find the job again by this module path."""
    from pipelines.province import defs

    return defs.resolve_job_def("province_job_celery")


# --- the worker launcher ---------------------------------------------------------------------

def worker_command(index: int, *, loglevel: str = "INFO") -> list[str]:
    """One Celery worker node: a main process and one pool process that executes steps
    (prefork, so a dying step process is noticed and its step re-queued)."""
    return [
        sys.executable, "-m", "celery", "-A", "pipelines.workers:app", "worker",
        "--pool=prefork", "--concurrency=1", f"--hostname={WORKER_PREFIX}-{index}@%h",
        f"--queues={QUEUE}", "--without-gossip", "--without-mingle", f"--loglevel={loglevel}",
    ]


def start_workers(count: int, *, env: dict | None = None, log_dir: str | Path | None = None,
                  first: int = 1) -> list[subprocess.Popen]:
    """Start ``count`` worker nodes, each in its own session (process group), so that one node can
    be stopped (or killed) as a whole without touching the others or the caller."""
    if count < 1:
        raise ValueError("count must be at least 1")
    env = dict(os.environ if env is None else env)
    if not env.get(BROKER_ENV):
        raise RuntimeError(f"未设置 {BROKER_ENV}（Celery 代理地址，例如 redis://127.0.0.1:6379/0）")
    env.setdefault("PYTHONUNBUFFERED", "1")
    procs = []
    for i in range(first, first + count):
        out = None
        if log_dir is not None:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            out = open(Path(log_dir) / f"worker-{i}.log", "ab")
        procs.append(subprocess.Popen(worker_command(i), env=env, stdout=out or subprocess.DEVNULL,
                                      stderr=subprocess.STDOUT, start_new_session=True))
        if out is not None:
            out.close()
    return procs


def wait_for_workers(count: int, timeout: float = 120.0) -> list[str]:
    """Names of the workers that answer a Celery ping on the broker, once ``count`` do."""
    probe = make_worker_app()
    deadline = time.monotonic() + timeout
    names: list[str] = []
    while time.monotonic() < deadline:
        replies = probe.control.ping(timeout=1.0) or []
        names = sorted(name for reply in replies for name in reply)
        if len(names) >= count:
            return names
        time.sleep(0.5)
    raise TimeoutError(f"only {len(names)} of {count} Celery workers answered within {timeout:.0f} s")


def stop_workers(procs: list[subprocess.Popen], *, grace: float = 20.0) -> None:
    """Stop every worker node's whole process tree (SIGTERM: Celery's warm shutdown, the step
    in progress finishes; then SIGKILL after ``grace`` seconds)."""
    from pipelines.instance import _tree, stop_tree

    trees = {p.pid: _tree(p.pid) for p in procs}
    for p in procs:
        stop_tree(p.pid, trees[p.pid], grace=grace)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def run_workers(count: int, *, log_dir: str | Path | None = None,
                out: Callable[[str], None] = print) -> int:
    """``credit-etl province workers --count N``: start N worker nodes and keep them running
    (a node that exits is started again after a pause); SIGTERM or SIGINT stops all their
    process trees and returns 0."""
    stopping = {"signal": None}

    def _stop(signum, _frame):
        stopping["signal"] = signum

    old = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    procs = start_workers(count, log_dir=log_dir)
    out(f"已启动 {count} 个 Celery 工作进程（队列 {QUEUE}）：" + ", ".join(str(p.pid) for p in procs))
    try:
        while stopping["signal"] is None:
            for i, p in enumerate(procs):
                if p.poll() is not None and stopping["signal"] is None:
                    out(f"工作进程 {i + 1}（pid {p.pid}）已退出（代码 {p.returncode}），5 秒后重新启动")
                    time.sleep(5)
                    procs[i] = start_workers(1, log_dir=log_dir, first=i + 1)[0]
            time.sleep(0.5)
    finally:
        stop_workers(procs)
        for s, h in old.items():
            signal.signal(s, h)
    out("Celery 工作进程已全部停止")
    return 0
