from __future__ import annotations

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import pytest

from contracts import load_contracts


@pytest.fixture(scope="session")
def contracts():
    return load_contracts()
