"""The subject profile: all records of one subject across every feed, as the office knew them on a day.

``build_profile(con, contracts, subject, as_of)`` looks the subject up by its USCC or ID number
(the subject key of warehouse.record_status: USCC when a row has one, else the ID number) in
every feed whose contract names a subject, and returns:

- ``records``: each record of a ``records`` feed with its public status and cause on ``as_of``
  (公示中 / 已到期 / 已修复 / 已撤销 / 异议中 / 不予公示), its fields (personal fields masked, free
  text scrubbed: warehouse.masking), every version received by then (received day, file, which
  fields changed) and every status change logged by the nightly job up to then;
- ``lists``: red and black list entries, and whether the subject is on the list that day;
- ``commitments``: credit commitments, each 履约中 or 未履行 (with the penalty that broke it);
- ``objections`` and ``repairs`` about the subject's records (a repair says whether it was
  applied or was too early);
- ``flags``: the cross-comparison findings about the subject on that day.

``as_of`` defaults to today (China Standard Time). Output never shows a natural person's full
ID number: the identifier, every personal field and free text pass through warehouse.masking.

``run_profile`` is the command: it builds the profile, then registers the query (查询使用登记:
who, when, which subject, why) in the same connection, and only then returns the output, so no
profile leaves the program without its register row. A query that fails before output is not
registered (nothing was shown).
"""

from __future__ import annotations

import getpass
import json
import os
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from contracts.model import Contract
from warehouse.db import connect, require_warehouse
from warehouse.feed_tables import VERSION_ORDER, lit, q, versions_table
from warehouse.layout import DataDir
from warehouse.masking import mask, mask_field_value, scrub_text
from warehouse.record_status import (
    normalise_subject,
    repair_events_sql,
    status_sql,
)

TIMEZONE = "Asia/Shanghai"


class ProfileError(ValueError):
    """A query that cannot be answered; the message is Chinese, for the officer."""


def _text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return format(v.normalize(), "f")
    return str(v)


def _shown_fields(contract: Contract, row: dict) -> dict[str, str]:
    """Field label → value as it may be shown (masked / scrubbed), non-empty fields only."""
    out = {}
    for f in contract.fields:
        v = row.get(f.name)
        if v is None:
            continue
        out[f.label] = mask_field_value(_text(v), f)
    return out


def _rows(con, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _versions(con, contract: Contract, key: str, as_of: date) -> list[dict]:
    rows = _rows(
        con,
        f"SELECT * FROM {q(versions_table(contract.feed))} WHERE _key = ? AND _received_date <= ? ORDER BY {VERSION_ORDER}",
        [key, as_of],
    )
    out, prev = [], None
    for i, r in enumerate(rows, start=1):
        changed = [] if prev is None else [f.label for f in contract.fields if prev.get(f.name) != r.get(f.name)]
        out.append({"version": i, "received_date": _text(r["_received_date"]), "source_file": scrub_text(r["_source_name"]),
                    "department": r["_dept"], "changed_fields": changed,
                    "fields": _shown_fields(contract, r)})
        prev = r
    return out


def _status_log(con, feed: str, key: str, as_of: date) -> list[dict]:
    return [
        {"date": _text(r[0]), "status": r[1], "cause": scrub_text(r[2]), "event": r[3]}
        for r in con.execute(
            "SELECT as_of, status, cause, event FROM record_status_log WHERE feed = ? AND business_key = ? AND as_of <= ? "
            "ORDER BY as_of",
            [feed, key, as_of],
        ).fetchall()
    ]


def build_profile(con, contracts: dict[str, Contract], subject: str, as_of: date | None = None,
                  departments: dict[str, str] | None = None) -> dict:
    from assets.crosscheck.findings import findings_sql

    key = normalise_subject(subject)
    if not key:
        raise ProfileError("请提供统一社会信用代码或证件号码")
    as_of = as_of or datetime.now(ZoneInfo(TIMEZONE)).date()
    names: set[str] = set()
    person = False
    records, lists, commitments, objections, repairs = [], [], [], [], []
    record_keys: dict[str, list[str]] = {}
    flags_sql = findings_sql(contracts, as_of)
    flags = _rows(con, f"SELECT * FROM ({flags_sql}) WHERE subject_key = ? ORDER BY kind, feed, business_key",
                  [key]) if flags_sql else []
    for c in contracts.values():
        if c.subject is None or c.role not in ("records", "list", "commitment", "objection"):
            continue
        if c.role == "objection":
            from warehouse.record_status import rows_as_of, subject_key_sql

            rows = _rows(con, f"SELECT * FROM {rows_as_of(c, as_of)} l WHERE {subject_key_sql(c, 'l.')} = ?", [key])
        else:
            rows = _rows(con, f"SELECT * FROM ({status_sql(c, contracts, as_of)}) WHERE _subject_key = ? ORDER BY _key", [key])
        for r in rows:
            names.add(r[c.subject.name_field])
            uscc = r.get(c.subject.uscc_field) if c.subject.uscc_field else None
            person = person or not uscc
        if c.role == "records":
            for r in rows:
                record_keys.setdefault(c.feed, []).append(r["_key"])
                records.append({
                    "feed": c.feed, "title": c.title, "business_key": scrub_text(r["_key"]), "reference": scrub_text(_text(r["_ref"])),
                    "status": r["_status"], "status_cause": scrub_text(r["_status_cause"]),
                    "decision_date": _text(r.get(c.clock_field)) if c.clock_field else None,
                    "department": (departments or {}).get(r["_dept"], r["_dept"]), "fields": _shown_fields(c, r),
                    "versions": _versions(con, c, r["_key"], as_of),
                    "status_history": _status_log(con, c.feed, r["_key"], as_of),
                })
        elif c.role == "list":
            li = c.listing
            for r in rows:
                start, end = r[li.from_field], r[li.to_field]
                on = r["_used"] and start <= as_of and (end is None or end > as_of)
                lists.append({
                    "feed": c.feed, "title": c.title, "colour": "黑名单" if li.colour == "black" else "红名单",
                    "list": r[li.list_field], "authority": r[li.authority_field], "listed": _text(start),
                    "removed": _text(end), "on_list": bool(on), "status": r["_status"], "status_cause": scrub_text(r["_status_cause"]),
                    "business_key": r["_key"],
                })
        elif c.role == "commitment":
            cm = c.commitment
            for r in rows:
                broke = [f for f in flags if f["kind"] == "broken_commitment" and f["feed"] == c.feed and f["business_key"] == r["_key"]]
                commitments.append({
                    "feed": c.feed, "number": r["_key"], "date": _text(r[cm.date_field]),
                    "content": scrub_text(r[cm.content_field]), "issuer": r[cm.issuer_field],
                    "state": "未履行" if broke else "履约中",
                    "broken_by": [scrub_text(f["reason"]) for f in broke],
                })
        elif c.role == "objection":
            o = c.objection
            for r in rows:
                objections.append({
                    "feed": c.feed, "number": r[o.number_field], "about": f"{r[c.target.feed_field]} {scrub_text(r[c.target.ref_field])}",
                    "filed": _text(r[o.filed_field]), "outcome": r[o.outcome_field] or "处理中",
                    "outcome_date": _text(r[o.outcome_date_field]),
                    "reason": scrub_text(r[o.reason_field]) if o.reason_field else None,
                })
    for c in contracts.values():
        keys = record_keys.get(c.feed)
        sql = repair_events_sql(c, contracts, as_of) if keys else None
        if not sql:
            continue
        for r in _rows(con, f"SELECT * FROM ({sql}) WHERE _k IN ({', '.join(lit(k) for k in keys)}) ORDER BY _k, _on"):
            repairs.append({
                "feed": c.feed, "record": scrub_text(r["_k"]), "repair_date": _text(r["_on"]), "unit": r["_by"],
                "applied": bool(r["_ok"]), "minimum_display_until": _text(r["_min_end"]),
                "note": "已修复，停止公示" if r["_ok"] else f"早于最短公示期（{r['_min_text'] or ''}，至 {_text(r['_min_end'])}），不予修复",
            })
    shown = key if not person else mask(key, "id")
    return {
        "subject": {"identifier": shown, "names": sorted(n for n in names if n), "natural_person": person},
        "as_of": as_of.isoformat(),
        "records": records,
        "lists": lists,
        "commitments": commitments,
        "objections": objections,
        "repairs": repairs,
        "flags": [{"kind": f["kind_label"], "feed": f["feed"], "record": scrub_text(f["business_key"]),
                   "date": _text(f["event_date"]), "reason": scrub_text(f["reason"])} for f in flags],
    }


def count_rows(profile: dict) -> int:
    return sum(len(profile[k]) for k in ("records", "lists", "commitments", "objections", "repairs", "flags"))


def render_text(p: dict) -> str:
    s = p["subject"]
    lines = [f"信用档案：{'、'.join(s['names']) or '（未找到该主体）'}（{s['identifier']}）  查询日期：{p['as_of']}", ""]
    lines.append(f"一、信用记录（{len(p['records'])} 条）")
    for r in p["records"]:
        lines.append(f"  [{r['title']}] {r['reference']}  状态：{r['status']}（{r['status_cause']}）")
        lines.append(f"      决定日期 {r['decision_date'] or '—'}，报送部门 {r['department']}")
        for v in r["versions"]:
            change = f"，变更：{'、'.join(v['changed_fields'])}" if v["changed_fields"] else ""
            lines.append(f"      版本{v['version']}：{v['received_date']} 收到（{v['source_file']}）{change}")
        for h in r["status_history"]:
            lines.append(f"      {h['date']} {h['event']}：{h['status']}（{h['cause']}）")
    lines.append(f"二、红黑名单（{len(p['lists'])} 条）")
    for li in p["lists"]:
        state = "在列" if li["on_list"] else "不在列"
        lines.append(f"  [{li['colour']}] {li['list']}（{li['authority']}，{li['listed']} 列入"
                     f"{'，' + li['removed'] + ' 移出' if li['removed'] else ''}）：{state}，{li['status']}")
    lines.append(f"三、信用承诺（{len(p['commitments'])} 条）")
    for c in p["commitments"]:
        lines.append(f"  {c['number']} {c['date']}（{c['issuer']}）：{c['state']}")
        lines += [f"      {b}" for b in c["broken_by"]]
    lines.append(f"四、异议（{len(p['objections'])} 条）")
    for o in p["objections"]:
        lines.append(f"  {o['number']}：{o['about']}，{o['filed']} 提出，处理结果：{o['outcome']}"
                     f"{'（' + o['outcome_date'] + '）' if o['outcome_date'] else ''}")
    lines.append(f"五、信用修复（{len(p['repairs'])} 条）")
    for r in p["repairs"]:
        lines.append(f"  {r['record']} 修复日期 {r['repair_date']}：{r['note']}")
    lines.append(f"六、比对提示（{len(p['flags'])} 条）")
    for f in p["flags"]:
        lines.append(f"  [{f['kind']}] {f['reason']}")
    return "\n".join(lines)


def run_profile(data_dir, subject: str, *, fmt: str = "text", as_of: date | None = None, reason: str | None,
                operator: str | None = None, contracts: dict[str, Contract] | None = None) -> str:
    """Build the profile, register the query, return the output (text or JSON)."""
    from assets.credit_profile.audit import register_query
    from contracts import load_contracts

    if not reason or not reason.strip():
        raise ProfileError("必须用 --reason 说明查询事由（查询使用登记） / --reason is required")
    dd = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
    require_warehouse(dd)  # WarehouseMissing: the CLI says which data directory and what to do
    contracts = contracts or load_contracts()
    try:
        from contracts import load_registry

        depts = {d.code: d.name for d in load_registry(contracts=contracts).departments}
    except Exception:  # a registry that does not match these contracts: show department codes
        depts = {}
    os_user = _os_user()
    with connect(dd) as con:
        from warehouse.feed_tables import ensure_feed_tables

        ensure_feed_tables(con, contracts)
        profile = build_profile(con, contracts, subject, as_of, departments=depts)
        register_query(con, operator=(operator or os_user).strip(), os_user=os_user, subject=normalise_subject(subject),
                       reason=reason.strip(), as_of=as_of, fmt=fmt, records=count_rows(profile))
    if fmt == "json":
        return json.dumps(profile, ensure_ascii=False, indent=2)
    return render_text(profile)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment (some containers)
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


__all__ = ["ProfileError", "build_profile", "count_rows", "render_text", "run_profile"]
