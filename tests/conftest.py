"""Shared pytest fixtures. Kept minimal on purpose: each stage's tests build their own real
files; fixtures that several stages need belong here."""

from __future__ import annotations

import os
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
