"""Data Docs are built incrementally: unchanged suites are not re-saved, a re-run day replaces its
results, old results are pruned, and an empty night does not start Great Expectations."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from validate_helpers import GOOD_PENALTY, staged

pytestmark = pytest.mark.filterwarnings("ignore")


def _result(contract, day: str):
    from great_expectations.core.run_identifier import RunIdentifier

    from assets.validate.suites import run_suite

    res, _ = run_suite(contract, staged(contract, [dict(GOOD_PENALTY, decision_no="N1")]), result_format="SUMMARY")
    res.meta["run_id"] = RunIdentifier(run_name=day, run_time=datetime.now(timezone.utc))
    return res


def test_incremental_suites_results_and_retention(tmp_path, contracts):
    from assets.validate import docs_state
    from assets.validate.suites import build_data_docs

    pen = {"penalties": contracts["penalties"]}
    index = build_data_docs(tmp_path, pen, _result(pen["penalties"], "2026-01-05"))
    suite_json = tmp_path / "reports" / "gx" / "expectations" / "credit_penalties.json"
    first = suite_json.stat().st_mtime_ns
    page = next((index.parent / "validations" / "credit_penalties" / "2026-01-05").rglob("*.html"))

    build_data_docs(tmp_path, pen, _result(pen["penalties"], "2026-01-06"))
    assert suite_json.stat().st_mtime_ns == first  # unchanged compiled suite: not stored again
    html = index.read_text(encoding="utf-8")
    assert "2026-01-05" in html and "2026-01-06" in html
    state = docs_state.load(tmp_path / "reports" / "gx")
    assert len(state["results"]) == 2 and "credit_penalties" in state["suites"]

    # 2026-04-01 is more than RETENTION_DAYS after 2026-01-05/06: both go, with their pages
    build_data_docs(tmp_path, pen, _result(pen["penalties"], "2026-04-01"))
    html = index.read_text(encoding="utf-8")
    assert "2026-04-01" in html and "2026-01-05" not in html and "2026-01-06" not in html
    assert not page.exists()
    kept = list((tmp_path / "reports" / "gx" / "uncommitted" / "validations").rglob("*.json"))
    assert [p.parts[-3] for p in kept] == ["2026-04-01"]


def test_empty_night_skips_great_expectations(tmp_path, contracts):
    from assets.validate.suites import build_data_docs

    pen = {"penalties": contracts["penalties"]}
    build_data_docs(tmp_path, pen)
    code = (
        "import sys; from contracts import load_contracts; import assets.validate as av;"
        f"i = av.build_data_docs({str(tmp_path)!r}, {{'penalties': load_contracts()['penalties']}}, received='2026-10-03');"
        "print(i); print('great_expectations' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    assert out[-2].endswith("index.html") and out[-1] == "False"


def test_results_stored_before_masking_are_masked_by_the_next_full_build(tmp_path, contracts):
    """A site written by an older version kept full ID numbers in reports/gx: the first build of
    this version (its fingerprint differs, so every page is rendered again) masks them first."""
    import json

    from assets.validate import docs_state
    from assets.validate.suites import build_data_docs
    from warehouse.masking import find_unmasked, mask

    pen = {"penalties": contracts["penalties"]}
    rid = "500237198805170011"  # plausible, wrong check digit: legal_rep_id_no.ric fails on it
    from great_expectations.core.run_identifier import RunIdentifier

    from assets.validate.suites import run_suite

    res, _ = run_suite(pen["penalties"], staged(pen["penalties"], [dict(GOOD_PENALTY, decision_no="N1",
                       legal_rep_id_type="身份证", legal_rep_id_no=rid)]), result_format="SUMMARY")
    res.meta["run_id"] = RunIdentifier(run_name="2026-01-05", run_time=datetime.now(timezone.utc))
    index = build_data_docs(tmp_path, pen, res)
    stored = next((tmp_path / "reports" / "gx" / "uncommitted" / "validations").rglob("*.json"))
    masked = mask(rid, "id")
    assert masked in stored.read_text(encoding="utf-8") and rid not in stored.read_text(encoding="utf-8")

    # simulate the older site: the raw value back in the stored JSON, an older fingerprint
    stored.write_text(stored.read_text(encoding="utf-8").replace(masked, rid), encoding="utf-8")
    state = docs_state.load(tmp_path / "reports" / "gx")
    state["fingerprint"] = "written-by-an-older-version"
    docs_state.save(tmp_path / "reports" / "gx", state)
    build_data_docs(tmp_path, pen, _result(pen["penalties"], "2026-01-06"))
    text = stored.read_text(encoding="utf-8")
    assert rid not in text and masked in text
    json.loads(text)
    for page in index.parent.rglob("*.html"):
        assert find_unmasked(page.read_text(encoding="utf-8")) == [], page
