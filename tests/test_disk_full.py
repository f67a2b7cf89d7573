"""A full disk on a real small tmpfs: the night stops with a Chinese message naming the data
directory and the space needed, leaves no 0-byte or half file, and the next night after space is
freed succeeds unattended. Needs root (mount); skips otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from pipelines.samples.feeds import generate

ROOT = Path(__file__).resolve().parents[1]
DAY = date(2026, 10, 5)


@pytest.fixture
def tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _run(data: Path, **env):
    e = {**os.environ, "GX_ANALYTICS_ENABLED": "false", **env}
    e.pop("DAGSTER_HOME", None)
    e.pop("CREDIT_ETL_HTTP_BASE", None)
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "--data-dir", str(data), "run", "--date", DAY.isoformat()],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, env=e)


def _empty_or_broken_files(root: Path) -> list[str]:
    bad = []
    for p in root.rglob("*"):
        if not p.is_file() or p.is_relative_to(root / "inbox"):
            continue
        if p.suffix in (".json", ".parquet", ".xlsx") and p.stat().st_size == 0:
            bad.append(str(p))
        elif p.suffix == ".json" and "gx" in p.parts:
            try:
                json.loads(p.read_bytes())
            except ValueError:
                bad.append(str(p))
    return bad


def test_full_disk_then_recovery(tmpfs, tmp_path):
    data = tmpfs / "data"
    generate(data, start=DAY, days=1, rows_per_day=4, seed=5)

    # 1. before starting: not enough room for the night's floor → refused with the numbers
    proc = _run(data, CREDIT_ETL_MIN_FREE_MB="100")
    assert proc.returncode == 74, proc.stderr[-3000:]
    assert f"数据目录 {data.resolve()}" in proc.stderr and "约需 100 MB" in proc.stderr and "Traceback" not in proc.stderr

    # 2. the disk fills up in the middle of the night
    filler = tmpfs / "filler.bin"
    free = shutil.disk_usage(tmpfs).free
    with open(filler, "wb") as fh:
        fh.truncate(0)
        fh.write(b"\0" * max(0, free - 3 * 1024 * 1024))  # tmpfs allocates written pages
    proc = _run(data, CREDIT_ETL_MIN_FREE_MB="1")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "磁盘空间不足" in out and f"数据目录 {data.resolve()}" in out, out[-3000:]
    assert "Traceback" not in out and "disk I/O error" not in out
    assert _empty_or_broken_files(data) == []

    # 3. space freed: the next night succeeds unattended
    filler.unlink()
    proc = _run(data, CREDIT_ETL_MIN_FREE_MB="1")
    # 3: the night ran but reports a configuration problem (the sample's HTTP department has no
    # token in this environment, so its pull is skipped; cli.EXIT_CONFIG); 1: a contract check failed
    assert proc.returncode in (0, 1, 3), proc.stderr[-3000:]
    assert "夜间归集成功" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    assert _empty_or_broken_files(data) == []
    assert not [p for p in data.rglob("*.tmp") if not p.is_relative_to(data / "inbox")]
