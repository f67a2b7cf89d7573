"""Dagster's SQLite event log for the processes that run nights (``credit-etl run``/``demo``, bench).

Why: a small night writes ≈ 375 Dagster events (run and step events, ≈ 115 "planned" events at run
creation, ≈ 60 asset-check evaluations), and Dagster's stock ``SqliteEventLogStorage`` creates a
new SQLAlchemy engine, opens a SQLite connection, commits, closes it (a WAL checkpoint and file
sync when the last connection closes) and disposes the engine for every one of them, often twice
(the run's own database and the cross-run ``index.db``): ≈ 1,300 connections a night, and every
statement compiled again because SQLAlchemy's compiled-statement cache lives on the engine.

:class:`ReusingSqliteEventLogStorage` keeps the very same files, tables and transactions (one
committed transaction per event, exactly the stock statements), but

- keeps one engine and one open connection per database (the index and the few most recent run
  databases), so statements are compiled once and a connection is not opened and checkpointed
  per event;
- remembers which index tables exist (Dagster asks before every asset event);
- sets ``PRAGMA synchronous=NORMAL`` on its connections (the databases are already in WAL mode):
  a commit no longer waits for an fsync of the WAL; SQLite stays consistent after a crash, and at
  worst a power cut loses the last events of the run in progress — run history, not the
  warehouse, which has its own DuckDB file.

Only the night-running processes use it (``pipelines.instance.get_instance`` passes it as an
instance override); ``dagster.yaml`` is unchanged, so the UI and the daemon (``credit-etl ui``)
read and write the same files with Dagster's own class.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator

import sqlalchemy as sa
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy.pool import QueuePool

# The index database plus the run databases a night touches (the current run; a few older ones
# for run recovery or reads); older engines are disposed, which closes their connection.
MAX_OPEN_SHARDS = 4


def _pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class ReusingSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log with one reused engine and connection per database (module doc)."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, sa.Engine] = OrderedDict()
        self._tables: set[str] = set()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> "ReusingSqliteEventLogStorage":
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> sa.Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = sa.create_engine(
            self.conn_string_for_shard(shard),
            # one connection per database kept open (used under Dagster's own lock, _db_lock);
            # a nested checkout (schema set-up inspects while connected) gets a short-lived one
            poolclass=QueuePool, pool_size=1, max_overflow=4,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        sa.event.listen(engine, "connect", _pragmas)
        self._engines[shard] = engine
        while len(self._engines) > MAX_OPEN_SHARDS:
            _, old = self._engines.popitem(last=False)
            old.dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sa.Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn

    def has_table(self, table_name: str) -> bool:
        """Asked before every asset event and check evaluation (≈ 180 times a night; the stock
        method builds an engine each time). A table, once there, stays: only a present one is
        remembered, an absent one is asked again."""
        if table_name in self._tables:
            return True
        present = super().has_table(table_name)  # may be asked inside an open index transaction
        if present:
            self._tables.add(table_name)
        return present

    def dispose(self) -> None:
        super().dispose()
        with self._db_lock:
            while self._engines:
                _, engine = self._engines.popitem()
                engine.dispose()
