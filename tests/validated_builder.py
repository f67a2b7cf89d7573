"""Build validated/<feed>/received_date=<d>/{passed,quarantined,failures}.parquet to the interface
in ARCHITECTURE.md (contract fields as strings + lineage), for load/measure/publish tests."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# the failures schema is the interface (ARCHITECTURE.md, "Validated rows"): take it from the
# stage that produces it rather than restating it here
from assets.validate.engine import FAILURE_SCHEMA
from contracts.model import Contract
from warehouse.layout import DataDir


def file_id(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def staged_table(contract: Contract, rows: list[dict], day: date, *, with_warnings: bool) -> pa.Table:
    cols: dict[str, pa.Array] = {}
    for f in contract.fields:
        cols[f.name] = pa.array([None if r.get(f.name) is None else str(r[f.name]) for r in rows], pa.string())
    cols["_file_id"] = pa.array([r["_file_id"] for r in rows], pa.string())
    cols["_row_no"] = pa.array([int(r["_row_no"]) for r in rows], pa.int64())
    cols["_dept"] = pa.array([r["_dept"] for r in rows], pa.string())
    cols["_feed"] = pa.array([contract.feed] * len(rows), pa.string())
    cols["_received_date"] = pa.array([day] * len(rows), pa.date32())
    cols["_source_name"] = pa.array([r.get("_source_name", "sub.csv") for r in rows], pa.string())
    cols["_extra"] = pa.array([r.get("_extra") for r in rows], pa.string())
    if with_warnings:
        cols["_warnings"] = pa.array([r.get("_warnings") for r in rows], pa.string())
    return pa.table(cols)


def write_validated(
    data_dir: DataDir,
    contract: Contract,
    day: date,
    passed: list[dict] = (),
    quarantined: list[dict] = (),
    failures: list[dict] = (),
) -> Path:
    d = data_dir.validated_dir(contract.feed, day)
    d.mkdir(parents=True, exist_ok=True)
    pq.write_table(staged_table(contract, list(passed), day, with_warnings=True), d / "passed.parquet")
    pq.write_table(staged_table(contract, list(quarantined), day, with_warnings=False), d / "quarantined.parquet")
    frows = [
        {
            "_file_id": f["_file_id"],
            "_row_no": int(f["_row_no"]),
            "_dept": f.get("_dept"),
            "feed": contract.feed,
            "rule_id": f["rule_id"],
            "field": f.get("field"),
            "severity": f.get("severity", "error"),
            "message": f.get("message", "错误"),
            "value": f.get("value"),
        }
        for f in failures
    ]
    pq.write_table(pa.Table.from_pylist(frows, schema=FAILURE_SCHEMA), d / "failures.parquet")
    return d


AUTH_A = "11500237743131669T"  # 市场监管局 (sample USCC from departments.yaml)
AUTH_B = "11500237267889435N"  # 交通运输局


def permit(no: str, decided: date | str, *, dept: str = "scjgj", fid: str = "f1", row: int = 2, **over) -> dict:
    r = {
        "subject_name": "巫山县某某商贸有限公司",
        "subject_kind": "法人及非法人组织",
        "subject_uscc": "91500237MA5U123456",
        "legal_rep": "张三",
        "legal_rep_id_type": "身份证",
        "legal_rep_id_no": "500237198001011234",
        "decision_doc_name": "食品经营许可决定书",
        "decision_no": no,
        "permit_category": "普通",
        "permit_content": "食品销售",
        "decision_date": str(decided),
        "valid_from": str(decided),
        "valid_to": "2099-12-31",
        "authority": "巫山县市场监督管理局",
        "authority_uscc": AUTH_A if dept == "scjgj" else AUTH_B,
        "status": "有效",
        "source_unit": "巫山县市场监督管理局",
        "source_unit_uscc": AUTH_A,
        "_file_id": file_id(fid),
        "_row_no": row,
        "_dept": dept,
    }
    r.update(over)
    return r


def penalty(no: str, decided: date | str, *, dept: str = "scjgj", fid: str = "p1", row: int = 2, **over) -> dict:
    d = date.fromisoformat(str(decided))
    r = {
        "subject_name": "李四",
        "subject_kind": "自然人",
        "subject_id_type": "身份证",
        "subject_id_no": "50023719900307123X",
        "decision_no": no,
        "violation_type": "无证经营",
        "violation_facts": "未取得许可从事经营",
        "penalty_basis": "《食品安全法》第一百二十二条",
        "penalty_category": "罚款",
        "penalty_content": "罚款0.5万元",
        "fine_amount": "0.5000",
        "decision_date": str(d),
        "penalty_valid_until": "2099-12-31",
        "display_end": str(date(2099, 12, 31)),
        "authority": "巫山县市场监督管理局",
        "authority_uscc": AUTH_A,
        "source_unit": "巫山县市场监督管理局",
        "source_unit_uscc": AUTH_A,
        "procedure_kind": "一般程序",
        "publicity_status": "正常",
        "_file_id": file_id(fid),
        "_row_no": row,
        "_dept": dept,
    }
    r.update(over)
    return r


def declaration(month: str, feed: str, count: int, *, dept: str = "scjgj", fid: str = "d1", row: int = 2) -> dict:
    return {"month": month, "target_feed": feed, "declared_count": str(count), "_file_id": file_id(fid), "_row_no": row, "_dept": dept}


def days(start: date, n: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]
