"""The province lake: Apache Iceberg tables (pyiceberg, SQL catalog on PostgreSQL, data on S3).

Tables (namespace from the settings, default ``credit``; schemas in PROVINCE.md):

- ``records_<feed>``: loaded rows, the contract's field names typed as in the county warehouse
  (DATE, DECIMAL(18,4), BIGINT, VARCHAR; converted by the county's ``typed_expr``) plus
  ``pushes.RECORD_META``; partitioned by ``county_code`` × ``received_day``.
- ``quarantine``: ``pushes.QUARANTINE_COLUMNS``; same partitioning.
- ``county_metrics_daily``: ``measure.METRICS_SCHEMA``; partitioned by ``county_code`` × ``day``.

Writing (:func:`replace_partition`): a county × day run replaces exactly its own partition of a
table in ONE snapshot (an Iceberg ``overwrite`` that removes the partition's data files and
adds the new ones; identity partitioning makes every data file belong to one county × day).
Another county's run may commit first: the SQL catalog's compare-and-swap on the metadata
location then raises ``CommitFailedException`` and the write is redone on the fresh metadata
(bounded by ``lake.commit_attempts``). A crash before the catalog row is switched (kill -9, an
exception) leaves the previous snapshot current; the data files it wrote are unreferenced
(orphans, removed by Iceberg's orphan-file maintenance, never read). A rerun writes the same
rows, and the table gains exactly one snapshot.

Reading: :func:`register_lake` gives a DuckDB connection one view per table (and
``current_<feed>``: the latest row of each county × record, withdrawn records left out), over
the data files of the current snapshot through ``pyarrow.dataset`` with pyarrow's
``S3FileSystem`` — nothing needs DuckDB extensions, which cannot be installed offline.

A networked deployment switches to DuckDB's own readers: ``INSTALL httpfs; INSTALL iceberg;
LOAD httpfs; LOAD iceberg;`` then ``CREATE SECRET (TYPE s3, KEY_ID …, SECRET …, ENDPOINT …,
URL_STYLE 'path', USE_SSL …)`` from the same environment variables, and either
``iceberg_scan('<metadata_location>')`` per table (the location is
``catalog.load_table(...).metadata_location``) or, with an Iceberg REST catalog in front of the
SQL catalog, ``ATTACH '<warehouse>' AS lake (TYPE iceberg, ENDPOINT '<rest url>')``. Only
:func:`register_lake` changes; the view names stay, so no query changes. Trino and Spark read
the same tables through their Iceberg connectors pointed at the same catalog database.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass
from datetime import date
from typing import Callable, Mapping

import pyarrow as pa
import pyarrow.dataset as pads

from contracts.config import Lake
from contracts.model import Contract
from warehouse.faults import fault_point

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"
METRICS = "county_metrics_daily"

QUARANTINE_SCHEMA = pa.schema([
    ("county_code", pa.string()), ("received_day", pa.date32()), ("feed", pa.string()), ("batch_id", pa.string()),
    ("row_number", pa.int64()), ("rule_ids", pa.string()), ("reasons", pa.string()), ("dept", pa.string()),
    ("record_key", pa.string()),
])


class LakeConfigError(ValueError):
    """The lake cannot be reached as configured (settings missing, a variable unset)."""


def records_table(feed: str) -> str:
    return f"records_{feed}"


ARROW_TYPES = {"string": pa.string(), "code": pa.string(), "date": pa.date32(), "decimal": pa.decimal128(18, 4),
               "integer": pa.int64()}  # the county warehouse's column types (warehouse/feed_tables.py)


def records_schema(contract: Contract, *, typed: bool = True) -> pa.Schema:
    """``records_<feed>``: the contract's fields typed as in the county warehouse (``typed``;
    else all text, as pushed), then the lake's columns."""
    meta = [("county_code", pa.string()), ("received_day", pa.date32()), ("batch_id", pa.string()),
            ("row_number", pa.int64()), ("record_key", pa.string()), ("action", pa.string()),
            ("withdraw_reason", pa.string()), ("dept", pa.string()), ("warnings", pa.string()), ("extra", pa.string())]
    fields = [(f.name, ARROW_TYPES[f.type] if typed else pa.string()) for f in contract.fields]
    return pa.schema(fields + meta)


def lake_feeds(contracts: Mapping[str, Contract]) -> list[str]:
    """Feeds with a records table: those counties push (role ``records``)."""
    return sorted(f for f, c in contracts.items() if c.role == "records")


# ---------------------------------------------------------------------------------------------
# catalog
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LakeAccess:
    lake: Lake
    access_key: str
    secret_key: str
    catalog_uri: str


def access(lake: Lake | None, env: Mapping[str, str] | None = None) -> LakeAccess:
    """Secrets from the environment variables the settings name (never from a file)."""
    env = os.environ if env is None else env
    if lake is None:
        raise LakeConfigError("设置文件缺少 province.lake（数据湖位置）/ settings have no province.lake")
    values = {}
    for attr in ("access_key_env", "secret_key_env", "catalog_uri_env"):
        name = getattr(lake, attr)
        if not env.get(name):
            raise LakeConfigError(f"未设置环境变量 {name}（province.lake.{attr}）/ environment variable {name} not set")
        values[attr] = env[name]
    return LakeAccess(lake, values["access_key_env"], values["secret_key_env"], values["catalog_uri_env"])


def _s3_props(acc: LakeAccess) -> dict[str, str]:
    props = {"s3.access-key-id": acc.access_key, "s3.secret-access-key": acc.secret_key,
             "s3.region": acc.lake.region, "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO"}
    if acc.lake.endpoint:
        props["s3.endpoint"] = acc.lake.endpoint
        props["s3.force-virtual-addressing"] = "false"
    return props


def sqlalchemy_url(url: str) -> str:
    """A PostgreSQL URL with the driver this package installs (psycopg2): SQLAlchemy 2.1 reads a
    bare ``postgresql://`` as psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def open_catalog(acc: LakeAccess):
    """The Iceberg SQL catalog (tables created on first use; several processes may race)."""
    from pyiceberg.catalog.sql import SqlCatalog

    uri = sqlalchemy_url(acc.catalog_uri)
    last = None
    for attempt in range(5):
        try:
            return SqlCatalog(acc.lake.catalog_name, uri=uri, warehouse=acc.lake.warehouse, **_s3_props(acc))
        except Exception as exc:  # noqa: BLE001 - concurrent CREATE TABLE of the catalog's own tables
            last = exc
            time.sleep(0.2 * (attempt + 1))
    raise last


def s3_filesystem(acc: LakeAccess, **extra):
    from pyarrow.fs import S3FileSystem

    kw = {}
    if acc.lake.endpoint:
        scheme, _, host = acc.lake.endpoint.partition("://")
        kw = {"endpoint_override": host.rstrip("/"), "scheme": scheme}
    return S3FileSystem(access_key=acc.access_key, secret_key=acc.secret_key, region=acc.lake.region, **kw, **extra)


def ensure_bucket(acc: LakeAccess) -> None:
    """Create the warehouse bucket when missing (a fresh MinIO/moto; a cloud bucket exists)."""
    fs = s3_filesystem(acc, allow_bucket_creation=True)
    from pyarrow.fs import FileType

    if fs.get_file_info(acc.lake.bucket).type == FileType.NotFound:
        fs.create_dir(acc.lake.bucket)


def _ident(lake: Lake, name: str) -> tuple[str, str]:
    return (lake.namespace, name)


def ensure_table(catalog, lake: Lake, name: str, schema: pa.Schema, partition: tuple[str, str]):
    """Load the table, creating it (identity-partitioned by ``partition``) when missing; add
    columns a contract gained since (schema evolution by name)."""
    from pyiceberg.exceptions import (CommitFailedException, NamespaceAlreadyExistsError, NoSuchTableError,
                                      TableAlreadyExistsError)

    ident = _ident(lake, name)
    from sqlalchemy.exc import IntegrityError

    try:
        catalog.create_namespace_if_not_exists(lake.namespace)
    except (NamespaceAlreadyExistsError, IntegrityError):
        pass  # another county's first run created it at the same moment
    try:
        table = catalog.load_table(ident)
    except NoSuchTableError:
        try:
            with catalog.create_table_transaction(ident, schema=schema) as tx:
                with tx.update_spec() as spec:
                    for col in partition:
                        spec.add_identity(col)
        except (TableAlreadyExistsError, CommitFailedException, IntegrityError):
            # another county's first run created it at the same moment: the SQL catalog's
            # commit says "Table already exists" (CommitFailedException); the table is loaded below
            pass
        table = catalog.load_table(ident)
    have = set(table.schema().column_names)
    if any(f.name not in have for f in schema):
        try:
            with table.update_schema() as upd:
                upd.union_by_name(schema)
        except CommitFailedException:
            pass  # another process evolved it first
        table = catalog.load_table(ident)
    return table


# ---------------------------------------------------------------------------------------------
# writing one partition
# ---------------------------------------------------------------------------------------------
def _before_commit(table_name: str) -> None:
    """Crash point between writing the data files and switching the catalog (tests use it)."""
    fault_point(f"lake.before_commit.{table_name}")


def partition_filter(county: str, day: date, day_column: str):
    from pyiceberg.expressions import And, EqualTo

    return And(EqualTo("county_code", county), EqualTo(day_column, day.isoformat()))


def _conform(data: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = []
    for f in schema:
        if f.name in data.column_names:
            cols.append(data.column(f.name).cast(f.type))
        else:
            cols.append(pa.nulls(len(data), f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def replace_partition(catalog, lake: Lake, name: str, data: pa.Table, county: str, day: date, day_column: str,
                      *, sleep: Callable[[float], None] = time.sleep) -> int:
    """Replace the county × day partition of table ``name`` with ``data`` in one snapshot;
    returns the new snapshot id (see the module docstring)."""
    from pyiceberg.exceptions import CommitFailedException, ValidationException
    from pyiceberg.io.pyarrow import _dataframe_to_data_files

    ident = _ident(lake, name)
    filt = partition_filter(county, day, day_column)
    for attempt in range(1, lake.commit_attempts + 1):
        table = catalog.load_table(ident)
        rows = _conform(data, table.schema().as_arrow())
        tx = table.transaction()
        with tx.update_snapshot(snapshot_properties={"credit.county": county, "credit.day": day.isoformat()}
                                ).overwrite() as ov:
            # scopes pyiceberg's own conflict validation (and its replay on a lost race) to this
            # partition: another county's files added meanwhile are no conflict
            ov.delete_by_predicate(filt)
            for task in table.scan(row_filter=filt).plan_files():
                ov.delete_data_file(task.file)
            if len(rows):
                for f in _dataframe_to_data_files(table_metadata=tx.table_metadata, write_uuid=ov.commit_uuid,
                                                  df=rows, io=table.io):
                    ov.append_data_file(f)
        _before_commit(name)
        try:
            tx.commit_transaction()
        except (CommitFailedException, ValidationException) as exc:
            # pyiceberg already replayed the commit on the fresh metadata; what is left is a
            # conflict in this very partition (a second run of it) or retries exhausted: redo
            # the whole write from the current snapshot
            if attempt == lake.commit_attempts:
                raise
            log.info("lake commit conflict on %s (%s × %s), attempt %d: %s", name, county, day, attempt, exc)
            sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
            continue
        return catalog.load_table(ident).current_snapshot().snapshot_id
    raise AssertionError("unreachable")


def read_partition(catalog, lake: Lake, name: str, county: str, day: date, day_column: str) -> pa.Table:
    """The rows of one county × day of a table in its current snapshot."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        table = catalog.load_table(_ident(lake, name))
    except NoSuchTableError:
        return None
    return table.scan(row_filter=partition_filter(county, day, day_column)).to_arrow()


# ---------------------------------------------------------------------------------------------
# DuckDB views
# ---------------------------------------------------------------------------------------------
def table_dataset(table, fs) -> pads.Dataset:
    """The current snapshot's data files as a pyarrow dataset (copy-on-write tables: no delete
    files, so the data files are the table)."""
    schema = table.schema().as_arrow()
    snap = table.current_snapshot()
    if snap is None:
        return pads.dataset(pa.Table.from_batches([], schema=schema))
    paths = []
    for task in table.scan().plan_files():
        if task.delete_files:
            raise LakeConfigError(f"{table.name()} 含删除文件（merge-on-read），请改用 pyiceberg 读取")
        p = task.file.file_path
        paths.append(p.split("://", 1)[1] if "://" in p else p)
    if not paths:
        return pads.dataset(pa.Table.from_batches([], schema=schema))
    return pads.dataset(sorted(paths), schema=schema, format="parquet", filesystem=fs)


def register_lake(con, settings, env: Mapping[str, str] | None = None) -> list[str]:
    """Make every lake table a DuckDB view over its current snapshot; returns the view names.

    ``settings``: the office ``Settings`` (its ``province.lake``) or a ``Lake``. Views:
    ``records_<feed>``, ``quarantine``, ``county_metrics_daily`` and, per feed,
    ``current_<feed>`` (latest row per county × record key, by received day then batch and row;
    a record whose latest row is a withdrawal is left out; on one day a withdrawal wins). The
    views read the files of the snapshot current when this is called; call it again to see
    later commits. See the module docstring for the networked alternative."""
    lake = settings if isinstance(settings, Lake) else (settings.province.lake if settings.province else None)
    acc = access(lake, env)
    catalog = open_catalog(acc)
    fs = s3_filesystem(acc)
    names = []
    from pyiceberg.exceptions import NoSuchNamespaceError

    try:
        idents = catalog.list_tables(lake.namespace)
    except NoSuchNamespaceError:
        idents = []
    for ident in sorted(idents):
        name = ident[-1]
        ds = table_dataset(catalog.load_table(ident), fs)
        src = f"_lake_{name}"
        con.register(src, ds)
        con.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT * FROM "{src}"')
        names.append(name)
        if name.startswith("records_"):
            feed = name[len("records_"):]
            con.execute(
                f'''CREATE OR REPLACE TEMP VIEW "current_{feed}" AS
                SELECT * EXCLUDE (_rank) FROM (
                    SELECT *, row_number() OVER (PARTITION BY county_code, record_key
                        ORDER BY received_day DESC, CASE action WHEN 'withdraw' THEN 0 ELSE 1 END,
                                 batch_id DESC, row_number DESC) AS _rank
                    FROM "{name}" WHERE record_key IS NOT NULL)
                WHERE _rank = 1 AND action = 'upsert\''''
            )
            names.append(f"current_{feed}")
    return names
