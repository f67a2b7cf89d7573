"""Leftover temporary files of a writer that died, removed at the next night's start.

Every temporary file the pipeline writes sits beside its target and carries the writer's pid:
``.<name>.<pid>-<random>.tmp`` (:func:`warehouse.files.atomic_path`) or ``.<name>.<pid>.tmp``
(the load stage's Parquet parts). A temporary file whose writer is no longer running is a crash's
leftover and is removed; one of a live process (an export running now) is left alone. Temporary
files without a pid (older layouts, GE's own) are removed when older than one hour.

The inbox is never touched (it belongs to the departments; their partial uploads are skipped by
the scan), nor is Dagster's ``dagster_home``. DuckDB's spill directory ``credit.duckdb.tmp`` is emptied (DuckDB recreates it).
Called under the night lock by :mod:`pipelines.runguard`.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from warehouse.layout import DataDir

_PID = re.compile(r"\.(\d+)(?:-[^.]*)?\.tmp$")
ORPHAN_AGE_SECONDS = 3600


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def stale_temp_files(data_dir: DataDir) -> list[Path]:
    out: list[Path] = []
    root = data_dir.root
    if not root.is_dir():
        return out
    skip = {data_dir.inbox.resolve(), (root / "dagster_home").resolve()}  # departments' and Dagster's own
    now = time.time()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if (here / d).resolve() not in skip and not (here / d).is_symlink()]
        for name in filenames:
            if not name.endswith(".tmp"):
                continue
            path = here / name
            m = _PID.search(name)
            if m and name.startswith("."):
                if not _alive(int(m.group(1))):
                    out.append(path)
            else:
                try:
                    if now - path.lstat().st_mtime > ORPHAN_AGE_SECONDS:
                        out.append(path)
                except OSError:
                    pass
    return sorted(out)


def clean_stale_temp_files(data_dir: DataDir) -> list[str]:
    """Remove crash leftovers; returns their paths relative to the data directory."""
    removed = []
    for path in stale_temp_files(data_dir):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path.relative_to(data_dir.root).as_posix())
    spill = data_dir.warehouse / (data_dir.db_path.name + ".tmp")
    if spill.is_dir() and any(spill.iterdir()):
        shutil.rmtree(spill, ignore_errors=True)
        removed.append(spill.relative_to(data_dir.root).as_posix() + "/")
    return removed
