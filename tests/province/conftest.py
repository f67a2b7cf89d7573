"""Province-mode fixtures: a PostgreSQL database per test (the Iceberg SQL catalog), an S3
server on 127.0.0.1 (moto's server mode), the province settings, and county pushes made by the
real push code (``assets/push``) from real county warehouses.

PostgreSQL comes from ``$CREDIT_ETL_TEST_PG_URL`` (``source .ci/postgres.sh``; ``.ci/run``
starts it); without it the tests that need the lake skip with a reason."""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from contracts import CONTRACTS_DIR, load_contracts, load_registry
from contracts.config import County, Lake, Province, PushTarget, Settings

PG_ENV = "CREDIT_ETL_TEST_PG_URL"
ACCESS, SECRET = "province-test-key", "province-test-secret"
COUNTIES = [("500237", "巫山县"), ("500238", "巫溪县")]


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


# ---------------------------------------------------------------------------------------------
# county pushes: county warehouses loaded by the county's load stage, batches built by assets/push
# ---------------------------------------------------------------------------------------------
def valid_penalty(rng: random.Random, no: str, decided: date, row: int, **over) -> dict:
    from pipelines.samples.ids import make_ric, make_uscc
    from validated_builder import penalty

    return penalty(no, decided, row=row, subject_id_no=make_ric(rng, today=decided),
                   display_end=str(decided + timedelta(days=180)), authority_uscc=make_uscc(rng, "11"), **over)


def valid_permit(rng: random.Random, no: str, decided: date, row: int, **over) -> dict:
    from pipelines.samples.ids import make_ric, make_uscc
    from validated_builder import permit

    return permit(no, decided, row=row, subject_uscc=make_uscc(rng, "91"),
                  legal_rep_id_no=make_ric(rng, today=decided), authority_uscc=make_uscc(rng, "11"), **over)


@dataclass
class Pushed:
    county: str
    day: date
    batches: dict[str, bytes]  # batch_id -> body as POSTed


def county_push(tmp: Path, shipped, county: str, day: date, *, penalties=(), permits=()) -> Pushed:
    """Load rows into a real county warehouse and build the night's push batches with the real
    push code (the bodies a county POSTs to the province)."""
    from assets.load.load import load_day
    from assets.push.push import queue_night
    from validated_builder import write_validated
    from warehouse.db import connect
    from warehouse.layout import DataDir

    contracts, registry = shipped
    registry = registry.model_copy(update={"region_code": county})
    dd = DataDir(tmp / f"county_{county}")
    write_validated(dd, contracts["penalties"], day, passed=list(penalties))
    write_validated(dd, contracts["permits"], day, passed=list(permits))
    load_day(dd, day, contracts)
    target = PushTarget(name="省平台", url="http://127.0.0.1:9/exchange")
    with connect(dd) as con:
        queue_night(con, target, contracts, registry, day)
        rows = con.execute("SELECT batch_id, payload FROM push_batches WHERE night = ? ORDER BY seq", [day]).fetchall()
    return Pushed(county, day, {bid: bytes(p) for bid, p in rows})


def deliver(province_dir: Path, pushed: Pushed) -> None:
    """What the receiver does: each body under inbox/<county>/<day>/<batch_id>.json."""
    from assets.province.pushes import county_day_dir

    folder = county_day_dir(province_dir, pushed.county, pushed.day)
    folder.mkdir(parents=True, exist_ok=True)
    for bid, body in pushed.batches.items():
        (folder / f"{bid}.json").write_bytes(body)
