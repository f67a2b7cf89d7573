"""A fresh PostgreSQL database on the test server (``.ci/postgres.sh`` starts one): shared by the
instance-storage, Celery and province tests, which each need their own database per test."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit


def pg_database(url: str, prefix: str = "credit_etl_"):
    """Create a database on the server at ``url``; return (its URL with the psycopg2 driver, drop).

    The driver is named because dagster-postgres ships psycopg2 and SQLAlchemy 2.1 maps a bare
    ``postgresql://`` to psycopg 3."""
    import psycopg2

    name = prefix + uuid.uuid4().hex[:10]
    admin = psycopg2.connect(url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    db_url = urlunsplit(urlsplit(url)._replace(scheme="postgresql+psycopg2", path="/" + name))

    def drop():
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return db_url, drop
