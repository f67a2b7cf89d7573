"""The province inbox: county pushes → one frame per feed, validated by the county's contracts.

Layout (PROVINCE.md): ``<data dir>/inbox/<county code>/<YYYY-MM-DD received day>/<batch_id>.json``,
each file exactly the body a county POSTed (``assets/push/push.py``: ``batch_id``,
``region_code``, ``feed``, ``catalog_item``, ``records`` [{790号 code: value}], ``withdrawals``
[{key codes…, ``CXYY``: reason}]).

:func:`read_county_day` maps the codes back to the contract's field names (generic: each field's
``code``, else its name), builds a frame shaped like the county's staged rows (ARCHITECTURE.md
"Staged rows": every contract field as text, lineage ``_file_id`` = batch id, ``_row_no`` = the
1-based record index in the batch, ``_received_date`` = the province's received day) and runs
the SAME validation engine (``assets.validate.engine.validate_frame``) the county runs. Every
row ends loaded or quarantined with a Chinese reason; rows in = loaded + quarantined is checked.

Choices where the issue is silent:

- A withdrawal is loaded as a row with ``action = 'withdraw'`` and its key fields only; the
  lake's current view (``lake.register_lake``) drops a key whose latest row is a withdrawal. On
  one received day a withdrawal wins over an upsert of the same key (a county withdraws only a
  record it pushed before). A withdrawal without its key fields is quarantined.
- A batch file that is not valid JSON, names an unknown feed, or whose ``region_code`` differs
  from its inbox folder is quarantined whole: one quarantine row per record it holds (one row
  for an unreadable file), so nothing disappears without a reason.
- Codes the contract does not know are kept as JSON text in ``extra`` (never dropped).
- ``dept`` (the department a row is measured under) is the deciding authority named in the
  record: the contract's ``authority_field`` (处罚机关/许可机关); '' when the contract has none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Mapping

import pandas as pd

from assets.validate.engine import validate_frame
from contracts.model import Contract
from warehouse.masking import scrub_text

INBOX = "inbox"
WITHDRAW_RULE = "withdraw.key"  # a withdrawal without its key fields (not a received record row)
WITHDRAW_REASON = "CXYY"  # 撤回原因 (assets/push/push.py REASON_CODE)

# lake columns added to the contract's fields (records_<feed>)
RECORD_META = ["county_code", "received_day", "batch_id", "row_number", "record_key", "action",
               "withdraw_reason", "dept", "warnings", "extra"]
# PROVINCE.md's quarantine columns, plus the row's authority and business key (when readable),
# which the county figures need to count quarantined rows per department and record
QUARANTINE_COLUMNS = ["county_code", "received_day", "feed", "batch_id", "row_number", "rule_ids", "reasons",
                      "dept", "record_key"]


def inbox_root(data_dir: str | Path) -> Path:
    return Path(data_dir) / INBOX


def county_day_dir(data_dir: str | Path, county: str, day: date | str) -> Path:
    return inbox_root(data_dir) / county / str(day)[:10]


def inbox_partitions(data_dir: str | Path) -> list[tuple[str, str]]:
    """(county, day) folders present in the inbox, sorted (what the sensor and the CLI see)."""
    root = inbox_root(data_dir)
    out = []
    for cdir in sorted(root.iterdir()) if root.is_dir() else []:
        if not (cdir.is_dir() and cdir.name.isdigit() and len(cdir.name) == 6):
            continue
        for ddir in sorted(cdir.iterdir()):
            try:
                date.fromisoformat(ddir.name)
            except ValueError:
                continue
            if ddir.is_dir():
                out.append((cdir.name, ddir.name))
    return out


def field_code(f) -> str:
    return f.code or f.name


@dataclass
class FeedFrames:
    feed: str
    loaded: pd.DataFrame  # contract field names (text) + RECORD_META
    quarantined: pd.DataFrame  # QUARANTINE_COLUMNS
    rows_in: int = 0

    @property
    def records_loaded(self) -> int:
        return int((self.loaded["action"] == "upsert").sum()) if len(self.loaded) else 0


@dataclass
class CountyDay:
    county: str
    day: date
    feeds: dict[str, FeedFrames] = field(default_factory=dict)
    batches: list[str] = field(default_factory=list)
    # rows of batches that could not be attributed to a known feed (feed '' or unknown)
    stray: pd.DataFrame = None

    @property
    def rows_in(self) -> int:
        return sum(f.rows_in for f in self.feeds.values()) + len(self.stray)

    @property
    def loaded(self) -> int:
        return sum(len(f.loaded) for f in self.feeds.values())

    @property
    def quarantined(self) -> int:
        return sum(len(f.quarantined) for f in self.feeds.values()) + len(self.stray)

    def check(self) -> None:
        if self.rows_in != self.loaded + self.quarantined:
            raise AssertionError(f"{self.county} {self.day}: 行数不守恒：收到 {self.rows_in}，"
                                 f"入库 {self.loaded} + 隔离 {self.quarantined}")


def _text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        v = "是" if v else "否"
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, (dict, list)):
        v = json.dumps(v, ensure_ascii=False)
    s = str(v).strip()
    return s or None


def _quarantine_rows(county: str, day: date, feed: str, batch: str, n: int, rule: str, reason: str) -> list[dict]:
    return [{"county_code": county, "received_day": day, "feed": feed, "batch_id": batch,
             "row_number": i, "rule_ids": rule, "reasons": reason} for i in range(1, n + 1)]


def _empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype="object") for c in QUARANTINE_COLUMNS})


def _records_frame(contract: Contract, county: str, day: date, batch: str, records: list) -> tuple[pd.DataFrame, list[dict]]:
    """Staged-shaped frame of a batch's records; rows that are not JSON objects → quarantine rows."""
    by_code = {field_code(f): f.name for f in contract.fields}
    by_code.update({f.name: f.name for f in contract.fields})
    rows, bad = [], []
    for i, rec in enumerate(records, start=1):
        if not isinstance(rec, dict):
            bad.append({"county_code": county, "received_day": day, "feed": contract.feed, "batch_id": batch,
                        "row_number": i, "rule_ids": "batch.record",
                        "reasons": "该条记录不是键值对象，无法识别字段"})
            continue
        row = {f.name: None for f in contract.fields}
        extra = {}
        for code, value in rec.items():
            name = by_code.get(code)
            if name is None:
                extra[code] = _text(value)
            else:
                row[name] = _text(value)
        row["_row_no"] = i
        row["_extra"] = json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else None
        rows.append(row)
    df = pd.DataFrame(rows, columns=[f.name for f in contract.fields] + ["_row_no", "_extra"])
    df = df.astype({f.name: "object" for f in contract.fields})
    df["_file_id"] = batch
    df["_feed"] = contract.feed
    df["_received_date"] = pd.Series([day] * len(df), dtype="object")
    df["_source_name"] = f"{batch}.json"
    auth = contract.authority_field
    df["_dept"] = df[auth].fillna("") if auth else ""
    return df, bad


def key_of(contract: Contract, row: Mapping) -> str | None:
    parts = [row.get(k) for k in contract.business_key]
    if any(p is None for p in parts):
        return None
    return "|".join(parts)


def _reasons(failures: pd.DataFrame, contract: Contract) -> dict[tuple[str, int], tuple[str, str]]:
    """(batch, row) → (rule ids, Chinese reasons) of the rows' errors (values already masked by the engine)."""
    labels = {f.name: f.label for f in contract.fields}
    out: dict[tuple[str, int], tuple[list, list]] = {}
    errs = failures[failures["severity"] == "error"]
    for fid, row_no, rule, fname, msg, value in zip(errs["_file_id"], errs["_row_no"], errs["rule_id"],
                                                     errs["field"], errs["message"], errs["value"]):
        ids, texts = out.setdefault((fid, int(row_no)), ([], []))
        ids.append(rule)
        text = scrub_text(str(msg))
        if fname and value is not None and value == value:
            text += f"（{labels.get(fname, fname)}：{scrub_text(str(value))}）"
        texts.append(text)
    return {k: (";".join(i), "；".join(t)) for k, (i, t) in out.items()}


def _feed_frames(contract: Contract, county: str, day: date, docs: list[tuple[str, dict]]) -> FeedFrames:
    frames, qrows, wrows = [], [], []
    rows_in = 0
    key_codes = {k: field_code(contract.field(k)) for k in contract.business_key}
    for batch, doc in docs:
        records = doc.get("records") or []
        withdrawals = doc.get("withdrawals") or []
        rows_in += len(records) + len(withdrawals)
        df, bad = _records_frame(contract, county, day, batch, records)
        frames.append(df)
        qrows += bad
        for j, w in enumerate(withdrawals, start=len(records) + 1):
            row = {k: _text(w.get(code, w.get(k))) if isinstance(w, dict) else None for k, code in key_codes.items()}
            key = key_of(contract, row)
            if key is None:
                missing = "、".join(contract.field(k).label for k, v in row.items() if v is None)
                qrows.append({"county_code": county, "received_day": day, "feed": contract.feed, "batch_id": batch,
                              "row_number": j, "rule_ids": WITHDRAW_RULE,
                              "reasons": f"撤回记录缺少主键字段：{missing}，无法确定撤回哪条记录"})
                continue
            wrows.append({**{f.name: None for f in contract.fields}, **row, "county_code": county, "received_day": day,
                          "batch_id": batch, "row_number": j, "record_key": key, "action": "withdraw",
                          "withdraw_reason": _text(w.get(WITHDRAW_REASON)), "dept": "", "warnings": None,
                          "extra": None})
    staged = pd.concat(frames, ignore_index=True) if frames else None
    loaded = []
    if staged is not None and len(staged):
        result = validate_frame(contract, staged)
        p = result.passed
        out = p[[f.name for f in contract.fields]].copy()
        out["county_code"] = county
        out["received_day"] = day
        out["batch_id"] = p["_file_id"].to_numpy()
        out["row_number"] = p["_row_no"].astype("int64").to_numpy()
        out["record_key"] = [key_of(contract, r) for r in out[contract.business_key].to_dict("records")]
        out["action"] = "upsert"
        out["withdraw_reason"] = None
        out["dept"] = p["_dept"].to_numpy()
        out["warnings"] = p["_warnings"].to_numpy()
        out["extra"] = p["_extra"].to_numpy()
        loaded.append(out)
        reasons = _reasons(result.failures, contract)
        qd = result.quarantined
        qkeys = [key_of(contract, r) for r in qd[contract.business_key].to_dict("records")]
        for fid, row_no, dept, key in zip(qd["_file_id"], qd["_row_no"], qd["_dept"], qkeys):
            ids, text = reasons.get((fid, int(row_no)), ("?", "校验未通过"))
            qrows.append({"county_code": county, "received_day": day, "feed": contract.feed, "batch_id": fid,
                          "row_number": int(row_no), "rule_ids": ids, "reasons": text, "dept": dept,
                          "record_key": key})
    if wrows:
        loaded.append(pd.DataFrame(wrows))
    cols = [f.name for f in contract.fields] + RECORD_META
    frame = (pd.concat(loaded, ignore_index=True)[cols] if loaded
             else pd.DataFrame({c: pd.Series([], dtype="object") for c in cols}))
    frame = frame.sort_values(["batch_id", "row_number"], kind="stable").reset_index(drop=True)
    quarantined = pd.DataFrame(qrows, columns=QUARANTINE_COLUMNS) if qrows else _empty_quarantine()
    quarantined = quarantined.sort_values(["batch_id", "row_number"], kind="stable").reset_index(drop=True)
    return FeedFrames(contract.feed, frame, quarantined, rows_in)


def read_county_day(data_dir: str | Path, county: str, day: date | str, contracts: Mapping[str, Contract]) -> CountyDay:
    """Every batch of one county × received day, validated per feed (see the module docstring)."""
    day = date.fromisoformat(str(day)[:10])
    folder = county_day_dir(data_dir, county, day)
    out = CountyDay(county, day)
    per_feed: dict[str, list[tuple[str, dict]]] = {}
    stray: list[dict] = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        batch = path.stem
        out.batches.append(batch)
        try:
            doc = json.loads(path.read_bytes().decode("utf-8-sig"))
            if not isinstance(doc, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError) as exc:
            # one row (number 0) stands for the whole unreadable file
            stray.append({"county_code": county, "received_day": day, "feed": "", "batch_id": batch,
                          "row_number": 0, "rule_ids": "batch.unreadable",
                          "reasons": f"批次文件无法解析为 JSON 对象（{type(exc).__name__}），整批未入库"})
            continue
        feed = str(doc.get("feed") or "")
        n = len(doc.get("records") or []) + len(doc.get("withdrawals") or [])
        if feed not in contracts:
            stray += _quarantine_rows(county, day, feed, batch, n, "batch.feed",
                                      f"未知信息类别「{feed}」，整批未入库")
            continue
        if str(doc.get("region_code")) != county:
            stray += _quarantine_rows(county, day, feed, batch, n, "batch.region",
                                      f"批次的行政区划代码 {doc.get('region_code')} 与收件目录 {county} 不符，整批未入库")
            continue
        per_feed.setdefault(feed, []).append((str(doc.get("batch_id") or batch), doc))
    for feed in sorted(per_feed):
        out.feeds[feed] = _feed_frames(contracts[feed], county, day, per_feed[feed])
    out.stray = pd.DataFrame(stray, columns=QUARANTINE_COLUMNS) if stray else _empty_quarantine()
    out.check()
    return out


def count_batch_rows(data_dir: str | Path, county: str, day: date | str) -> int:
    """Rows in the county × day's batch files, counted straight from the files (records plus
    withdrawals; an unreadable file counts 1): the conservation check's side."""
    n = 0
    folder = county_day_dir(data_dir, county, day)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            doc = json.loads(path.read_bytes().decode("utf-8-sig"))
            rows = len(doc.get("records") or []) + len(doc.get("withdrawals") or [])
            n += rows
        except (ValueError, UnicodeDecodeError, AttributeError):
            n += 1
    return n


def quarantine_frame(cd: CountyDay) -> pd.DataFrame:
    """All quarantined rows of a county × day (every feed plus stray batches), in a stable order."""
    parts = [f.quarantined for f in cd.feeds.values() if len(f.quarantined)] + ([cd.stray] if len(cd.stray) else [])
    if not parts:
        return _empty_quarantine()
    df = pd.concat(parts, ignore_index=True)
    return df.sort_values(["feed", "batch_id", "row_number"], kind="stable").reset_index(drop=True)


__all__ = ["CountyDay", "FeedFrames", "QUARANTINE_COLUMNS", "RECORD_META", "county_day_dir", "inbox_partitions",
           "inbox_root", "key_of", "quarantine_frame", "read_county_day"]
