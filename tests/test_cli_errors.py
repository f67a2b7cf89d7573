"""Bad input to `credit-etl` is refused with a Chinese message and the documented exit status,
never a Python traceback, and nothing is written. Each test runs the real command in a subprocess
against a real data directory (README "Exit codes": 2 bad usage)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path | None = None, umask: int | None = None, **env: str) -> subprocess.CompletedProcess:
    e = {**os.environ, "GX_ANALYTICS_ENABLED": "false", **env}
    for name in ("CREDIT_ETL_DATA_DIR", "DAGSTER_HOME", "CREDIT_ETL_HTTP_BASE"):
        e.pop(name, None)
    for name in [n for n in e if n.startswith("CREDIT_ETL_TOKEN_")]:  # no sample server here: no HTTP pull
        e.pop(name)
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd or REPO, capture_output=True,
                          text=True, timeout=900, env=e, preexec_fn=None if umask is None else (lambda: os.umask(umask)))


def refused(proc: subprocess.CompletedProcess, status: int = 2) -> str:
    """The command's stderr, once it is known to be a refusal with ``status`` and no traceback."""
    assert proc.returncode == status, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr and "Error:" not in proc.stderr, proc.stderr[-3000:]
    return proc.stderr


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- run --date: only days whose partition exists ----------------------------------------------

def test_day_problem_bounds_are_the_partitions():
    from assets.partitions import FIRST_DAY, daily_partitions, day_problem, today_cst

    yesterday = today_cst() - timedelta(days=1)
    assert daily_partitions.get_last_partition_key() == yesterday.isoformat()
    assert day_problem(yesterday) is None
    first = yesterday.fromisoformat(FIRST_DAY)
    assert day_problem(first) is None
    assert "早于分区起始日" in day_problem(first - timedelta(days=1))
    assert f"最近可运行的接收日是 {yesterday}" in day_problem(yesterday + timedelta(days=1))


def test_run_refuses_a_day_that_has_not_ended(tmp_path):
    """Today (China Standard Time) and a future day have no partition: a Chinese reason naming the
    latest runnable day, exit 2, no run started (nothing written in the data directory)."""
    from assets.partitions import today_cst

    data = tmp_path / "data"
    today = today_cst()
    for day in (today, today + timedelta(days=40)):
        err = refused(cli("--data-dir", str(data), "run", "--date", day.isoformat()))
        assert f"{day} 尚不能归集：最近可运行的接收日是 {today - timedelta(days=1)}" in err
        assert "DagsterUnknownPartitionError" not in err
    assert not data.exists()



# -- generate: arguments checked before anything is written ------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["--days", "0"], "argument --days: 应为正整数（至少为 1）"),
    (["--rows-per-day", "-3"], "argument --rows-per-day: 应为正整数（至少为 1）"),
    (["--days", "x"], "argument --days: 应为正整数（至少为 1）"),
    (["--defect-rate", "2"], "argument --defect-rate: 应为 0 到 1 之间的小数"),
    (["--defect-rate", "nan"], "argument --defect-rate: 应为 0 到 1 之间的小数"),
    (["--defect-rate", "-0.1"], "argument --defect-rate: 应为 0 到 1 之间的小数"),
])
def test_generate_refuses_bad_numbers(tmp_path, args, message):
    data = tmp_path / "data"
    err = refused(cli("--data-dir", str(data), "generate", "--start", "2026-10-01", *args))
    assert message in err and "ValueError" not in err
    assert not data.exists()


def test_ports_and_silence_days_are_checked_by_the_parser(tmp_path):
    data = tmp_path / "data"
    assert "端口应为 0 到 65535 之间的整数" in refused(cli("--data-dir", str(data), "dashboard", "--serve", "--port", "70000"))
    assert "应为非负整数" in refused(cli("--data-dir", str(data), "dashboard", "--silence-days", "-1"))
    assert not data.exists()


# -- template --out: an .xlsx file or an existing folder ---------------------------------------

def test_template_into_a_folder_writes_the_default_name_and_nothing_else(tmp_path):
    """--out naming a folder writes 行政处罚模板.xlsx in it (no IsADirectoryError, no stray
    ``.tmp.tmp`` beside the folder); a .csv or a suffix-less --out is refused, nothing written."""
    folder = tmp_path / "模板"
    folder.mkdir()
    ok = cli("template", "--feed", "行政处罚", "--out", str(folder))
    assert ok.returncode == 0, ok.stderr[-3000:]
    target = folder / "行政处罚模板.xlsx"
    assert f"模板已生成 / template written: {target}" in ok.stdout
    assert target.read_bytes()[:2] == b"PK"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["模板", "行政处罚模板.xlsx"]

    for name in ("x.csv", "noext"):
        err = refused(cli("template", "--feed", "行政处罚", "--out", str(tmp_path / name)))
        assert "--out 应为 .xlsx 文件或已有目录" in err
    blocker = tmp_path / "afile"
    blocker.write_text("")
    err = refused(cli("template", "--feed", "行政处罚", "--out", str(blocker / "a.xlsx")))
    assert f"无法写入 {blocker / 'a.xlsx'}：路径中有一段是已有的文件，不是目录" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["afile", "模板", "行政处罚模板.xlsx"]


def test_template_write_failure_leaves_no_temporary_file(tmp_path, monkeypatch, contracts):
    """The temporary file lives beside the target and is removed when the rename fails."""
    from assets.publish.templates import write_template

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_template(contracts["penalties"], tmp_path / "t.xlsx")
    assert list(tmp_path.iterdir()) == []

# -- a data directory without a warehouse ------------------------------------------------------

def test_reading_commands_on_a_folder_without_a_warehouse_create_nothing(tmp_path):
    """export run from the wrong folder (default ./data), share/dashboard/profile on a missing
    --data-dir: one Chinese message naming the data directory and what to do, exit 2, and no
    folder or empty credit.duckdb left behind (a later dashboard would draw it as "no data")."""
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    err = refused(cli("export", "--month", "2026-10", "--format", "csv", "--out", str(tmp_path / "e.csv"), cwd=wrong))
    assert f"仓库数据库不存在：数据目录 {wrong / 'data'} 中没有 warehouse/credit.duckdb" in err
    assert "--data-dir" in err and "credit-etl run --date" in err
    assert list(wrong.iterdir()) == [] and not (tmp_path / "e.csv").exists()

    missing = tmp_path / "missing"
    for args in (["share", "--day", "2026-10-02"], ["dashboard"], ["export", "--month", "2026-10"],
                 ["profile", "91500237MA5U0XXXX1", "--reason", "答复异议"]):
        err = refused(cli("--data-dir", str(missing), *args))
        assert err.count("仓库数据库不存在") == 1 and f"数据目录 {missing} 中没有" in err, (args, err)
        assert not missing.exists(), args


# -- a data directory with one night run -------------------------------------------------------

NIGHT = "2026-10-05"


@pytest.fixture(scope="module")
def night(tmp_path_factory) -> Path:
    """Two generated received days, the night of the first one run under umask 022."""
    data = tmp_path_factory.mktemp("night") / "data"
    gen = cli("--data-dir", str(data), "generate", "--start", NIGHT, "--days", "2", "--rows-per-day", "5", "--seed", "3")
    assert gen.returncode == 0, gen.stderr[-3000:]
    run = cli("--data-dir", str(data), "run", "--date", NIGHT, umask=0o022)
    assert run.returncode in (0, 3), run.stderr[-3000:]  # 3: the sample HTTP department has no token here
    return data


def test_share_refuses_a_day_no_night_was_run_for(night):
    """A full snapshot is the baseline a receiving platform replaces its copy with: a day without a
    night (long before, or the next day, whose files wait in the inbox) writes nothing, exit 2."""
    before = files_under(night / "reports")
    for day in ("2025-01-01", "2026-10-06"):
        err = refused(cli("--data-dir", str(night), "share", "--day", day))
        assert f"{day} 没有运行过夜间归集（数据目录 {night}）：最近一次已运行的夜间归集是 {NIGHT}" in err
        assert "未写出任何共享文件" in err
        assert not (night / "reports" / "share" / day).exists()
    assert files_under(night / "reports") == before
    ok = cli("--data-dir", str(night), "share", "--day", NIGHT)  # the night that ran: written
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert f"已写出 / written: {night / 'reports' / 'share' / NIGHT / 'penalties.csv'}" in ok.stdout


def test_dashboard_refuses_an_empty_warehouse(tmp_path):
    """A warehouse no night has filled (e.g. an empty file an older version's share left) is not
    drawn as a month of zeros: exit 2, no page written."""
    from warehouse.db import connect
    from warehouse.layout import DataDir

    data = tmp_path / "data"
    with connect(DataDir(data)):
        pass
    err = refused(cli("--data-dir", str(data), "dashboard"))
    assert f"数据目录 {data} 的仓库是空的（还没有任何一晚归集的结果）" in err
    assert not (data / "reports").exists()



def test_export_out_folder_suffix_and_format(night, tmp_path):
    """--out a folder: indicators_<month>.<format> in it; --out x.csv without --format: CSV; a
    suffix that contradicts --format, or another suffix, is refused with nothing written."""
    folder = tmp_path / "out"
    folder.mkdir()
    base = ["--data-dir", str(night), "export", "--month", "2026-10"]
    ok = cli(*base, "--out", str(folder))
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert (folder / "indicators_2026-10.xlsx").read_bytes()[:2] == b"PK"
    ok = cli(*base, "--out", str(folder), "--format", "csv")
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert (folder / "indicators_2026-10.csv").read_text(encoding="utf-8-sig").startswith("月份,部门代码,")
    ok = cli(*base, "--out", str(tmp_path / "by-suffix.csv"))
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert (tmp_path / "by-suffix.csv").read_text(encoding="utf-8-sig").startswith("月份,部门代码,")

    err = refused(cli(*base, "--out", str(tmp_path / "x.csv"), "--format", "xlsx"))
    assert "--format xlsx 与 --out 的扩展名 .csv 不一致" in err
    err = refused(cli(*base, "--out", str(tmp_path / "x.txt")))
    assert "--out 的扩展名应为 .xlsx 或 .csv" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["by-suffix.csv", "indicators_2026-10.csv",
                                                          "indicators_2026-10.xlsx", "out"]


# -- file modes: what people open follows the umask, unmasked data stays private ---------------

def _modes(root: Path, pattern: str) -> set[int]:
    return {p.stat().st_mode & 0o777 for p in root.glob(pattern) if p.is_file()}


def test_reports_follow_the_umask_and_raw_data_stays_private(night, tmp_path):
    """The night ran under umask 022: every report file (share, feedback, cross-check, dashboard,
    Data Docs, GE results) is 0644 for colleagues on the server; received files and staged or
    validated Parquet (unmasked personal data) stay 0600. export and template follow the umask of
    the command (027 → 0640)."""
    reports = night / "reports"
    for pattern in ("share/**/*.csv", "feedback/**/*.xlsx", "crosscheck/*.xlsx", "dashboard/*.html",
                    "data_docs/**/*.html", "gx/**/*.json"):
        assert _modes(reports, pattern) == {0o644}, pattern
    for pattern in ("landing/**/*", "staging/**/*.parquet", "validated/**/*.parquet", "inbox/**/*", "truth.csv"):
        assert _modes(night, pattern) == {0o600}, pattern

    for umask, mode in ((0o022, 0o644), (0o027, 0o640)):
        out = tmp_path / f"u{umask:o}"
        out.mkdir()
        assert cli("--data-dir", str(night), "export", "--month", "2026-10", "--out", str(out), umask=umask).returncode == 0
        assert cli("template", "--feed", "行政处罚", "--out", str(out), umask=umask).returncode == 0
        assert _modes(out, "*") == {mode} and len(list(out.iterdir())) == 2
