"""Data Docs in a real headless browser (Debian ``chromium``): the index lists every contract's
suite and the day's validation results, the pages render, a screenshot is a real picture.

The index's tables are filled by bootstrap-table from CDNs; without network the rows stay in the
page's data (still part of the DOM Chromium dumps), so the test asserts on the suite and result
pages too, whose content is static HTML.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from datetime import date
from pathlib import Path

import pytest

DAY = date(2026, 10, 1)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


CHROMIUM = _chromium()
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install -y chromium)"),
    pytest.mark.filterwarnings("ignore"),
]


def _browser(profile: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: CDNs fail fast
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _dom(profile: Path, page: Path) -> str:
    proc = _browser(profile, "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "<html" in proc.stdout.lower(), proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory, contracts, registry):
    from assets.ingest import HttpSettings, ingest_day
    from assets.validate import build_data_docs, validate_day
    from pipelines.sample_feeds import generate
    from warehouse.layout import DataDir

    root = tmp_path_factory.mktemp("docs_browser")
    generate(root, start=DAY, days=1, rows_per_day=8, seed=3, contracts=contracts, registry=registry)
    ingest_day(DataDir(root), DAY, contracts, registry, http=HttpSettings(enabled=False))
    summary = validate_day(root, DAY, contracts)
    assert summary.received > 0
    index = build_data_docs(root, contracts, received=DAY)
    fed = sorted(f for f, s in summary.feeds.items() if s.received)
    return root, index, fed


def test_index_lists_every_suite_and_the_days_results(site, contracts, tmp_path):
    from assets.validate.suites import suite_name

    root, index, fed = site
    dom = _dom(tmp_path / "profile", index)
    for feed in contracts:
        assert suite_name(feed) in dom, feed
        assert f"expectations/{suite_name(feed)}.html" in dom, feed
    # one validation result per feed received that day, filed under the day's run name
    assert fed
    for feed in fed:
        assert re.search(rf"validations/{suite_name(feed)}/{DAY.isoformat()}/", dom), feed
    assert DAY.isoformat() in dom


def test_suite_and_result_pages_render(site, contracts, tmp_path):
    from assets.validate.suites import suite_name

    root, index, fed = site
    docs = index.parent
    feed = fed[0]
    suite_dom = _dom(tmp_path / "p1", docs / "expectations" / f"{suite_name(feed)}.html")
    assert suite_name(feed) in suite_dom
    assert "<table" in suite_dom or "<li" in suite_dom
    pages = sorted((docs / "validations" / suite_name(feed) / DAY.isoformat()).rglob("*.html"))
    assert len(pages) == 1, pages
    result_dom = _dom(tmp_path / "p2", pages[0])
    assert suite_name(feed) in result_dom
    assert DAY.isoformat() in result_dom
    assert re.search(r"Evaluated Expectations|Statistics|Overview", result_dom)


def test_screenshot_is_a_real_png(site, tmp_path):
    _root, index, _fed = site
    png = tmp_path / "index.png"
    proc = _browser(tmp_path / "profile", f"--screenshot={png}", "--window-size=1280,900", index.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 900)
    assert len(data) > 10_000  # a blank page compresses to a few hundred bytes


def test_pages_use_the_sites_own_logo_not_a_hosted_one(site):
    """Opening a page must not call GE's public bucket with the data context id."""
    _root, index, _fed = site
    pages = list(index.parent.rglob("*.html"))
    assert (index.parent / "static" / "images" / "logo-long.png").exists()
    assert pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "great-expectations-web-assets" not in text, page
        assert "dataContextId" not in text, page
