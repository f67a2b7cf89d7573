"""Shared helpers for the validate tests (hand-built staged frames)."""
from __future__ import annotations

import os
from datetime import date

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import pandas as pd
from stdnum.cn import uscc


RECEIVED = date(2026, 6, 10)
AUTH = "11500237743131669T"


def make_uscc(first17: str) -> str:
    return first17 + uscc.calc_check_digit(first17)


GOOD_PENALTY = dict(
    subject_name="巫山县某某商贸有限公司", subject_kind="法人及非法人组织", subject_uscc="91500105MA5UM6TF71",
    legal_rep="张三", decision_no="巫市监罚〔2026〕1号", violation_type="未按规定公示", violation_facts="事实",
    penalty_basis="《某法》第十条", penalty_category="罚款;警告", penalty_content="罚款1万元", fine_amount="1",
    decision_date="2026-05-20", penalty_valid_until="2099-12-31", display_end="2026-11-20",
    authority="巫山县市场监督管理局", authority_uscc=AUTH, source_unit="巫山县市场监督管理局", source_unit_uscc=AUTH,
)
GOOD_SUBSIDY = dict(
    claim_no="BT-1", county="巫山县", township="龙门街道", recipient_name="李四", recipient_kind="自然人",
    recipient_id_no="11010519491231002X",
    subsidy_type="耕地地力保护补贴", contracted_area="8", transferred_in_area="1", subsidised_area="9", rate="100",
    total_subsidy="900", payment_date="2026-06-01", granting_unit="巫山县农业农村委员会",
    granting_unit_uscc="1150023740505826XK",
)


def staged(contract, rows, received=RECEIVED, file_id="file-a", dept="scjgj", source="报送.csv"):
    """A staged frame as ingest writes it: contract fields as strings (null when empty) + lineage."""
    df = pd.DataFrame([{f: r.get(f) for f in contract.field_names} for r in rows], dtype="object")
    df = df.astype("str").where(df.notna(), None) if len(df) else df
    df["_file_id"] = [r.get("_file_id", file_id) for r in rows]
    df["_row_no"] = pd.array([r.get("_row_no", i + 2) for i, r in enumerate(rows)], dtype="int64")
    df["_dept"] = dept
    df["_feed"] = contract.feed
    df["_received_date"] = received
    df["_source_name"] = source
    df["_extra"] = None
    return df


def fixed_ric(body17: str) -> str:
    from stdnum.cn import ric

    return body17 + ric.calc_check_digit(body17 + "0")
