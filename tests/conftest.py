"""Shared pytest fixtures. Kept minimal on purpose: each stage's tests build their own real
files; fixtures that several stages need belong here."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts import CONTRACTS_DIR


@pytest.fixture(scope="session")
def shipped_contracts_dir() -> Path:
    """The catalog as shipped (read-only: copy it before changing anything)."""
    return CONTRACTS_DIR
