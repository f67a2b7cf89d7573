"""Upward push to the city/province platform (推送至市、省社会信用信息平台，逐级推送至"信用中国").

Each night, per push target (settings.yaml ``push``) and per feed:

1. **Build** a batch of what changed since the last push: every current record whose content
   differs from what was last queued for that target (new or corrected records, ``upsert``), and
   a ``withdraw`` for every record pushed before that is now revoked (status in the contract's
   ``revoked_values``) or repaired (a 信用修复 decision). A record that was never pushed and is
   already revoked or repaired is not sent at all. Only the national layout travels: the
   contract's national fields under their 790号 codes (``code``), local extensions stay home.
2. **Send** every unacknowledged batch of the target in the order built, the oldest first: after
   an outage everything left over goes out, in order, exactly once per batch id. Each batch is
   one HTTP POST (token from the environment variable named in the settings), retried with
   exponential backoff; the ``batch_id`` (a hash of the batch's content) travels in the body and
   in ``Idempotency-Key``, so a resend of a batch the platform already has (its answer was lost)
   is recognised there and never duplicated. A batch counts as delivered only when the platform
   answers 2xx with JSON ``{"batch_id": <the id>, "status": "accepted" | "duplicate"}``. When a
   batch fails, the later batches of that target wait (their order matters: a withdrawal must
   not overtake the record it withdraws).

The payload (with full identifiers) is kept only in the internal table ``push_batches`` and sent
only to the configured endpoint; nothing is written to a folder. Every attempt is written to
``push_audit`` (counts, status, no identifiers).

Layouts: ``json`` — ``{"batch_id", "region_code", "feed", "catalog_item", "records": [{code:
value}], "withdrawals": [{key codes…, "CXYY": reason}]}``; ``csv`` — UTF-8 with BOM, header row
of codes plus ``CZLX`` (操作类型: ``I`` upsert, ``D`` withdraw) and ``CXYY`` (撤回原因), one line
per record. Dates are ``YYYY-MM-DD``, amounts plain decimals.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Mapping

import requests

from contracts.config import PushTarget
from contracts.model import Contract, Registry
from warehouse.db import connect
from warehouse.feed_tables import current_table, q
from warehouse.layout import DataDir

log = logging.getLogger(__name__)

ACTION_CODE = "CZLX"  # 操作类型 (I: new or changed, D: withdrawn)
REASON_CODE = "CXYY"  # 撤回原因
REASON_LABEL = {"revoked": "撤销", "repaired": "信用修复"}


class PushConfigError(ValueError):
    """A push target that cannot be used as configured (e.g. its token variable is unset)."""


def field_code(f) -> str:
    return f.code or f.name


def pushable_feeds(target: PushTarget, contracts: dict[str, Contract]) -> list[str]:
    """The target's feeds, default: every records feed whose national fields all carry a
    standard code (the 双公示 feeds of the 790号 layout)."""
    if target.feeds:
        return [f for f in target.feeds if f in contracts]
    return [
        feed for feed, c in contracts.items()
        if c.role == "records" and c.national_fields and all(f.code for f in c.national_fields)
    ]


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (date, datetime)):
        return value.isoformat()[:10]
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text
    return str(value)


@dataclass
class Item:
    key: str
    action: str  # upsert | withdraw
    reason: str | None
    fingerprint: str
    row: dict[str, str | None]  # code -> value (withdraw: key fields only)


def current_state(con, contract: Contract, contracts: dict[str, Contract]) -> list[tuple[str, dict, str | None]]:
    """(key, {code: value} of the national fields, withdraw reason or None) per current record.

    The reason comes from the one record status (``warehouse.record_status``): 已撤销 (the
    department's own status, or an objection decided 撤销) → revoked; 已修复 (an eligible repair)
    → repaired."""
    from warehouse.record_status import REPAIRED, REVOKED, status_sql

    cols = [f for f in contract.national_fields]
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if current_table(contract.feed) not in tables:
        return []
    reason_sql = f"CASE s._status WHEN '{REVOKED}' THEN 'revoked' WHEN '{REPAIRED}' THEN 'repaired' END"
    sql = (f"SELECT s._key, {', '.join('s.' + q(f.name) for f in cols)}, {reason_sql} AS _reason "
           f"FROM ({status_sql(contract, contracts)}) s WHERE s._key IS NOT NULL ORDER BY s._key")
    out = []
    for row in con.execute(sql).fetchall():
        values = {field_code(f): _text(v) for f, v in zip(cols, row[1:-1])}
        out.append((row[0], values, row[-1]))
    return out


def _fingerprint(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:32]


def build_items(con, target: PushTarget, contract: Contract, contracts: dict[str, Contract]) -> list[Item]:
    """What changed since the last batch queued for ``target`` (see the module docstring)."""
    last = {
        key: (action, fp)
        for key, action, fp in con.execute(
            "SELECT i._key, arg_max(i.action, b.seq), arg_max(i.fingerprint, b.seq) FROM push_items i "
            "JOIN push_batches b USING (batch_id) WHERE i.target = ? AND i.feed = ? GROUP BY i._key",
            [target.name, contract.feed],
        ).fetchall()
    }
    key_codes = [field_code(contract.field(k)) for k in contract.business_key]
    items: list[Item] = []
    for key, values, reason in current_state(con, contract, contracts):
        prev = last.get(key)
        if reason:
            if prev and prev[0] == "upsert":
                row = {c: values.get(c) for c in key_codes}
                items.append(Item(key, "withdraw", reason, _fingerprint({"withdraw": reason, **row}), row))
            continue
        fp = _fingerprint(values)
        if prev is None or prev[0] == "withdraw" or prev[1] != fp:
            items.append(Item(key, "upsert", None, fp, values))
    return items


def batch_id_for(target: PushTarget, feed: str, items: list[Item]) -> str:
    h = hashlib.sha256(f"{target.name}\n{feed}\n".encode())
    for it in sorted(items, key=lambda i: (i.key, i.action)):
        h.update(f"{it.key}\t{it.action}\t{it.fingerprint}\n".encode())
    return h.hexdigest()[:32]


def render_payload(fmt: str, batch_id: str, contract: Contract, registry: Registry, items: list[Item]) -> bytes:
    if fmt == "json":
        body = {
            "batch_id": batch_id,
            "region_code": registry.region_code,
            "region": registry.region,
            "feed": contract.feed,
            "catalog_item": contract.catalog_item or contract.title,
            "records": [it.row for it in items if it.action == "upsert"],
            "withdrawals": [{**it.row, REASON_CODE: REASON_LABEL[it.reason]} for it in items if it.action == "withdraw"],
        }
        return json.dumps(body, ensure_ascii=False, sort_keys=False).encode("utf-8")
    codes = [field_code(f) for f in contract.national_fields]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(codes + [ACTION_CODE, REASON_CODE])
    for it in items:
        writer.writerow([it.row.get(c) or "" for c in codes]
                        + ["I" if it.action == "upsert" else "D", REASON_LABEL.get(it.reason or "", "")])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def queue_night(con, target: PushTarget, contracts: dict[str, Contract], registry: Registry, night: date) -> list[str]:
    """Build and queue the night's batches for ``target`` (one per feed with changes)."""
    made = []
    for feed in pushable_feeds(target, contracts):
        contract = contracts[feed]
        items = build_items(con, target, contract, contracts)
        if not items:
            continue
        bid = batch_id_for(target, feed, items)
        if con.execute("SELECT 1 FROM push_batches WHERE batch_id = ?", [bid]).fetchone():
            continue
        seq = con.execute("SELECT coalesce(max(seq), 0) + 1 FROM push_batches WHERE target = ?", [target.name]).fetchone()[0]
        payload = render_payload(target.format, bid, contract, registry, items)
        ups = sum(it.action == "upsert" for it in items)
        con.execute(
            "INSERT INTO push_batches (batch_id, target, feed, seq, night, records, withdrawals, format, payload, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
            [bid, target.name, feed, seq, night, ups, len(items) - ups, target.format, payload],
        )
        con.executemany(
            "INSERT INTO push_items VALUES (?, ?, ?, ?, ?, ?, ?)",
            [[bid, target.name, feed, it.key, it.action, it.reason, it.fingerprint] for it in items],
        )
        made.append(bid)
    return made


@dataclass
class SendResult:
    target: str
    queued: list[str] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        line = (f"推送 {self.target}：新建 {len(self.queued)} 批，确认 {len(self.acknowledged)} 批，"
                f"待重发 {len(self.pending)} 批")
        return "\n".join([line] + [f"  {e}" for e in self.errors])


def _audit(con, target: PushTarget, batch, attempt: int, status: int | None, outcome: str, message: str | None) -> None:
    bid, feed, records, withdrawals, size = batch
    con.execute("INSERT INTO push_audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [datetime.now(), target.name, target.url, bid, feed, attempt, status, outcome, records, withdrawals,
                 size, message])


def _post(session: requests.Session, target: PushTarget, bid: str, payload: bytes, token: str | None):
    headers = {
        "Content-Type": "application/json; charset=utf-8" if target.format == "json" else "text/csv; charset=utf-8",
        "Idempotency-Key": bid,
        "X-Batch-Id": bid,
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return session.post(target.url, data=payload, headers=headers, timeout=target.timeout_seconds)


def send_pending(con, target: PushTarget, env: Mapping[str, str] | None = None, *,
                 sleep=time.sleep, session: requests.Session | None = None) -> SendResult:
    """Send every unacknowledged batch of ``target``, oldest first (see the module docstring)."""
    env = os.environ if env is None else env
    result = SendResult(target.name)
    batches = con.execute(
        "SELECT batch_id, feed, records, withdrawals, octet_length(payload), payload, attempts FROM push_batches "
        "WHERE target = ? AND status = 'pending' ORDER BY seq", [target.name]).fetchall()
    token = env.get(target.token_env) if target.token_env else None
    if target.token_env and not token:
        msg = f"未设置推送令牌环境变量 {target.token_env}，本次未推送"
        for b in batches:
            _audit(con, target, b[:5], b[6], None, "skipped", msg)
        result.pending = [b[0] for b in batches]
        result.errors.append(msg)
        return result
    own = session is None
    session = session or requests.Session()
    try:
        for i, (bid, feed, records, withdrawals, size, payload, attempts) in enumerate(batches):
            batch = (bid, feed, records, withdrawals, size)
            acked, error = False, None
            for attempt in range(1, target.max_attempts + 1):
                attempts += 1
                status = None
                try:
                    resp = _post(session, target, bid, bytes(payload), token)
                    status = resp.status_code
                    if 200 <= status < 300:
                        try:
                            receipt = resp.json()
                        except ValueError:
                            receipt = None
                        if isinstance(receipt, dict) and receipt.get("batch_id") == bid and receipt.get("status") in ("accepted", "duplicate"):
                            con.execute("UPDATE push_batches SET status = 'acknowledged', attempts = ?, last_error = NULL, "
                                        "acknowledged_at = ?, receipt = ? WHERE batch_id = ?",
                                        [attempts, datetime.now(), json.dumps(receipt, ensure_ascii=False), bid])
                            _audit(con, target, batch, attempts, status, "acknowledged", None)
                            acked = True
                            break
                        error = f"平台应答无法确认批次（HTTP {status}）"
                    else:
                        error = f"平台返回 HTTP {status}"
                except requests.RequestException as exc:
                    error = f"无法连接推送地址（{type(exc).__name__}）"
                _audit(con, target, batch, attempts, status, "failed", error)
                retryable = status is None or status in (408, 429) or status >= 500 or 200 <= status < 300
                if not retryable or attempt == target.max_attempts:
                    break
                sleep(target.backoff_seconds * (2 ** (attempt - 1)))
            if acked:
                result.acknowledged.append(bid)
                continue
            con.execute("UPDATE push_batches SET attempts = ?, last_error = ? WHERE batch_id = ?", [attempts, error, bid])
            result.errors.append(f"批次 {bid[:12]}（{feed}）未送达：{error}；下次运行将按顺序重发")
            result.pending = [b[0] for b in batches[i:]]
            break
    finally:
        if own:
            session.close()
    return result


def push_night(data_dir: DataDir, night: date, contracts: dict[str, Contract], registry: Registry,
               targets: list[PushTarget], env: Mapping[str, str] | None = None, *, sleep=time.sleep) -> list[SendResult]:
    """The night's push: queue what changed, then send everything unacknowledged, per target."""
    results = []
    if not targets:
        return results
    with connect(data_dir) as con:
        for target in targets:
            con.execute("BEGIN")
            queued = queue_night(con, target, contracts, registry, night)
            con.execute("COMMIT")
            res = send_pending(con, target, env, sleep=sleep)
            res.queued = queued
            results.append(res)
    return results
