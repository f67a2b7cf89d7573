import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def contracts():
    from contracts.loader import load_contracts

    return load_contracts()


@pytest.fixture(scope="session")
def registry(contracts):
    from contracts.loader import load_registry

    return load_registry(contracts=contracts)
