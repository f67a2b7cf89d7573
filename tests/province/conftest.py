"""Province-mode fixtures: a PostgreSQL database per test (the Iceberg SQL catalog), an S3
server on 127.0.0.1 (moto's server mode), the province settings, and county pushes made by the
real push code (``assets/push``, helpers in ``province_helpers.py``).

PostgreSQL comes from ``$CREDIT_ETL_TEST_PG_URL`` (``source .ci/postgres.sh``; ``.ci/run``
starts it); without it the tests that need the lake skip with a reason."""

from __future__ import annotations

import os
import uuid

import pytest

from contracts import CONTRACTS_DIR, load_contracts, load_registry
from contracts.config import County, Lake, Province, Settings

PG_ENV = "CREDIT_ETL_TEST_PG_URL"
from province_helpers import ACCESS, COUNTIES, SECRET  # noqa: E402  (shared with the tests)


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} not set: run `source .ci/postgres.sh` (the lake's catalog needs PostgreSQL)")
    return url


@pytest.fixture
def catalog_url(pg_server_url):
    """A fresh database for this test; dropped afterwards."""
    import sqlalchemy as sa

    from assets.province.lake import sqlalchemy_url

    pg_server_url = sqlalchemy_url(pg_server_url)
    name = f"lake_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = pg_server_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as c:
        c.execute(sa.text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3-compatible server on 127.0.0.1, port chosen by the OS."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def lake_env(catalog_url, s3_server, monkeypatch) -> dict[str, str]:
    env = {"CREDIT_ETL_S3_ACCESS_KEY": ACCESS, "CREDIT_ETL_S3_SECRET_KEY": SECRET,
           "CREDIT_ETL_CATALOG_URI": catalog_url}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    # pyarrow's S3 client must not look for cloud credentials or instance metadata
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return env


@pytest.fixture
def province_settings(s3_server) -> Settings:
    bucket = f"lake-{uuid.uuid4().hex[:10]}"
    return Settings(province=Province(
        counties=[County(code=c, name=n) for c, n in COUNTIES],
        lake=Lake(warehouse=f"s3://{bucket}/warehouse", endpoint=s3_server, region="us-east-1"),
    ))


@pytest.fixture(scope="session")
def shipped():
    contracts = load_contracts(CONTRACTS_DIR)
    return contracts, load_registry(CONTRACTS_DIR / "departments.yaml", contracts=contracts)


# County pushes made by the real push code: tests/province/province_helpers.py
