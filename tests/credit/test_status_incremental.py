"""The record_statuses step night by night, incrementally and in full, on the same warehouse: the
status history must be identical, and the nightly share changes applied to the first snapshot
must give every night's full snapshot.

Real generated deliveries (versions, corrections, repairs, objections with their decisions, the
National Day holidays) go through the real ingest → validate → load stage functions into a real
DuckDB file; two copies of it then run the same nights (with skipped nights, a rerun, and nights
months and years later, when display periods and public limits end) one way each."""

from __future__ import annotations

import csv
import shutil
from datetime import date, timedelta

import duckdb
import pytest

from assets.credit_status import status
from assets.credit_status.status import log_statuses, record_night, write_share_export
from assets.ingest import HttpSettings, ingest_day
from assets.load import load_day
from assets.validate import validate_day
from contracts import load_contracts, load_registry
from pipelines.samples.feeds import generate
from warehouse.layout import DataDir

START, DAYS = date(2026, 9, 28), 12
NIGHTS = [
    date(2026, 9, 28), date(2026, 9, 29), date(2026, 9, 30), date(2026, 10, 3),  # 10-01/02 skipped
    date(2026, 10, 5), date(2026, 10, 8), date(2026, 10, 5),  # a rerun of an earlier night
    date(2026, 10, 9), date(2026, 10, 10), date(2026, 10, 12),  # the generated deliveries end on 10-09
    date(2026, 12, 1), date(2027, 1, 15), date(2027, 4, 1), date(2027, 7, 1),  # display periods end
    date(2027, 10, 13), date(2028, 6, 1), date(2029, 12, 31),  # public limits and the longest periods
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    contracts = load_contracts()
    registry = load_registry(contracts=contracts)
    root = tmp_path_factory.mktemp("status-inc") / "data"
    generate(root, start=START, days=DAYS, rows_per_day=40, seed=5)
    dd = DataDir(root)
    for i in range(DAYS):
        day = START + timedelta(days=i)
        ingest_day(dd, day, contracts, registry, http=HttpSettings(enabled=False))
        validate_day(dd, day, contracts)
        load_day(dd, day, contracts)
    return dd, contracts


def _copy(dd: DataDir, where) -> DataDir:
    out = DataDir(where)
    shutil.copytree(dd.root / "warehouse", out.root / "warehouse")
    return out


def _table(dd: DataDir, sql: str) -> list[tuple]:
    con = duckdb.connect(str(dd.db_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _read(path) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def test_incremental_nights_give_the_full_history_and_the_snapshots(loaded, tmp_path, monkeypatch):
    dd, contracts = loaded
    inc, full = _copy(dd, tmp_path / "inc"), _copy(dd, tmp_path / "full")
    incremental_nights = 0
    computed = []  # the nights' candidate-key computations: the export takes the log's
    real = status._changed_keys
    monkeypatch.setattr(status, "_changed_keys", lambda con, c, *a, **k: computed.append(c.feed) or real(con, c, *a, **k))
    for i, night in enumerate(NIGHTS):
        computed.clear()
        a = record_night(inc, night, contracts)  # as the asset: the export reuses the log's keys and statuses
        assert len(computed) == sum(a.incremental[k] for k in a.incremental if k.startswith("log:")), (night, computed)
        b = log_statuses(full, night, contracts, full=True)
        write_share_export(full, night, contracts, b, full=True)
        assert not any(v for k, v in b.incremental.items() if k.startswith("log:"))
        if i:
            assert all(a.incremental.values()), (night, a.incremental)  # built on the previous night
            incremental_nights += 1
        assert a.changes == b.changes and a.shared == b.shared, night
    assert incremental_nights == len(NIGHTS) - 1

    log = "SELECT * FROM record_status_log ORDER BY ALL"
    assert _table(inc, log) == _table(full, log)
    # the nights exercised what can change a status: every status and every cause of change occurs
    seen = {r[0] for r in _table(full, "SELECT DISTINCT status FROM record_status_log")}
    assert {"公示中", "异议中", "已到期", "已修复", "已撤销"} <= seen, seen
    later = _table(full, "SELECT count(*) FROM record_status_log WHERE status = '已到期' AND as_of > DATE '2026-10-12'")
    assert later[0][0] > 0

    # the share files: the first night a snapshot only; later nights the changes, which applied to
    # the first snapshot give every night's full snapshot (written on request in the other copy)
    seen_nights = []
    for c in contracts.values():
        if c.role != "records":
            continue
        labels = {f.name: f.label for f in c.fields}
        key_cols = [labels[k] for k in c.business_key]
        header, rows = _read(inc.share_file(NIGHTS[0], c.feed))
        key_at = [header.index(k) for k in key_cols]
        states = {NIGHTS[0]: {tuple(r[j] for j in key_at): r for r in rows}}
        assert not inc.share_changes_file(NIGHTS[0], c.feed).exists()
        for night in NIGHTS[1:]:
            # a night's changes are against the feed's latest exported night before it (a rerun of
            # an earlier night: against the night before that one, as the first time)
            shared = dict(states[max(n for n in states if n < night)])
            ch_header, changes = _read(inc.share_changes_file(night, c.feed))
            assert ch_header == ["变更类型"] + header
            for r in changes:
                kind, row = r[0], r[1:]
                k = tuple(row[j] for j in key_at)
                if kind == "撤下":
                    assert k in shared and row[-1] not in ("公示中",), (night, r)
                    del shared[k]
                else:
                    assert kind == ("更新" if k in shared else "新增") and row != shared.get(k), (night, r)
                    shared[k] = row
            states[night] = shared
            expected_header, expected = _read(full.share_file(night, c.feed))
            assert expected_header == header
            assert shared == {tuple(r[j] for j in key_at): r for r in expected}, (c.feed, night)
            seen_nights.append((c.feed, night, {r[0] for r in changes}))
    kinds = set().union(*(k for _, _, k in seen_nights))
    assert kinds == {"新增", "更新", "撤下"}, kinds


def test_rerun_gives_the_same_bytes_and_fallbacks_compute_in_full(loaded, tmp_path):
    dd, contracts = loaded
    inc = _copy(dd, tmp_path / "inc")
    for night in NIGHTS[:6]:
        log_statuses(inc, night, contracts)
        write_share_export(inc, night, contracts)
    night = NIGHTS[5]
    before = {p: p.read_bytes() for p in inc.share.joinpath(night.isoformat()).iterdir()}
    table = _table(inc, "SELECT * FROM record_status_log ORDER BY ALL")
    again = log_statuses(inc, night, contracts)
    write_share_export(inc, night, contracts, again)
    assert all(again.incremental.values())
    assert {p: p.read_bytes() for p in inc.share.joinpath(night.isoformat()).iterdir()} == before
    assert _table(inc, "SELECT * FROM record_status_log ORDER BY ALL") == table

    # the contracts changed (objections withheld while open): the next night is computed in full
    withheld = dict(contracts)
    obj = contracts["objections"]
    withheld["objections"] = obj.model_copy(update={"objection": obj.objection.model_copy(update={"while_open": "withhold"})})
    s = write_share_export(inc, NIGHTS[7], withheld)
    assert not s.incremental["share:penalties"] and inc.share_file(NIGHTS[7], "penalties").exists()

    # a past night's versions changed after it was computed (reloaded): computed in full
    con = duckdb.connect(str(inc.db_path))
    try:
        con.execute("DELETE FROM penalties_versions WHERE rowid = (SELECT min(rowid) FROM penalties_versions)")
    finally:
        con.close()
    s = log_statuses(inc, NIGHTS[7], contracts)
    assert not s.incremental["log:penalties"] and s.incremental["log:permits"]

    # on request, the full path and the full snapshot
    s = log_statuses(inc, NIGHTS[8], contracts, full=True)
    assert not any(s.incremental.values())
    s = write_share_export(inc, NIGHTS[8], contracts)  # the rules changed back: a new baseline again
    assert not s.incremental["share:penalties"] and inc.share_file(NIGHTS[8], "penalties").exists()
    s = write_share_export(inc, NIGHTS[9], contracts, full=True)
    assert s.incremental["share:penalties"]
    assert inc.share_file(NIGHTS[9], "penalties").exists() and inc.share_changes_file(NIGHTS[9], "penalties").exists()
    _, rows = _read(inc.share_file(NIGHTS[9], "penalties"))
    assert s.shared["penalties"] == len(rows)


def test_share_changes_use_the_one_masking_policy(loaded, tmp_path):
    from stdnum.cn import uscc

    from warehouse.masking import find_unmasked

    dd, contracts = loaded
    inc = _copy(dd, tmp_path / "inc")
    texts = []
    for night in NIGHTS[:6]:
        log_statuses(inc, night, contracts)
        s = write_share_export(inc, night, contracts)
        texts += [p.read_text(encoding="utf-8-sig") for p in s.share_files]
    assert len(texts) > 6
    assert not [m for t in texts for m in find_unmasked(t) if not uscc.is_valid(m)]
    assert status.SHARE_CHANGE_HEADER == "变更类型"


def test_day_digests_give_the_fingerprint_of_the_versions(loaded, tmp_path):
    """The nights are compared by a fingerprint of the versions received up to them; the loads keep
    it per feed and day (``versions_days``) so a night does not scan the warehouse for it. It must
    equal the fingerprint scanned from the versions tables, also for a warehouse loaded before the
    table existed (filled from the versions on first use) and after versions changed behind it."""
    from warehouse.record_status import STATUS_ROLES, versions_fingerprint, versions_fingerprint_sql

    dd, contracts = loaded
    fp = _copy(dd, tmp_path / "fp")
    status_feeds = [c for c in contracts.values() if c.role in STATUS_ROLES]
    con = duckdb.connect(str(fp.db_path))
    try:
        held = con.execute("SELECT feed, received_date, row_count FROM versions_days ORDER BY ALL").fetchall()
        counted = con.execute(" UNION ALL ".join(
            f"SELECT '{c.feed}', _received_date, count(*) FROM {c.feed}_versions GROUP BY ALL" for c in contracts.values()
        ) + " ORDER BY ALL").fetchall()
        assert held == counted and len(held) > DAYS  # every feed's loaded days, kept by the loads

        def same(night):
            for c in status_feeds:
                scanned = con.execute(versions_fingerprint_sql(c, contracts, night)).fetchone()[0]
                assert versions_fingerprint(con, c, contracts, night) == scanned, (c.feed, night)

        for night in (START - timedelta(days=1), START, START + timedelta(days=4), NIGHTS[-1]):
            same(night)
        con.execute("DELETE FROM versions_days")  # loaded before the table existed
        same(START + timedelta(days=5))
        assert con.execute("SELECT count(*) FROM versions_days").fetchone()[0] > 0
        before = versions_fingerprint(con, contracts["penalties"], contracts, NIGHTS[-1])
        con.execute("DELETE FROM penalties_versions WHERE rowid = (SELECT min(rowid) FROM penalties_versions)")
        same(NIGHTS[-1])
        assert versions_fingerprint(con, contracts["penalties"], contracts, NIGHTS[-1]) != before
    finally:
        con.close()
