"""Upward push against a real receiving server on 127.0.0.1: a night's records arrive once, an
outage of two nights loses and duplicates nothing, revoked and repaired records arrive as
withdrawals, and nothing with full identifiers lands in a folder."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from assets.load.load import load_day
from assets.push import push_night
from contracts import CONTRACTS_DIR, load_contracts, load_registry
from contracts.config import PushTarget
from validated_builder import AUTH_A, file_id, penalty, permit, write_validated
from warehouse.db import connect
from warehouse.layout import DataDir

N1, N2, N3, N4 = date(2026, 10, 12), date(2026, 10, 13), date(2026, 10, 14), date(2026, 10, 15)
TOKEN = "push-secret"
FULL_ID = "50023719900307123X"


class Receiver:
    """A platform stand-in: stores batches by id (a repeat is answered 'duplicate', not applied)."""

    def __init__(self):
        self.batches: dict[str, dict] = {}
        self.posts: list[str] = []
        self.applied: Counter = Counter()  # (feed, record fingerprint) -> times applied
        self.state: dict[tuple, dict] = {}  # (feed, decision no, authority) -> record
        self.withdrawn: list[tuple] = []
        self.lose_next_answer = False
        self.server = None
        self.port = 0

    def key(self, feed, row):
        p = "CF" if feed == "penalties" else "XK"
        return feed, row[f"{p}_WSH"], row[f"{p}_XKJGDM" if p == "XK" else "CF_CFJGDM"]

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._answer(401, {"error": "token"})
                bid = self.headers["Idempotency-Key"]
                receiver.posts.append(bid)
                if bid in receiver.batches:
                    return self._answer(200, {"batch_id": bid, "status": "duplicate"})
                doc = json.loads(body)
                assert doc["batch_id"] == bid
                receiver.batches[bid] = doc
                for row in doc["records"]:
                    receiver.applied[(doc["feed"], json.dumps(row, sort_keys=True))] += 1
                    receiver.state[receiver.key(doc["feed"], row)] = row
                for row in doc["withdrawals"]:
                    k = receiver.key(doc["feed"], row)
                    receiver.withdrawn.append((k, row["CXYY"]))
                    receiver.state.pop(k, None)
                if receiver.lose_next_answer:  # processed, but the answer is lost
                    receiver.lose_next_answer = False
                    return self._answer(502, {"error": "gateway"})
                return self._answer(200, {"batch_id": bid, "status": "accepted"})

            def _answer(self, status, doc):
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    r.start()
    yield r
    r.stop()


@pytest.fixture
def shipped():
    contracts = load_contracts(CONTRACTS_DIR)
    return contracts, load_registry(CONTRACTS_DIR / "departments.yaml", contracts=contracts)


def target(receiver, **over) -> PushTarget:
    args = dict(name="市平台", url=f"http://127.0.0.1:{receiver.port}/exchange", token_env="PUSH_TOKEN",
                max_attempts=2, backoff_seconds=0.01)
    args.update(over)
    return PushTarget(**args)


def night(dd, contracts, day, *, permits=(), penalties=(), repairs=()):
    for feed, rows in (("permits", permits), ("penalties", penalties), ("repairs", repairs)):
        write_validated(dd, contracts[feed], day, passed=list(rows))
    load_day(dd, day, contracts)


def push(dd, day, shipped, tgt):
    contracts, registry = shipped
    return push_night(dd, day, contracts, registry, [tgt], env={"PUSH_TOKEN": TOKEN})[0]


def files(root):
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()}


def test_a_nights_records_arrive_once_in_the_national_layout(tmp_path, receiver, shipped):
    contracts, _ = shipped
    dd = DataDir(tmp_path / "data")
    night(dd, contracts, N1, permits=[permit("许A1", "2026-10-09")],
          penalties=[penalty("罚A1", "2026-10-09", row=2), penalty("罚A2", "2026-10-10", row=3)])
    before = files(dd.root)
    res = push(dd, N1, shipped, target(receiver))
    assert len(res.queued) == 2 and res.acknowledged == res.queued and not res.pending
    assert sorted(d["feed"] for d in receiver.batches.values()) == ["penalties", "permits"]
    assert all(n == 1 for n in receiver.applied.values()) and len(receiver.applied) == 3
    pen = next(d for d in receiver.batches.values() if d["feed"] == "penalties")
    national = {f.code for f in contracts["penalties"].national_fields}
    assert set(pen["records"][0]) == national  # 790号 codes as keys, nothing else
    assert pen["records"][0]["CF_XDR_ZJHM"] == FULL_ID  # full identifier, to the platform only
    assert pen["region_code"] == "500237"
    # a rerun of the night (or the next night without changes) sends nothing again
    again = push(dd, N1, shipped, target(receiver))
    assert again.queued == [] and again.acknowledged == []
    assert len(receiver.posts) == 2
    # the full identifier went to the endpoint only: no file was written by the push
    assert files(dd.root) - before <= {p for p in files(dd.root) if p.parts[0] == "warehouse" and p.suffix in (".duckdb", ".wal")}
    with connect(dd, read_only=True) as con:
        audit = con.execute("SELECT outcome, records, message FROM push_audit ORDER BY feed").fetchall()
        manifest = con.execute("SELECT feed, status, records, withdrawals FROM push_batches ORDER BY feed").fetchall()
        audit_text = json.dumps(con.execute("SELECT * FROM push_audit").fetchall(), default=str, ensure_ascii=False)
    assert audit == [("acknowledged", 2, None), ("acknowledged", 1, None)]
    assert manifest == [("penalties", "acknowledged", 2, 0), ("permits", "acknowledged", 1, 0)]
    assert FULL_ID not in audit_text


def test_two_nights_down_then_up_everything_arrives_exactly_once(tmp_path, receiver, shipped):
    contracts, _ = shipped
    dd = DataDir(tmp_path / "data")
    tgt = target(receiver)
    receiver.stop()  # the platform is down for two nights
    night(dd, contracts, N1, penalties=[penalty("罚A1", "2026-10-09", fid="n1")])
    r1 = push(dd, N1, shipped, tgt)
    assert len(r1.queued) == 1 and r1.acknowledged == [] and r1.pending == r1.queued and r1.errors
    night(dd, contracts, N2, penalties=[penalty("罚A2", "2026-10-12", fid="n2"),
                                        penalty("罚A1", "2026-10-09", fid="n2", row=3, fine_amount="0.8000",
                                                penalty_content="罚款0.8万元")],
          permits=[permit("许A1", "2026-10-12", fid="n2p")])
    r2 = push(dd, N2, shipped, tgt)
    assert r2.acknowledged == [] and len(r2.pending) == 3  # night 1's batch waits in front
    with connect(dd, read_only=True) as con:
        failed = con.execute("SELECT count(*) FROM push_audit WHERE outcome = 'failed'").fetchone()[0]
    assert failed == 2 * tgt.max_attempts  # each night retried the oldest batch, then stopped
    receiver.start()  # back on the same port
    receiver.lose_next_answer = True  # and the answer to its first batch is lost once
    r3 = push(dd, N3, shipped, tgt)
    assert r3.queued == [] and r3.acknowledged == r2.pending and not r3.pending
    assert len(receiver.batches) == 3
    assert Counter(receiver.posts)[r1.queued[0]] == 2  # resent after the lost answer, applied once
    assert all(n == 1 for n in receiver.applied.values())
    # the platform ends with exactly the warehouse's current records, the correction included
    assert {k[1] for k in receiver.state} == {"罚A1", "罚A2", "许A1"}
    assert receiver.state[("penalties", "罚A1", AUTH_A)]["CF_NR_FK"] == "0.8"
    with connect(dd, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM push_batches WHERE status <> 'acknowledged'").fetchone()[0] == 0
    assert push(dd, N4, shipped, tgt).queued == []


def test_revoked_and_repaired_records_arrive_as_withdrawals(tmp_path, receiver, shipped):
    contracts, _ = shipped
    dd = DataDir(tmp_path / "data")
    tgt = target(receiver)
    # 罚A1 was decided in June: the repair of 12 October is past its minimum display period
    # (一般: 3 months), so it applies (an earlier one would not: warehouse.record_status)
    night(dd, contracts, N1, permits=[permit("许A1", "2026-10-09")],
          penalties=[penalty("罚A1", "2026-06-01"), penalty("罚A2", "2026-10-09", row=3)])
    push(dd, N1, shipped, tgt)
    repair = {"target_feed": "penalties", "decision_no": "罚A1", "authority_uscc": AUTH_A, "repair_date": "2026-10-12",
              "repair_unit": "巫山县发展和改革委员会", "_file_id": file_id("r1"), "_row_no": 2, "_dept": "fgw"}
    night(dd, contracts, N2, repairs=[repair], permits=[permit("许A1", "2026-10-09", fid="f2", status="无效")],
          # revoked before it was ever pushed: never sent at all
          penalties=[penalty("罚B9", "2026-10-12", fid="p2", publicity_status="撤销")])
    res = push(dd, N2, shipped, tgt)
    assert len(res.acknowledged) == 2
    assert sorted((k[1], why) for k, why in receiver.withdrawn) == [("罚A1", "信用修复"), ("许A1", "撤销")]
    assert {k[1] for k in receiver.state} == {"罚A2"}
    assert not any("罚B9" in json.dumps(d, ensure_ascii=False) for d in receiver.batches.values())


def test_csv_layout_and_a_missing_token(tmp_path, receiver, shipped):
    contracts, registry = shipped
    dd = DataDir(tmp_path / "data")
    night(dd, contracts, N1, penalties=[penalty("罚A1", "2026-10-09")])
    tgt = target(receiver, format="csv", feeds=["penalties"])
    res = push_night(dd, N1, contracts, registry, [tgt], env={})[0]
    assert res.pending and "PUSH_TOKEN" in res.errors[0] and receiver.posts == []
    with connect(dd, read_only=True) as con:
        payload, = con.execute("SELECT payload FROM push_batches").fetchone()
        assert con.execute("SELECT outcome FROM push_audit").fetchall() == [("skipped",)]
    text = bytes(payload).decode("utf-8-sig")
    header = text.splitlines()[0].split(",")
    assert header == [f.code for f in contracts["penalties"].national_fields] + ["CZLX", "CXYY"]
    assert text.splitlines()[1].split(",")[-2] == "I"


def test_the_nightly_asset_pushes_to_the_configured_target(tmp_path, receiver, shipped, monkeypatch):
    """The thin asset reads the targets from the office's settings.yaml and the token from the
    environment; its check says whether everything was acknowledged."""
    import dagster as dg

    from assets.push.assets import upward_push
    from contracts.config import CONFIG_ENV, reset_caches
    from pipelines.office import init_office
    from warehouse.resource import WarehouseResource

    contracts, _ = shipped
    cfg = tmp_path / "cfg"
    init_office(cfg, county="500102", name="涪陵区")
    settings = cfg / "settings.yaml"
    settings.write_text(settings.read_text(encoding="utf-8").replace(
        "push: []", f"push:\n- {{name: 市平台, url: 'http://127.0.0.1:{receiver.port}/x', token_env: PUSH_TOKEN, max_attempts: 1}}"),
        encoding="utf-8")
    monkeypatch.setenv(CONFIG_ENV, str(cfg))
    monkeypatch.setenv("PUSH_TOKEN", TOKEN)
    reset_caches()
    try:
        dd = DataDir(tmp_path / "data")
        night(dd, contracts, N1, penalties=[penalty("罚A1", "2026-10-09")])
        result = dg.materialize([upward_push], partition_key=N1.isoformat(),
                                resources={"warehouse": WarehouseResource(data_dir=str(dd.root))},
                                instance=dg.DagsterInstance.ephemeral())
        assert result.success
        check = result.get_asset_check_evaluations()[0]
        assert check.check_name == "push_acknowledged" and check.passed
        assert [d["region_code"] for d in receiver.batches.values()] == ["500102"]  # the office's county
        receiver.stop()
        night(dd, contracts, N2, penalties=[penalty("罚A2", "2026-10-12", fid="n2")])
        result = dg.materialize([upward_push], partition_key=N2.isoformat(),
                                resources={"warehouse": WarehouseResource(data_dir=str(dd.root))},
                                instance=dg.DagsterInstance.ephemeral())
        assert result.success and not result.get_asset_check_evaluations()[0].passed  # warns: pending
        receiver.start()
    finally:
        monkeypatch.delenv(CONFIG_ENV)
        reset_caches()
