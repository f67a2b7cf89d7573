"""Constants and helpers shared by the dashboard tests (imported by module name, like
tests/ingest/ingest_helpers.py)."""

from __future__ import annotations

import os
import shutil
from datetime import date, timedelta
from pathlib import Path

START = date(2026, 10, 13)  # Tuesday
DAYS = 4  # to Friday (the weekly rhythm); few nights keep the test short
LAST_DAY = START + timedelta(days=DAYS - 1)
MONTH = "2026-10"
SILENT_DEPT = "gas"
SILENCE_DAYS = 2  # the nights' CREDIT_ETL_SILENCE_DAYS
TOKEN = "dashboard-test-token"
REPO = Path(__file__).resolve().parents[2]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


CHROMIUM = chromium_path()


def artifact_dir() -> Path:
    """Where browser tests leave screenshots ($CREDIT_ETL_TEST_ARTIFACTS, else tmp/test-artifacts)."""
    d = Path(os.environ.get("CREDIT_ETL_TEST_ARTIFACTS") or REPO / "tmp" / "test-artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d
