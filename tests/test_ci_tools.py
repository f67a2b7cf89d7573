"""In CI, every tool and server the tests look through is present, so no test there skips for want
of one (elsewhere those tests skip with a reason, e.g. on a laptop without LibreOffice).

``.ci/run`` installs the tools and starts the servers, and exports ``CI``; this test is what turns
a failed install or a server that did not start into a red build instead of quietly skipped tests.
Skips that stay legitimate in CI: the shared real-world vectors (``../shared`` is not in a clone)
and the disk-full test where the machine refuses to mount a tmpfs (a property of the machine, not
something ``.ci/run`` installs)."""

from __future__ import annotations

import os
import shutil

import pytest

from assets.dashboard.pdf import find_chromium
from office import SOFFICE

pytestmark = pytest.mark.skipif(not os.environ.get("CI"), reason="outside CI, tests skip with a reason where a tool is absent")


def test_ci_has_every_tool_the_tests_use():
    missing = [name for name, ok in [
        ("chromium (browser tests)", find_chromium() is not None),
        ("soffice (workbooks printed)", SOFFICE is not None),
        ("pdftotext/pdfinfo (PDFs read back)", bool(shutil.which("pdftotext") and shutil.which("pdfinfo"))),
        ("strace (the province run's connections)", shutil.which("strace") is not None),
        ("PostgreSQL ($CREDIT_ETL_TEST_PG_URL)", bool(os.environ.get("CREDIT_ETL_TEST_PG_URL"))),
        ("Redis ($CREDIT_ETL_TEST_REDIS_URL)", bool(os.environ.get("CREDIT_ETL_TEST_REDIS_URL"))),
    ] if not ok]
    assert not missing, f".ci/run did not provide: {', '.join(missing)}"


def test_playwright_is_installed():
    import playwright.sync_api  # noqa: F401  (the browser fixture would otherwise skip)
