"""Clean sample records, one builder per known feed, plus a contract-driven fallback.

A builder returns the record's *canonical* values (what ingest must produce after
normalisation), keyed by contract field name, with None for empty. Rendering noise (date
formats, aliases, spaces, full-width characters) is added later by the writers, and defects
by sample_defects, so "what the row means" is decided once, here. The known feeds get
realistic, mutually consistent values (categories ↔ fines, tiers ↔ display periods, subject
kind ↔ identifiers); a feed added to the catalog later still gets rows from `generic_record`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from faker import Faker

from contracts.model import Contract, Department, Field
from pipelines.samples import ids as ids
from pipelines.samples.oracle import add_months

Record = dict[str, str | None]

TOWNSHIPS = ["巫峡镇", "龙门街道", "高唐街道", "大昌镇", "福田镇", "龙溪镇", "双龙镇", "官渡镇", "骡坪镇",
             "庙宇镇", "铜鼓镇", "抱龙镇", "官阳镇", "两坪乡", "曲尺乡", "建平乡", "大溪乡", "平河乡", "竹贤乡"]
VILLAGES = ["青龙", "红岩", "新农", "龙泉", "桃花", "长岭", "石门", "柏杨", "金坪", "松树"]
DOC_ABBR = {"scjgj": "巫市监", "jtysj": "巫交", "sthjj": "巫环", "zfcxjw": "巫建", "yjglj": "巫应急",
            "swj": "巫税", "nyncw": "巫农"}

# (violation type, basis, industry of the offender) per department; "*" is the fallback.
VIOLATIONS = {
    "scjgj": [("销售过期食品", "《中华人民共和国食品安全法》第一百二十四条", "食品"),
              ("未按规定公示营业执照", "《中华人民共和国市场主体登记管理条例》第四十八条", "商贸"),
              ("虚假宣传", "《中华人民共和国反不正当竞争法》第二十条", "广告")],
    "jtysj": [("未取得道路运输经营许可擅自从事道路运输经营", "《中华人民共和国道路运输条例》第六十三条", "运输"),
              ("超限运输", "《公路安全保护条例》第六十四条", "物流")],
    "sthjj": [("未批先建", "《中华人民共和国环境影响评价法》第三十一条", "建材"),
              ("超标排放大气污染物", "《中华人民共和国大气污染防治法》第九十九条", "化工")],
    "zfcxjw": [("未取得施工许可证擅自施工", "《建筑工程施工许可管理办法》第十二条", "建筑"),
               ("违反建筑市场管理规定", "《建设工程质量管理条例》第五十六条", "建设")],
    "yjglj": [("未按规定开展安全生产教育培训", "《中华人民共和国安全生产法》第九十七条", "矿业"),
              ("未按规定配备安全生产管理人员", "《中华人民共和国安全生产法》第九十七条", "能源")],
    "swj": [("未按照规定期限办理纳税申报", "《中华人民共和国税收征收管理法》第六十二条", "贸易"),
            ("未按规定开具发票", "《中华人民共和国发票管理办法》第三十五条", "餐饮")],
    "nyncw": [("经营假劣农药", "《农药管理条例》第五十五条", "农资"),
              ("违规使用禁用渔具捕捞", "《中华人民共和国渔业法》第三十八条", "渔业")],
    "*": [("违反行政管理秩序", "《中华人民共和国行政处罚法》第九条", "商贸")],
}
PERMITS = {
    "scjgj": ("食品经营许可", "食品经营许可证", "JY1500237", "普通"),
    "jtysj": ("道路运输经营许可", "道路运输经营许可证", "YS500237", "普通"),
    "sthjj": ("建设项目环境影响评价文件审批", "环评批复", "HP500237", "核准"),
    "zfcxjw": ("建筑工程施工许可", "建筑工程施工许可证", "SG500237", "普通"),
    "nyncw": ("农药经营许可", "农药经营许可证", "NYJY500237", "普通"),
    "*": ("行政许可", "许可证", "XK500237", "普通"),
}
# (categories, weight, allowed for natural persons)
CATEGORY_MIX = [
    (["警告"], 14, True), (["罚款"], 44, True), (["警告", "罚款"], 10, True),
    (["罚款", "没收违法所得"], 10, True), (["通报批评"], 3, True), (["没收非法财物"], 3, True),
    (["责令停产停业"], 4, False), (["吊销许可证件"], 3, False), (["暂扣许可证件", "罚款"], 3, False),
    (["警告"], 6, True),  # second 警告 entry: 简易程序 cases are common
    (["暂扣或者吊销许可证件", "罚款"], 2, False),  # the 2016 law's category, still in older systems
]


@dataclass
class Ctx:
    """Everything a builder needs; counters keep document numbers unique per run."""

    rng: random.Random
    fake: Faker
    region: str
    region_code: str
    counters: dict[tuple, int] = field(default_factory=dict)

    def seq(self, *key) -> int:
        n = self.counters.get(key)
        n = self.rng.randint(20, 300) if n is None else n + 1
        self.counters[key] = n
        return n


def money(x: float) -> str:
    return f"{x:.2f}"


def wan(x: float) -> str:
    """Amount in 万元, trimmed the way clerks write it (0.5, 1.2, 3)."""
    return f"{x:.4f}".rstrip("0").rstrip(".")


def _subject(ctx: Ctx, kind: str, industry: str) -> Record:
    """Subject block shared by permits and penalties (and reused for arrears users)."""
    rng, fake = ctx.rng, ctx.fake
    rec: Record = {"subject_kind": kind}
    if kind == "法人及非法人组织":
        rec["subject_name"] = f"{rng.choice(['重庆', '巫山县', '重庆市'])}{fake.company_prefix()}{industry}有限公司"
        rec["subject_uscc"] = ids.make_uscc(rng, rng.choice(["91", "91", "91", "93", "52"]))
        rec["legal_rep"] = fake.name()
        if rng.random() < 0.5:
            rec["legal_rep_id_type"] = "身份证"
            rec["legal_rep_id_no"] = ids.make_ric(rng, today=date(2026, 1, 1), min_age=25)
        if rng.random() < 0.3:
            rec["org_code"] = rec["subject_uscc"][8:17]
    elif kind == "个体工商户":
        owner = fake.name()
        rec["subject_name"] = f"{ctx.region}{owner[0]}记{industry}{rng.choice(['店', '经营部', '商行'])}"
        rec["subject_uscc"] = ids.make_uscc(rng, "92")
        rec["legal_rep"] = owner
    else:
        rec["subject_name"] = fake.name()
        rec["subject_id_type"] = "身份证"
        rec["subject_id_no"] = ids.make_ric(rng, today=date(2026, 1, 1))
    return rec


def _kind(rng: random.Random, weights: tuple[int, int, int]) -> str:
    return rng.choices(["法人及非法人组织", "个体工商户", "自然人"], weights=weights)[0]


def _blank(contract: Contract) -> Record:
    return {f.name: None for f in contract.fields}


def penalty(ctx: Ctx, contract: Contract, dept: Department, decided: date) -> Record:
    rng = ctx.rng
    vtype, basis, industry = rng.choice(VIOLATIONS.get(dept.code, VIOLATIONS["*"]))
    kind = _kind(rng, (55, 25, 20))
    cats = rng.choices([c for c, _w, natural in CATEGORY_MIX if natural or kind != "自然人"],
                       weights=[w for _c, w, natural in CATEGORY_MIX if natural or kind != "自然人"])[0]
    rec = _blank(contract) | _subject(ctx, kind, industry)
    abbr = DOC_ABBR.get(dept.code, "巫")
    rec["decision_no"] = f"{abbr}罚〔{decided.year}〕{ctx.seq(dept.code, 'penalties', decided.year)}号"
    rec["violation_type"] = vtype
    rec["violation_facts"] = f"经查，当事人{rec['subject_name']}于{decided.year}年{decided.month}月存在{vtype}的行为。"
    rec["penalty_basis"] = basis
    rec["penalty_category"] = ";".join(cats)
    content = []
    if "罚款" in cats:
        fine = rng.choice([0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 3, 5, 10]) if kind != "自然人" else rng.choice([0.005, 0.01, 0.02, 0.05])
        rec["fine_amount"] = wan(fine)
        content.append(f"罚款人民币{wan(fine * 10000)}元")
    if any(c.startswith("没收") for c in cats):
        amount = round(rng.uniform(0.01, 2), 2)
        rec["confiscated_amount"] = wan(amount)
        content.append(f"没收违法所得及非法财物共计人民币{wan(amount * 10000)}元")
    if {"暂扣许可证件", "吊销许可证件", "暂扣或者吊销许可证件"} & set(cats):
        rec["suspended_licence"] = f"营业执照（{rec.get('subject_uscc') or '无'}）"
    content += [c for c in cats if c not in ("罚款", "没收违法所得", "没收非法财物")]
    rec["penalty_content"] = "；".join(content)
    simple = cats == ["警告"] and rng.random() < 0.6 or ("罚款" in cats and kind == "自然人" and rng.random() < 0.5)
    rec["procedure_kind"] = "简易程序" if simple else "一般程序"
    minor = simple or set(cats) <= {"警告", "通报批评"}
    tier = "轻微" if minor else ("严重" if {"吊销许可证件", "责令停产停业", "暂扣或者吊销许可证件"} & set(cats) else "一般")
    if rng.random() < 0.4 or (tier == "严重"):
        rec["severity_tier"] = tier  # otherwise the tier is inferred exactly as the policy says
    rec["decision_date"] = decided.isoformat()
    rec["penalty_valid_until"] = ("2099-12-31" if rng.random() < 0.1 else add_months(decided, rng.choice([6, 12, 36])).isoformat())
    regime = contract.display.regime_for(decided) if contract.display else None
    t = next((x for x in regime.tiers if x.tier == tier), None) if regime else None
    if t is None and regime:  # 轻微 before 2026-04-01: that regime judges it as the default tier
        t = next((x for x in regime.tiers if x.tier == contract.display.default_tier), None)
    if t is not None:
        months = rng.randint(t.min_months, t.max_months - 1)
        rec["display_end"] = (add_months(decided, months) + timedelta(days=rng.randint(1, 25))).isoformat()
    else:
        rec["display_end"] = add_months(decided, 12).isoformat()
    rec["authority"] = rec["source_unit"] = dept.name
    rec["authority_uscc"] = rec["source_unit_uscc"] = dept.uscc
    rec["publicity_status"] = "正常" if rng.random() < 0.7 else None
    rec["remarks"] = "当事人已履行" if rng.random() < 0.05 else None
    return rec


def permit(ctx: Ctx, contract: Contract, dept: Department, decided: date) -> Record:
    rng = ctx.rng
    item, cert, prefix, category = PERMITS.get(dept.code, PERMITS["*"])
    kind = _kind(rng, (60, 30, 10))
    industry = rng.choice(["商贸", "餐饮", "建设", "运输", "农业"])
    rec = _blank(contract) | _subject(ctx, kind, industry)
    abbr = DOC_ABBR.get(dept.code, "巫")
    n = ctx.seq(dept.code, "permits", decided.year)
    rec["decision_doc_name"] = f"准予{item}决定书"
    rec["decision_no"] = f"{abbr}许〔{decided.year}〕{n}号"
    rec["permit_category"] = category if rng.random() < 0.9 else "其他-备案"
    rec["certificate_name"] = cert
    rec["permit_no"] = f"{prefix}{decided.year}{n:05d}"
    rec["permit_content"] = f"准予{rec['subject_name']}{item}"
    rec["decision_date"] = rec["valid_from"] = decided.isoformat()
    rec["valid_to"] = "2099-12-31" if rng.random() < 0.1 else (add_months(decided, 60) - timedelta(days=1)).isoformat()
    rec["authority"] = rec["source_unit"] = dept.name
    rec["authority_uscc"] = rec["source_unit_uscc"] = dept.uscc
    rec["status"] = "有效"
    return rec


def utility_arrears(ctx: Ctx, contract: Contract, dept: Department, decided: date) -> Record:
    rng, fake = ctx.rng, ctx.fake
    fee = next((v for k, v in (("水", "水费"), ("电", "电费"), ("气", "燃气费")) if k in dept.name), "水费")
    kind = _kind(rng, (20, 10, 70))
    subj = _subject(ctx, kind, rng.choice(["餐饮", "商贸", "建材"]))
    rec = _blank(contract)
    rec["user_name"] = subj["subject_name"]
    rec["user_kind"] = kind
    rec["user_uscc"] = subj.get("subject_uscc")
    rec["user_id_no"] = subj.get("subject_id_no")
    letter = {"水费": "S", "电费": "D", "燃气费": "Q"}[fee]
    rec["account_no"] = f"{letter}{ctx.region_code}{ctx.seq(dept.code, 'account'):07d}"
    rec["fee_type"] = fee
    period = add_months(decided.replace(day=1), -rng.randint(2, 6))
    rec["billing_period"] = f"{period:%Y-%m}"
    low = 500 if kind == "自然人" else 1000
    if rng.random() < 0.15:  # listed for repeated arrears (3+ episodes), whatever the amount
        rec["arrears_count"] = str(rng.randint(3, 6))
        rec["arrears_amount"] = money(rng.uniform(50, low * 2))
        rec["reminder_count"] = str(rng.randint(0, 5))
    else:
        rec["arrears_amount"] = money(rng.uniform(low, low * 8))
        rec["reminder_count"] = str(rng.randint(2, 5))
        if rng.random() < 0.3:
            rec["arrears_count"] = str(rng.randint(1, 2))
    rec["payment_status"] = "未缴清" if rng.random() < 0.5 else None
    rec["determination_date"] = decided.isoformat()
    rec["determination_reason"] = "经两次以上催缴仍未缴纳，欠费金额达到认定标准"
    rec["determining_unit"] = dept.name
    rec["determining_unit_uscc"] = dept.uscc
    rec["phone"] = fake.phone_number()
    rec["address"] = f"{ctx.region}{rng.choice(TOWNSHIPS)}{fake.street_name()}{rng.randint(1, 300)}号"
    return rec


def agri_subsidy(ctx: Ctx, contract: Contract, dept: Department, decided: date) -> Record:
    rng, fake = ctx.rng, ctx.fake
    rec = _blank(contract)
    kind = rng.choices(["农机购置补贴", "耕地地力保护补贴", "种粮大户补贴"], weights=[30, 55, 15])[0]
    prefix = {"农机购置补贴": "NJ", "耕地地力保护补贴": "GD", "种粮大户补贴": "ZL"}[kind]
    rec["claim_no"] = f"{prefix}{ctx.region_code}{decided.year}{ctx.seq(dept.code, 'claim', decided.year):06d}"
    rec["county"] = ctx.region
    rec["township"] = rng.choice(TOWNSHIPS)
    rec["village"] = f"{rng.choice(VILLAGES)}村{rng.randint(1, 9)}组"
    # 农机购置补贴 and 种粮大户补贴 also go to cooperatives (93), companies (91) and family farms
    # registered as individual businesses (92)
    who = "自然人" if kind == "耕地地力保护补贴" else rng.choices(["自然人", "合作社", "企业", "家庭农场"], weights=[60, 20, 10, 10])[0]
    if who == "自然人":
        rec["recipient_kind"] = "自然人"
        rec["recipient_name"] = fake.name()
        rec["recipient_id_no"] = ids.make_ric(rng, today=date(2026, 1, 1), min_age=25)
    else:
        village = rng.choice(VILLAGES)
        rec["recipient_kind"] = "个体工商户" if who == "家庭农场" else "法人及非法人组织"
        rec["recipient_name"] = {"合作社": f"{ctx.region}{village}种植专业合作社", "企业": f"重庆{fake.company_prefix()}农业发展有限公司",
                                 "家庭农场": f"{ctx.region}{village}{fake.last_name()}家庭农场"}[who]
        rec["recipient_uscc"] = ids.make_uscc(rng, {"合作社": "93", "企业": "91", "家庭农场": "92"}[who])
    rec["subsidy_type"] = kind
    if kind == "农机购置补贴":
        item, model, price = rng.choice([("微耕机", "1WG-4.0", 3200), ("旋耕机", "1GQN-125", 8600),
                                         ("植保无人飞机", "3WWDZ-20A", 52000), ("谷物烘干机", "5H-12", 98000)])
        qty = rng.choice([1, 1, 1, 2])
        unit_subsidy = round(price * rng.uniform(0.2, 0.3), -1)
        rec.update(machine_item=item, manufacturer=f"重庆{fake.company_prefix()}机械有限公司", product_name=item,
                   machine_model=model, quantity=str(qty), dealer=f"{ctx.region}{fake.company_prefix()}农机经营部",
                   unit_price=money(price), unit_subsidy=money(unit_subsidy), total_subsidy=money(unit_subsidy * qty))
    else:
        contracted = round(rng.uniform(2, 30), 1)
        excluded = round(rng.uniform(0, 1), 1) if rng.random() < 0.3 else 0.0
        out = round(rng.uniform(0, contracted / 3), 1) if rng.random() < 0.2 else 0.0
        inflow = round(rng.uniform(20, 200), 1) if kind == "种粮大户补贴" else 0.0
        cap = contracted - excluded - out + inflow
        area = round(cap * rng.uniform(0.8, 1.0) - 0.05, 1)
        rate = rng.choice([105.5, 112.0, 120.0]) if kind == "耕地地力保护补贴" else rng.choice([50.0, 80.0, 100.0])
        rec.update(contracted_area=f"{contracted:.1f}", excluded_area=f"{excluded:.1f}", transferred_out_area=f"{out:.1f}",
                   transferred_in_area=f"{inflow:.1f}", subsidised_area=f"{max(area, 0.1):.1f}", rate=money(rate),
                   total_subsidy=money(max(area, 0.1) * rate))
    rec["status"] = "已发放"
    rec["payment_date"] = decided.isoformat()
    rec["granting_unit"] = dept.name
    rec["granting_unit_uscc"] = dept.uscc
    return rec


def _generic_value(ctx: Ctx, f: Field, decided: date, n: int) -> str | None:
    rng = ctx.rng
    if f.enum:
        return f.enum[0]
    if f.identifier and f.identifier.kind == "uscc":
        return ids.make_uscc(rng, "91")
    if f.identifier and f.identifier.kind == "ric":
        return ids.make_ric(rng, today=decided)
    if f.example is not None:
        return f.example
    if f.type == "date":
        return decided.isoformat()
    if f.type in ("decimal", "integer"):
        low = f.minimum if f.minimum is not None else 0
        return str(max(int(low) + 1, 1))
    if f.pattern and re.fullmatch(f.pattern, f"{decided:%Y-%m}"):
        return f"{decided:%Y-%m}"
    if f.type == "code":
        return f"{f.name[:2].upper()}{n:06d}"
    return f"{f.label}{n}"


def generic_record(ctx: Ctx, contract: Contract, dept: Department, decided: date) -> Record:
    """Fallback for a feed without a builder: required fields filled from types/enums/examples."""
    n = ctx.seq(dept.code, contract.feed)
    rec = _blank(contract)
    for f in contract.fields:
        if f.required or f.name in contract.business_key or f.name == contract.clock_field:
            rec[f.name] = _generic_value(ctx, f, decided, n)
    for f in contract.fields:  # fields the filled values make required (e.g. USCC of an organisation)
        if rec[f.name] is None and _holds(f.required_when, rec) and not _holds(f.empty_when, rec):
            rec[f.name] = _generic_value(ctx, f, decided, n)
    return rec


def _holds(cond, rec: Record) -> bool:
    """A simple (single-value) contract condition on the record being built."""
    if cond is None or rec.get(cond.field) is None:
        return False
    v = rec[cond.field]
    return (cond.equals is not None and v == cond.equals) or (cond.in_ is not None and v in cond.in_) or (
        cond.not_in is not None and v not in cond.not_in)


BUILDERS = {"penalties": penalty, "permits": permit, "utility_arrears": utility_arrears, "agri_subsidies": agri_subsidy}


def build(ctx: Ctx, contract: Contract, dept: Department, decided: date) -> Record:
    return BUILDERS.get(contract.feed, generic_record)(ctx, contract, dept, decided)
