"""After ``credit-etl demo`` (and ``credit-etl dashboard --pdf``), nothing under DATA_DIR/reports/
shows a natural person's full resident ID number, phone number or bank account.

Every file is read as people and programs would read it: HTML/JSON/CSV/Markdown/YAML/JS as text,
XLSX cell by cell (openpyxl), PDF through pdftotext. Two nets: ``warehouse.masking.find_unmasked``
(the policy's own patterns) and a stricter one that takes any 18-character run of 17 digits and a
check character and keeps it when it is a valid GB 11643 number (python-stdnum: check character and a
real birth date), whatever surrounds it. Two things that are not personal are left out:
all-digit unified social credit codes of organisations that pass the GB 32100 check and do not
read as area code + birth date (the policy's card pattern also matches them) and the digits of decimal numbers (``6.923076923076925``
in a JSON statistic).

Each area is checked on its own, so a leak names the area that produced it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from stdnum.cn import ric, uscc

from dashboard_helpers import REPO
from assets.dashboard.pdf import find_chromium
from warehouse.masking import find_unmasked

TEXT_SUFFIXES = {".html", ".htm", ".json", ".csv", ".md", ".txt", ".yml", ".yaml", ".js", ".css", ".xml", ".svg"}
RIC_CANDIDATE = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
DECIMAL = re.compile(r"\d+\.\d+")
RIC_SHAPE = re.compile(r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]")


def _ric_like(number: str) -> bool:
    """GB 11643 check character right and a real birth date (area codes not looked up)."""
    number = number.upper()
    try:
        return number[-1] == ric.calc_check_digit(number) and ric.get_birth_date(number).year >= 1900
    except Exception:  # noqa: BLE001 - stdnum raises several kinds for an impossible date
        return False


def strict_rics(text: str) -> list[str]:
    return [m for m in RIC_CANDIDATE.findall(text) if _ric_like(m)]


# a code's registration authority + category (GB 32100), 17–19 digits as mistyped; no card scheme
# issues 17–19 digit numbers with these leads (UnionPay 62, Visa 4, Maestro 50/56–69, MasterCard
# 51–55 at 16 digits)
USCC_LEAD = re.compile(r"(?:1[1239]|5[123]|9[123])\d{15,17}")


def _organisation_code(number: str) -> bool:
    """An all-digit USCC of an organisation, not a person's number: passes GB 32100, or (a code
    mistyped, which a clerk is shown as received in a code field: warehouse.masking) has 17–19
    digits behind a registration authority and category code; and does not read as area code +
    birth date (1 in 31 mistyped ID numbers passes the USCC check too)."""
    number = unicodedata.normalize("NFKC", number)  # shown as received: full-width digits too
    return ((len(number) == 18 and uscc.is_valid(number) or USCC_LEAD.fullmatch(number) is not None)
            and not RIC_SHAPE.fullmatch(number))


def personal_numbers(text: str) -> list[str]:
    text = DECIMAL.sub(" ", text)
    hits = {h for h in find_unmasked(text) if not _organisation_code(h)}
    return sorted(hits | set(strict_rics(text)))


def file_text(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        try:
            return "\n".join("\t".join("" if v is None else str(v) for v in row)
                             for ws in wb.worksheets for row in ws.iter_rows(values_only=True))
        finally:
            wb.close()
    if suffix == ".pdf":
        return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    if suffix in TEXT_SUFFIXES or not suffix:
        return path.read_bytes().decode("utf-8", errors="replace")
    return ""  # images, fonts, icons: no text a person reads as data


def leaks(root: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        text = file_text(path)
        hits = personal_numbers(text)
        if hits:
            found[str(path.relative_to(root))] = hits[:5]
    return found


@pytest.fixture(scope="module")
def reports(demo_run) -> Path:
    assert demo_run.rc == 0, demo_run.stdout[-3000:]
    if shutil.which("pdftotext") and find_chromium():  # without them, test_the_bulletin_pdf_is_scanned skips
        out = subprocess.run([sys.executable, "-m", "pipelines.cli", "--data-dir", str(demo_run.root), "dashboard", "--pdf"],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
    return demo_run.root / "reports"


def test_the_scanner_finds_what_it_looks_for(tmp_path):
    """The nets catch a full ID (also glued to letters), a phone and a card; masked values pass."""
    (tmp_path / "a.html").write_text("<td>证件号码500237199001011231</td><td>13812345678</td>", encoding="utf-8")
    (tmp_path / "b.json").write_text('{"v": "ID500237199001011231x", "card": "6222021234567890123"}', encoding="utf-8")
    (tmp_path / "ok.json").write_text('{"uscc": "915002377517201562", "mistyped": "115002370000009176", "wide": "１１５００２３７７４３１３１６６９", "short": "９１５００２３７７２４５０８９５０", "pct": 6.923076923076925, "id": "500237********1234"}',
                                      encoding="utf-8")
    # a mistyped ID number (wrong check digit) that happens to pass the USCC check is still found
    (tmp_path / "d.html").write_text("<td>500237200109146361</td>", encoding="utf-8")
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["500237********1234", "138****5678", "110101199003077774"])
    wb.save(tmp_path / "c.xlsx")
    found = leaks(tmp_path)
    assert set(found) == {"a.html", "b.json", "c.xlsx", "d.html"}
    assert found["a.html"] == ["13812345678", "500237199001011231"]
    assert found["b.json"] == ["500237199001011231", "6222021234567890123"]  # the strict net: glued to letters
    assert found["c.xlsx"] == ["110101199003077774"]


def test_demo_prints_the_dashboard_path(demo_run):
    index = demo_run.root / "reports" / "dashboard" / "index.html"
    assert index.exists()
    assert str(index) in demo_run.stdout
    assert "质量看板" in demo_run.stdout


# third-party libraries the project ships with Data Docs (minified JS holds long numeric constants
# such as 9007199254740991): a copy byte-identical to the repository's file is not office data
SHIPPED_VENDOR = REPO / "assets" / "validate" / "datadocs_static" / "vendor"


def _shipped_copy(area: str, rel: str, path: Path) -> bool:
    prefix = "static/vendor/"
    if area != "data_docs" or not rel.startswith(prefix):
        return False
    source = SHIPPED_VENDOR / rel[len(prefix):]
    return source.is_file() and source.read_bytes() == path.read_bytes()


def _area(reports: Path, area: str) -> dict[str, list[str]]:
    if not (reports / area).exists():
        return {}
    return {f"{area}/{k}": v for k, v in leaks(reports / area).items()
            if not _shipped_copy(area, k, reports / area / k)}


def test_dashboard_shows_no_personal_data(reports):
    dashboard = reports / "dashboard"
    assert (dashboard / "index.html").exists() and any(dashboard.glob("bulletin_*.html"))
    assert _area(reports, "dashboard") == {}


def test_exports_show_no_personal_data(reports):
    assert any((reports / "exports").glob("*.xlsx"))
    assert _area(reports, "exports") == {}


def test_feedback_workbooks_show_no_personal_data(reports):
    assert any((reports / "feedback").rglob("*.xlsx"))
    found = _area(reports, "feedback")
    assert found == {}, f"feedback workbooks (reports/feedback) show personal data: {found}"


def test_data_docs_and_stored_results_show_no_personal_data(reports):
    found = {**_area(reports, "data_docs"), **_area(reports, "gx")}
    assert found == {}, f"Data Docs / stored GE results show full personal values: {dict(list(found.items())[:5])}"


def test_the_bulletin_pdf_is_scanned(reports):
    """The printed bulletin is among what the scan reads (as text, through pdftotext)."""
    if not (shutil.which("pdftotext") and find_chromium()):
        pytest.skip("no chromium or pdftotext: the bulletin PDF was not printed (.ci/run installs both)")
    pdfs = list(reports.rglob("*.pdf"))
    assert pdfs, "credit-etl dashboard --pdf wrote no PDF under reports/"
    assert all("信用" in file_text(p) for p in pdfs), "the PDF's text was not read"


def test_nothing_else_under_reports_leaks(reports):
    known = {"dashboard", "exports", "feedback", "data_docs", "gx"}
    others = [p.name for p in reports.iterdir() if p.name not in known]
    found = {}
    for name in others:
        found.update(_area(reports, name) if (reports / name).is_dir() else
                     ({name: h} if (h := personal_numbers(file_text(reports / name))) else {}))
    assert found == {}
