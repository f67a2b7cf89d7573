"""Shared pytest fixtures. Kept minimal on purpose: each stage's tests build their own real
files; fixtures that several stages need belong here."""

from __future__ import annotations

import os
import contextlib
import io
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
