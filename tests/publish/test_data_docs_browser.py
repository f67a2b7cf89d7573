"""Data Docs as a data officer sees them, in a real headless Chromium (Debian's ``chromium`` driven
by Playwright) with every request to another host blocked and counted: the index lists its suites
and its results table shows rows after the scripts ran, a validation page is styled by the shipped
Bootstrap, shows rule ids with the contracts' Chinese messages and no full ID number; no request
leaves the machine and the console stays clean. The stored validation results hold no unmasked
personal value either.
"""

from __future__ import annotations

import struct
import zlib
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from validate.validate_helpers import GOOD_PENALTY, staged  # tests/ is on the path

DAY = date(2026, 10, 1)
# the browser is the session's shared one (tests/conftest.py ``browser``: skips without chromium)
pytestmark = [pytest.mark.filterwarnings("ignore")]

# Plausible resident IDs (real area code 500237, real birth dates) with a wrong check digit: the
# ``legal_rep_id_no.ric`` rule fails on them, so GE keeps them as "unexpected values".
BAD_IDS = ["500237198805170011", "500237197703020026", "500237199912310038"]


def _crafted_result(contract):
    """A penalties result whose failing values are full ID numbers (what leaked before)."""
    from great_expectations.core.run_identifier import RunIdentifier

    from assets.validate.suites import DOCS_RESULT_FORMAT, run_suite

    rows = [dict(GOOD_PENALTY, decision_no=f"巫市监罚〔2026〕{i}号", legal_rep_id_type="身份证", legal_rep_id_no=rid)
            for i, rid in enumerate(BAD_IDS, start=1)]
    result, _ = run_suite(contract, staged(contract, rows), result_format=DOCS_RESULT_FORMAT["result_format"])
    ric = next(er for er in result.results if er.expectation_config.meta["rule_id"] == "legal_rep_id_no.ric")
    assert ric.result["unexpected_count"] == len(BAD_IDS)  # the rule really fails on them
    assert set(ric.result["partial_unexpected_list"]) == set(BAD_IDS)  # and GE keeps them in full
    result.meta["run_id"] = RunIdentifier(run_name="2026-09-30", run_time=datetime.now(timezone.utc))
    return result


@pytest.fixture(scope="module")
def site(tmp_path_factory, contracts, registry):
    from assets.ingest import HttpSettings, ingest_day
    from assets.validate import build_data_docs, validate_day
    from pipelines.samples.feeds import generate
    from warehouse.layout import DataDir

    root = tmp_path_factory.mktemp("docs_browser")
    generate(root, start=DAY, days=1, rows_per_day=8, seed=3, contracts=contracts, registry=registry)
    ingest_day(DataDir(root), DAY, contracts, registry, http=HttpSettings(enabled=False))
    summary = validate_day(root, DAY, contracts)
    assert summary.received > 0
    index = build_data_docs(root, contracts, _crafted_result(contracts["penalties"]), received=DAY)
    fed = sorted(f for f, s in summary.feeds.items() if s.received)
    return root, index, fed


class Visit:
    """One page load with the network cut: every non-file request is aborted and recorded."""

    def __init__(self, browser, path: Path):
        self.external: list[str] = []
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else self.external.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route(lambda url: not url.startswith(("file:", "data:")), lambda route: route.abort())
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")
        # bootstrap-table fills its tables on document ready, wrapping each in div.bootstrap-table
        self.page.wait_for_function(
            """() => [...document.querySelectorAll('table[data-toggle="table"]')]
                      .every(t => t.closest('.bootstrap-table'))""")

    def visible_rows(self, selector: str) -> int:
        return self.page.evaluate(
            """sel => [...document.querySelectorAll(sel)].filter(r => {
                   const b = r.getBoundingClientRect(); return b.width > 0 && b.height > 0;
               }).length""",
            selector,
        )

    def text(self) -> str:
        return self.page.inner_text("body")


def _png_is_not_blank(data: bytes) -> bool:
    """Decode an 8-bit RGB(A) PNG (Chromium's screenshots) and require many distinct colours."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, ctype = struct.unpack(">IIBB", data[16:26])
    assert depth == 8 and ctype in (2, 6), (depth, ctype)
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    bpp = 4 if ctype == 6 else 3
    stride = width * bpp + 1
    # unfiltered bytes are enough to count distinct values per row: a blank page has ~1
    distinct = {raw[r * stride + 1:(r + 1) * stride] for r in range(0, height, 7)}
    return len(distinct) > 20


def test_index_lists_suites_and_shows_result_rows_offline(site, browser, contracts, tmp_path):
    from assets.validate.suites import suite_name

    _root, index, fed = site
    v = Visit(browser, index)
    try:
        # the validation results tab is open: bootstrap-table rendered one visible row per result
        results_rows = v.visible_rows(".ge-index-page-validation-results-table tbody tr")
        assert results_rows >= len(fed) + 1, results_rows  # the day's feeds + the crafted result
        body = v.text()
        for feed in fed:
            assert suite_name(feed) in body
        assert "校验结果" in body and "校验规则集" in body and "运行名（接收日）" in body
        # the suites tab lists every contract's suite once clicked
        v.page.click("text=校验规则集")
        # bootstrap-table pages the list (10 a page, with a Chinese pager): read it as a person does,
        # page by page through the visible 下一页 link, until every listed suite was seen
        table = ".ge-index-page-expectation_suites-table"
        v.page.locator(f"{table} tbody tr").first.wait_for(state="visible")
        info = v.page.locator(".fixed-table-pagination .pagination-info").filter(visible=True).first.inner_text()
        assert f"总共 {len(contracts)} 条记录" in info, info
        seen: list[str] = []
        for _ in range(len(contracts)):
            assert 0 < v.visible_rows(f"{table} tbody tr") <= 10
            seen += [t for t in v.page.locator(f"{table} tbody tr").all_inner_texts() if t not in seen]
            if len(seen) >= len(contracts):
                break
            first = v.page.locator(f"{table} tbody tr").first.inner_text()
            v.page.locator('a[aria-label="下一页"]').filter(visible=True).first.click()
            v.page.wait_for_function("([sel, was]) => document.querySelector(sel)?.innerText !== was",
                                     arg=[f"{table} tbody tr", first])
        assert len(seen) == len(contracts), seen
        suites_text = "\n".join(seen)
        for feed in contracts:
            assert suite_name(feed) in suites_text
        shot = tmp_path / "data_docs_index.png"
        v.page.screenshot(path=str(shot))
        assert _png_is_not_blank(shot.read_bytes())
        assert v.external == [], v.external
        assert v.errors == [], v.errors
    finally:
        v.page.close()


def test_validation_page_is_styled_chinese_and_masked(site, browser):
    from assets.validate.suites import suite_name

    _root, index, _fed = site
    pages = sorted((index.parent / "validations" / suite_name("penalties")).rglob("*.html"))
    crafted = [p for p in pages if "2026-09-30" in p.parts]
    assert crafted, pages
    v = Visit(browser, crafted[0])
    try:
        # Bootstrap's stylesheet applied: .badge gets its inline-block and padding from bootstrap.min.css
        style = v.page.evaluate(
            """() => { const b = document.querySelector('.badge');
                       const s = getComputedStyle(b); return [s.display, s.paddingLeft, s.borderRadius]; }""")
        assert style[0] == "inline-block" and style[1] not in ("0px", "") and style[2] != "0px", style
        nav = v.page.evaluate("() => getComputedStyle(document.querySelector('.navbar')).display")
        assert nav == "flex", nav
        body = v.text()
        assert "legal_rep_id_no.ric" in body
        assert contracts_message("penalties", "legal_rep_id_no.ric") in body
        assert "概览" in body and "统计" in body and "已执行规则" in body
        assert "expect_rows_to_pass_credit_rule(" not in body.replace(" ", "")
        from warehouse.masking import find_unmasked, mask

        html = crafted[0].read_text(encoding="utf-8")
        for rid in BAD_IDS:
            assert rid not in body and rid not in html
        assert mask(BAD_IDS[0], "id") in body  # the masked value is what the officer sees
        assert find_unmasked(body) == [] and find_unmasked(html) == []
        assert v.external == [], v.external
        assert v.errors == [], v.errors
    finally:
        v.page.close()


def contracts_message(feed: str, rule_id: str) -> str:
    from assets.validate.rules import compile_rules
    from contracts import load_contracts

    return next(r.message for r in compile_rules(load_contracts()[feed]) if r.id == rule_id)


def test_every_page_links_only_local_files(site):
    """No page names another host for anything it loads (scripts, styles, fonts, images)."""
    import re

    _root, index, _fed = site
    site_dir = index.parent
    pages = list(site_dir.rglob("*.html"))
    assert len(pages) > 6
    loads = re.compile(r"""(?:src|href)=["'](https?:)?//|url\(\s*['"]?https?:""")
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not loads.search(text), page
        assert "great-expectations-web-assets" not in text and "dataContextId" not in text, page
    for rel in ("static/vendor/jquery/jquery.min.js", "static/vendor/bootstrap/css/bootstrap.min.css",
                "static/vendor/fontawesome/webfonts/fa-solid-900.woff2", "static/vendor/jquery/LICENSE.txt",
                "static/images/logo-long.png"):
        assert (site_dir / rel).is_file(), rel


def test_stored_results_and_pages_hold_no_unmasked_personal_value(site):
    from warehouse.masking import find_unmasked

    root, index, _fed = site
    stored = list((root / "reports" / "gx").rglob("*.json"))
    assert any("validations" in p.parts for p in stored)
    crafted = [p for p in stored if "2026-09-30" in p.parts]
    assert crafted
    text = crafted[0].read_text(encoding="utf-8")
    assert "partial_unexpected_index_list" in text  # row positions are kept
    for rid in BAD_IDS:
        assert rid not in text
    for path in stored + list(index.parent.rglob("*.html")):
        assert find_unmasked(path.read_text(encoding="utf-8")) == [], path
