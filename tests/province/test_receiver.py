"""The province receiver against a real county: sample department files, a real night through the
Dagster job, then the county's own push (``push_night`` → ``send_pending``) to the receiver on
127.0.0.1 port 0. The batches land in the province inbox as PROVINCE.md lays it out, a resend is
answered ``duplicate`` without a second file, bad inputs get Chinese reasons, and the receipts
log holds no identifiers."""

from __future__ import annotations

import json
from datetime import date

import dagster as dg
import pytest
import requests

from assets.province.receiver import PUSH_PATH, ProvinceReceiver, ReceiverConfigError, ReceiverSettings, inbox_path
from assets.push import push_night, send_pending
from contracts import load_contracts, load_registry
from contracts.config import PushTarget
from pipelines.nightly import run_night
from pipelines.samples.feeds import generate
from warehouse.db import connect
from warehouse.layout import DataDir
from warehouse.masking import find_unmasked

DAY = date(2026, 9, 29)
RECEIVED = date(2026, 9, 30)  # the province's calendar day when the batches arrive
TOKEN = "province-secret-7f3a"
COUNTIES = {"500237": "巫山县", "500102": "涪陵区"}


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    """A county warehouse after one real night of generated department files (inbox only)."""
    root = tmp_path_factory.mktemp("county") / "data"
    generate(root, start=date(2026, 9, 28), days=2, rows_per_day=6, seed=16)
    result = run_night(root, DAY, instance=dg.DagsterInstance.ephemeral(), http_enabled=False)
    assert result.success, result.describe()
    contracts = load_contracts()
    return DataDir(root), contracts, load_registry(contracts=contracts)


@pytest.fixture
def receiver(tmp_path):
    r = ProvinceReceiver(tmp_path / "province" / "inbox", COUNTIES, TOKEN, max_body_bytes=2 * 1024 * 1024,
                         today=lambda: RECEIVED).start("127.0.0.1", 0)
    yield r
    r.stop()


def _target(receiver, **over) -> PushTarget:
    args = dict(name="重庆市社会信用信息平台", url=receiver.url, token_env="PROVINCE_PUSH_TOKEN",
                max_attempts=1, backoff_seconds=0.0)
    args.update(over)
    return PushTarget(**args)


def _receipts(receiver) -> list[dict]:
    return [json.loads(line) for line in receiver.receipts.read_text(encoding="utf-8").splitlines()]


def test_a_county_night_lands_in_the_inbox_and_a_resend_is_duplicate(county, receiver, tmp_path):
    dd, contracts, registry = county
    # a copy of the county warehouse per test: the push records its acknowledgements in it
    work = DataDir(tmp_path / "county")
    work.db_path.parent.mkdir(parents=True)
    work.db_path.write_bytes(dd.db_path.read_bytes())
    target = _target(receiver)
    [res] = push_night(work, DAY, contracts, registry, [target], env={"PROVINCE_PUSH_TOKEN": TOKEN})
    assert res.queued and res.acknowledged == res.queued and not res.pending, res.describe()

    files = sorted(receiver.inbox.rglob("*.json"))
    assert len(files) == len(res.queued)
    with connect(work, read_only=True) as con:
        payloads = {bid: bytes(p) for bid, p in con.execute("SELECT batch_id, payload FROM push_batches").fetchall()}
        receipts_db = dict(con.execute("SELECT batch_id, receipt FROM push_batches").fetchall())
    for bid in res.queued:
        path = inbox_path(receiver.inbox, "500237", RECEIVED, bid)
        assert path.read_bytes() == payloads[bid]  # exactly the body the county POSTed
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["batch_id"] == bid and doc["region_code"] == "500237"
        assert json.loads(receipts_db[bid]) == {"batch_id": bid, "status": "accepted"}
    loaded = sum(len(json.loads(p.read_text(encoding="utf-8"))["records"]) for p in files)
    with connect(work, read_only=True) as con:
        assert loaded == con.execute("SELECT sum(records) FROM push_batches").fetchone()[0] > 0

    # the county lost the answers and resends everything: duplicate, no second file
    with connect(work) as con:
        con.execute("UPDATE push_batches SET status = 'pending'")
        again = send_pending(con, target, env={"PROVINCE_PUSH_TOKEN": TOKEN})
        answers = [json.loads(r) for (r,) in con.execute("SELECT receipt FROM push_batches ORDER BY seq").fetchall()]
    assert again.acknowledged == res.queued
    assert {a["status"] for a in answers} == {"duplicate"}
    assert sorted(receiver.inbox.rglob("*.json")) == files
    assert not [p for p in receiver.inbox.rglob("*") if p.name.startswith(".")]  # no temp file left

    log = _receipts(receiver)
    assert [r["outcome"] for r in log] == ["accepted"] * len(files) + ["duplicate"] * len(files)
    # the records carried full identifiers to the province; the receipts log holds none of them
    text = receiver.receipts.read_text(encoding="utf-8")
    assert any(find_unmasked(p.read_text(encoding="utf-8")) for p in files), "sample night has personal numbers"
    assert not find_unmasked(text) and TOKEN not in text


def _post(receiver, body: bytes, *, token=TOKEN, headers=None, path=PUSH_PATH):
    h = {"Content-Type": "application/json; charset=utf-8"}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    h.update(headers or {})
    return requests.post(f"http://127.0.0.1:{receiver.port}{path}", data=body, headers=h, timeout=10)


GOOD = {"batch_id": "a" * 32, "region_code": "500102", "region": "涪陵区", "feed": "penalties",
        "catalog_item": "行政处罚", "records": [{"CF_WSH": "涪罚〔2026〕1号", "CF_XDR_ZJHM": "50023719900307123X"}],
        "withdrawals": []}


@pytest.mark.parametrize("case, body, kw, status, reason", [
    ("wrong token", GOOD, {"token": "guess"}, 401, "推送令牌缺失或不正确"),
    ("no token", GOOD, {"token": None}, 401, "推送令牌缺失或不正确"),
    ("malformed JSON", b'{"batch_id": "aaaaaaaaaaaa", "records": [', {}, 400, "不是有效的 JSON"),
    ("NaN", b'{"batch_id": NaN}', {}, 400, "不是有效的 JSON"),
    ("not an object", b"[1, 2]", {}, 400, "应为 JSON 对象"),
    ("missing records", {k: v for k, v in GOOD.items() if k != "records"}, {}, 400, "缺少字段 records"),
    ("unknown county", {**GOOD, "region_code": "110101"}, {}, 403, "区县代码 110101 未在省级平台登记"),
    ("integer too long", b"{\"batch_id\": " + b"9" * 5000 + b"}", {}, 400, "数值过长"),
    ("bad region code", {**GOOD, "region_code": "50023719900307123X"}, {}, 400, "应为 6 位数字"),
    ("key mismatch", GOOD, {"headers": {"Idempotency-Key": "b" * 32}}, 400, "Idempotency-Key"),
    ("csv", GOOD, {"headers": {"Content-Type": "text/csv; charset=utf-8"}}, 415, "只接收 JSON"),
    ("too big", {**GOOD, "records": [{"CF_NR": "x" * 1000}] * 3000}, {}, 413, "超过上限"),
    ("other path", GOOD, {"path": "/admin"}, 404, "地址不存在"),
])
def test_bad_inputs_are_refused_with_a_chinese_reason_and_recorded(receiver, case, body, kw, status, reason):
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    resp = _post(receiver, data, **kw)
    assert resp.status_code == status, case
    assert reason in resp.json()["error"]
    assert not list(receiver.inbox.rglob("*.json"))  # nothing written
    [line] = _receipts(receiver)
    assert line["status"] == status and line["outcome"] == "refused" and reason in line["reason"]
    if status == 403:  # the officer sees which county knocked
        assert line["region_code"] == "110101" and line["batch_id"] == GOOD["batch_id"]
    text = receiver.receipts.read_text(encoding="utf-8")
    assert not find_unmasked(text) and "guess" not in text and TOKEN not in text and "涪罚" not in text


def test_a_good_batch_by_hand_then_its_resend(receiver):
    data = json.dumps(GOOD, ensure_ascii=False).encode()
    first = _post(receiver, data, headers={"Idempotency-Key": GOOD["batch_id"]})
    assert first.status_code == 200 and first.json() == {"batch_id": GOOD["batch_id"], "status": "accepted"}
    second = _post(receiver, data)
    assert second.json() == {"batch_id": GOOD["batch_id"], "status": "duplicate"}
    assert [p.relative_to(receiver.inbox).as_posix() for p in receiver.inbox.rglob("*.json")] == \
        [f"500102/{RECEIVED.isoformat()}/{GOOD['batch_id']}.json"]


def test_the_receiver_refuses_to_start_without_its_token(tmp_path):
    with pytest.raises(ReceiverConfigError, match="CREDIT_ETL_PROVINCE_TOKEN"):
        ProvinceReceiver.from_settings(ReceiverSettings(), tmp_path, COUNTIES, env={})
    r = ProvinceReceiver.from_settings(ReceiverSettings(port=0), tmp_path, COUNTIES,
                                       env={"CREDIT_ETL_PROVINCE_TOKEN": "t0ken-value"})
    assert r.inbox == tmp_path / "inbox"


def test_concurrent_resends_and_a_later_day_give_one_file(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    days = iter([RECEIVED] + [date(2026, 10, 2)] * 20)
    r = ProvinceReceiver(tmp_path / "inbox", COUNTIES, TOKEN, today=lambda: next(days)).start("127.0.0.1", 0)
    try:
        data = json.dumps({**GOOD, "batch_id": "d" * 32}, ensure_ascii=False).encode()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: _post(r, data).json()["status"], range(8)))
        assert sorted(answers) == ["accepted"] + ["duplicate"] * 7
        # the next day the county resends it once more: still a duplicate, still one file
        assert _post(r, data).json()["status"] == "duplicate"
        files = list(r.inbox.rglob("*.json"))
        assert [p.parent.name for p in files] == [RECEIVED.isoformat()]
        log = _receipts(r)
        assert [x["outcome"] for x in log].count("accepted") == 1 and len(log) == 9
        assert {x["received_day"] for x in log} == {RECEIVED.isoformat()}
    finally:
        r.stop()


def test_a_county_hanging_up_early_does_not_end_the_receiver(tmp_path):
    """``credit-etl`` sets SIGPIPE to its default; a refused oversized body (answered and closed
    while the county is still sending) must not kill the process serving the other counties."""
    import signal

    before = signal.getsignal(signal.SIGPIPE)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        r = ProvinceReceiver(tmp_path / "inbox", COUNTIES, TOKEN, max_body_bytes=1024, today=lambda: RECEIVED).start()
        try:
            big = json.dumps({**GOOD, "records": [{"CF_NR": "x" * 1000}] * 3000}).encode()
            for _ in range(3):
                try:
                    assert _post(r, big).status_code == 413
                except requests.ConnectionError:
                    pass  # the county may see the reset instead of the answer; it resends later
            small = json.dumps({**GOOD, "records": []}).encode()
            assert _post(r, small).json()["status"] == "accepted"
        finally:
            r.stop()
    finally:
        signal.signal(signal.SIGPIPE, before)
