"""What a night does before its job starts, so that a run that died never blocks the next one.

A ``credit-etl run`` can be killed at any moment (kill -9, power cut, OOM killer, full disk).
The next run then finds, and this module handles:

1. **Another run still going?** Nights take an exclusive ``flock`` on ``DATA_DIR/locks/night.lock``.
   The kernel releases it when the holder dies, so a dead run never holds it. A live holder is
   waited for, saying who (pid, host, day, since when), at most ``$CREDIT_ETL_WAIT_SECONDS``
   (default 1800 s, ``credit-etl run --wait``); SIGTERM/SIGINT end the wait at once.
2. **Runs left STARTED by a dead process.** Every night tags its Dagster run with
   ``credit_etl/pid``, ``credit_etl/host`` and ``credit_etl/pid_start`` (the process start time,
   so a reused pid is not mistaken for the run). A STARTED/STARTING/CANCELING run of this host
   whose process is gone is marked FAILED with a Chinese message (visible in the UI's run history,
   tag ``credit_etl/recovered_by``) and its concurrency-pool slots (``duckdb_writer``,
   ``data_docs``...) are freed. Slots still held by a run that already finished are freed too.
3. **Pool slots held by a live run** of another launcher (the UI, the daemon): waited for, with the
   pool and the run named, under the same deadline, instead of Dagster's silent in-step wait.
4. **Temporary files of a dead writer** (``.<name>.<pid>-*.tmp`` of ``warehouse.files.atomic_path``,
   ``.<name>.<pid>.tmp`` of the load stage, DuckDB's spill directory): removed
   (:func:`warehouse.tempfiles.clean_stale_temp_files`).

Everything recovered is returned as Chinese lines that ``credit-etl run`` prints and the run
records in its tags.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from warehouse.layout import DataDir

WAIT_ENV = "CREDIT_ETL_WAIT_SECONDS"
DEFAULT_WAIT_SECONDS = 1800.0
POLL_SECONDS = 0.5

TAG_PID = "credit_etl/pid"
TAG_HOST = "credit_etl/host"
TAG_START = "credit_etl/pid_start"
TAG_RECOVERED = "credit_etl/recovered_by"


class WaitTimeout(Exception):
    """Gave up waiting; ``message_zh`` says for what."""

    def __init__(self, message_zh: str):
        self.message_zh = message_zh
        super().__init__(message_zh)


class Interrupted(Exception):
    """SIGTERM or SIGINT arrived while waiting."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"收到终止信号（{signal.Signals(signum).name}）")


def wait_seconds(value: float | None = None) -> float:
    if value is not None:
        return float(value)
    try:
        return float(os.environ.get(WAIT_ENV) or DEFAULT_WAIT_SECONDS)
    except ValueError:
        return DEFAULT_WAIT_SECONDS


def process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot, /proc), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] == "Z":  # a zombie is dead, it just has not been reaped
            return None
        return fields[19]
    except (OSError, ValueError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"
        return "?"


def alive(pid: int, start: str | None = None) -> bool:
    got = process_start(pid)
    if got is None:
        return False
    return start in (None, "", "?") or got in ("?", start)


def own_tags() -> dict[str, str]:
    pid = os.getpid()
    return {TAG_PID: str(pid), TAG_HOST: socket.gethostname(), TAG_START: process_start(pid) or ""}


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """While waiting, SIGTERM/SIGINT raise :class:`Interrupted` (restored afterwards)."""

    def handler(signum, frame):
        raise Interrupted(signum)

    old = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                old[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread: the caller's handlers stay
                pass
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _say(out: Callable[[str], None] | None, text: str) -> None:
    if out is not None:
        out(text)


@contextmanager
def night_lock(layout: DataDir, *, wait: float | None = None, day: str = "",
               out: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the data directory's night lock (see the module docstring, point 1)."""
    path = layout.root / "locks" / "night.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds(wait)
        told = False
        with signals_interrupt():
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                holder = _holder(fd)
                if not told:
                    _say(out, f"另一夜间归集正在运行（{holder}），本次（{day}）等待其结束后再开始……")
                    told = True
                if time.monotonic() >= deadline:
                    raise WaitTimeout(
                        f"等待 {wait_seconds(wait):g} 秒后，另一夜间归集（{holder}）仍在运行，本次（{day}）未开始；"
                        f"请稍后重试，或用 --wait 延长等待时间（环境变量 {WAIT_ENV}）"
                    )
                time.sleep(POLL_SECONDS)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "day": day,
                "since": datetime.now().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info, ensure_ascii=False).encode("utf-8"), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        return f"进程 {info.get('pid')}，主机 {info.get('host')}，归集日 {info.get('day')}，开始于 {info.get('since')}"
    except (OSError, ValueError):
        return "进程信息不可读"


@dataclass
class Recovery:
    """What the pre-flight found and fixed, as Chinese lines for the terminal and the run tags."""

    lines: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.lines.append(text)


def recover_stale_runs(instance, recovery: Recovery | None = None) -> Recovery:
    """Mark runs of dead ``credit-etl`` processes FAILED and free their pool slots (point 2)."""
    import dagster as dg
    from dagster._core.storage.dagster_run import FINISHED_STATUSES

    recovery = recovery or Recovery()
    host = socket.gethostname()
    active = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING]
    for rec in instance.get_run_records(filters=dg.RunsFilter(statuses=active)):
        run = rec.dagster_run
        tags = run.tags
        if tags.get(TAG_HOST) != host or not tags.get(TAG_PID, "").isdigit():
            continue  # not ours, or another machine's: Dagster's run monitoring decides
        pid = int(tags[TAG_PID])
        if alive(pid, tags.get(TAG_START)):
            continue
        msg = (f"运行 {run.run_id[:8]}（归集日 {tags.get('dagster/partition', '?')}）的进程 {pid} 已不存在"
               "（被终止、断电或内存不足），判定为中断；已标记失败并释放其并发名额，本次运行将重新处理该日")
        instance.add_run_tags(run.run_id, {TAG_RECOVERED: str(os.getpid())})
        instance.report_run_failed(run, msg)
        _free_slots(instance, run.run_id)
        recovery.add(msg)
    storage = instance.event_log_storage
    if getattr(storage, "supports_global_concurrency_limits", False):
        holders = storage.get_concurrency_run_ids()
        if holders:
            for rec in instance.get_run_records(filters=dg.RunsFilter(run_ids=list(holders), statuses=list(FINISHED_STATUSES))):
                if _free_slots(instance, rec.dagster_run.run_id):
                    recovery.add(f"已结束的运行 {rec.dagster_run.run_id[:8]} 仍占用并发名额，已释放")
    return recovery


def _free_slots(instance, run_id: str) -> bool:
    storage = instance.event_log_storage
    if not getattr(storage, "supports_global_concurrency_limits", False):
        return False
    if run_id not in storage.get_concurrency_run_ids():
        return False
    storage.free_concurrency_slots_for_run(run_id)
    return True


def busy_pools(instance, pools: list[str]) -> dict[str, set[str]]:
    """{pool: run ids holding one of its slots} for the pools whose every slot is taken."""
    storage = instance.event_log_storage
    if not getattr(storage, "supports_global_concurrency_limits", False):
        return {}
    out: dict[str, set[str]] = {}
    for pool in pools:
        try:
            info = storage.get_concurrency_info(pool)
        except Exception:  # pool not configured yet: no limit to wait for
            continue
        limit = info.slot_count
        claimed = [s for s in info.claimed_slots]
        if limit and len(claimed) >= limit:
            out[pool] = {s.run_id for s in claimed}
    return out


def wait_for_pools(instance, pools: list[str], *, wait: float | None = None,
                   out: Callable[[str], None] | None = None, recovery: Recovery | None = None) -> None:
    """Wait (saying for what) until the night's pools have a free slot (point 3)."""
    deadline = time.monotonic() + wait_seconds(wait)
    told: set[str] = set()
    with signals_interrupt():
        while True:
            busy = busy_pools(instance, pools)
            if not busy:
                return
            recover_stale_runs(instance, recovery)
            busy = busy_pools(instance, pools)
            if not busy:
                return
            what = "；".join(f"并发池 {p} 被运行 {', '.join(sorted(r[:8] for r in ids))} 占用" for p, ids in sorted(busy.items()))
            if what not in told:
                _say(out, f"等待中：{what}……")
                told.add(what)
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"等待 {wait_seconds(wait):g} 秒后仍未轮到本次运行（{what}），本次未开始；"
                                  f"请在界面中查看该运行，或用 --wait 延长等待时间（环境变量 {WAIT_ENV}）")
            time.sleep(POLL_SECONDS * 2)
