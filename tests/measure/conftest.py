import sys
from pathlib import Path

import pytest

# shared builders for validated partitions live in tests/load/validated_builder.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "load"))


@pytest.fixture(scope="session")
def contracts():
    from contracts.loader import load_contracts

    return load_contracts()


@pytest.fixture(scope="session")
def registry(contracts):
    from contracts.loader import load_registry

    return load_registry(contracts=contracts)
