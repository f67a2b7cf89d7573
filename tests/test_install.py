"""An office installs credit-etl (not editable) into a fresh virtual environment, describes its
own county with ``credit-etl init``, receives files, runs a night and exports, and the installed
package's files stay exactly as installed.

The install resolves the dependencies from the package index through pip's cache (warm after
``.ci/run``'s own install), so it takes a minute or two; it runs in CI like every other test.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from contracts import CONTRACTS_DIR, load_contracts
from validated_builder import penalty

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("contracts", "assets", "warehouse", "pipelines", "bench")


def _source_copy(dest: Path) -> Path:
    """The repository's files without virtualenvs, data or build output (a clean checkout)."""
    ignore = shutil.ignore_patterns(".venv", ".git", "tmp", "data", "build", "*.egg-info", "__pycache__", ".pytest_cache")
    shutil.copytree(REPO, dest, ignore=ignore)
    return dest


def _package_hashes(site: Path) -> dict[str, str]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((site / pkg).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                out[str(path.relative_to(site))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _penalty_csv(path: Path, rows: list[dict]) -> None:
    contract = load_contracts(CONTRACTS_DIR)["penalties"]
    labels = {f.name: f.label for f in contract.fields}
    names = [n for n in labels if any(n in r for r in rows)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([labels[n] for n in names])
        for r in rows:
            writer.writerow([r.get(n, "") for n in names])


def test_a_fresh_install_serves_another_county_without_touching_the_package(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    src = _source_copy(tmp_path / "src")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_ETL_", "DAGSTER_", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    out = subprocess.run([str(py), "-m", "pip", "install", "--quiet", str(src)], env=env,
                         capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    assert (site / "contracts" / "penalties.yaml").exists() and (site / "pipelines" / "deploy" / "dagster.yaml").exists()
    before = _package_hashes(site)
    cli = venv / "bin" / "credit-etl"
    work = tmp_path / "office"
    work.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(cli), *args], cwd=work, env=env, capture_output=True, text=True, timeout=900)

    # another county, its two departments, its configuration outside the package
    r = run("init", "fuling-config", "--county", "500102", "--name", "涪陵区")
    assert r.returncode == 0, r.stderr
    cfg = work / "fuling-config"
    assert (cfg / "departments.yaml").exists() and (cfg / "dagster_home" / "dagster.yaml").exists()
    # the office started collecting in October: it says so in its settings (init wrote this month)
    settings = cfg / "settings.yaml"
    text = settings.read_text(encoding="utf-8")
    assert "first_partition_day:" in text
    settings.write_text(re.sub(r"(?m)^first_partition_day: .*$", "first_partition_day: 2026-10-01", text), encoding="utf-8")

    day = "2026-10-09"
    inbox = work / "data" / "inbox"
    from stdnum.cn import ric

    person = "50010219900307123" + ric.calc_check_digit("50010219900307123" + "0")  # takes 18 digits
    ok = dict(subject_id_no=person, display_end="2027-04-05")  # 一般: 3 to 12 months
    _penalty_csv(inbox / "scjgj" / "penalties" / day / "行政处罚.csv",
                 [penalty("涪市监罚〔2026〕1号", "2026-10-05", authority="涪陵区市场监督管理局", **ok),
                  penalty("涪市监罚〔2026〕2号", "2026-10-06", row=3, **dict(ok, subject_id_no="123"))])  # one bad ID
    _penalty_csv(inbox / "swj" / "penalties" / day / "税务处罚.csv",
                 [penalty("涪税罚〔2026〕7号", "2026-10-08", authority="国家税务总局涪陵区税务局", **ok)])

    env["CREDIT_ETL_CONFIG"] = str(cfg)  # the environment variable instead of --config
    r = run("--data-dir", "data", "run", "--date", day)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert "telemetry:\n  enabled: false" in (work / "data" / "dagster_home" / "dagster.yaml").read_text(encoding="utf-8")
    assert f"{day} 夜间归集成功" in r.stdout and "行政处罚（penalties）: 接收 3 行，入库 2 行，隔离 1 行" in r.stdout

    del env["CREDIT_ETL_CONFIG"]
    r = run("--config", str(cfg), "--data-dir", "data", "export", "--month", "2026-10", "--format", "csv")
    assert r.returncode == 0, r.stderr[-3000:]
    export = (work / "data" / "reports" / "exports" / "indicators_2026-10.csv").read_text(encoding="utf-8-sig")
    assert "涪陵区市场监督管理局" in export and "国家税务总局涪陵区税务局" in export
    assert "巫山县" not in export  # nothing of the packaged sample county

    # the installed package is exactly as pip left it
    assert _package_hashes(site) == before
