"""Shared pytest fixtures. Kept minimal on purpose: each stage's tests build their own real
files; fixtures that several stages need belong here."""

from __future__ import annotations

import os
import contextlib
import io
import shutil
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

# Partitions start at $CREDIT_ETL_FIRST_DAY (default: first day of last month); the tests use
# fixed days in 2026, so they pin the start before any Dagster definition is imported.
os.environ.setdefault("CREDIT_ETL_FIRST_DAY", "2026-01-01")

from contracts import CONTRACTS_DIR, load_contracts, load_registry


@pytest.fixture(scope="session")
def shipped_contracts_dir() -> Path:
    """The catalog as shipped (read-only: copy it before changing anything)."""
    return CONTRACTS_DIR


@pytest.fixture(scope="session")
def contracts():
    """The shipped catalog, loaded once (contracts are immutable)."""
    return load_contracts()


@pytest.fixture(scope="session")
def registry(contracts):
    return load_registry(contracts=contracts)


# The demo, once per session: test_demo_truth checks its figures against truth, the dashboard
# tests scan everything it wrote under reports/ for personal data.
DEMO_TODAY = date(2026, 11, 5)
DEMO_ROWS_PER_DAY = 4
DEMO_DAYS = 10  # a shortened month keeps the tests short; the export still covers October


@dataclass
class DemoRun:
    root: Path
    rc: int
    stdout: str


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> DemoRun:
    """``credit-etl demo`` (run_demo) in a fresh data dir, with what it printed."""
    from pipelines.demo import run_demo

    root = tmp_path_factory.mktemp("demo") / "data"
    buf = io.StringIO()
    t0 = time.monotonic()
    with contextlib.redirect_stdout(buf):
        rc = run_demo(root, today=DEMO_TODAY, rows_per_day=DEMO_ROWS_PER_DAY, days=DEMO_DAYS)
    print(f"run_demo took {time.monotonic() - t0:.1f} s")
    return DemoRun(root=root, rc=rc, stdout=buf.getvalue())


def chromium_path() -> str | None:
    """Debian's chromium (CI installs it); browser tests skip with a reason when it is absent."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


CHROMIUM = chromium_path()


@pytest.fixture(scope="session")
def browser():
    """ONE Playwright and ONE headless Chromium for the whole session, shared by every browser test.

    Playwright's sync API runs its own event loop; a second ``sync_playwright()`` while another is
    still open fails ("Sync API inside the asyncio loop"), so no test module may start its own.
    Started lazily (only when a browser test runs), stopped at session end. Each test opens its own
    context or page and blocks the network there.
    """
    if CHROMIUM is None:
        pytest.skip("no chromium binary (CI installs Debian's chromium: apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra (pip install -e '.[test]')")
    pw = sync_api.sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
    except BaseException:
        pw.stop()
        raise
    try:
        yield b
    finally:
        try:
            b.close()
        finally:
            pw.stop()
