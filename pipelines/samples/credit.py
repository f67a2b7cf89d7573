"""Sample objections, red/black list entries and credit commitments for the generator.

They refer to records the generator already wrote (subjects and decision numbers), so the
nightly cross-comparison and the subject profile have something real to find:

- 异议 (role ``objection``): filed about an earlier valid record; sent again 2–5 days later with
  the department's decision (更正 / 撤销 / 维持) under the same 异议编号.
- 严重失信主体名单 (list, black): subjects of earlier records, mostly listed *before* the record's
  date (the listing arrives late), so a permit or subsidy to a listed subject is flagged.
- 红名单 (list, red): organisations seen earlier, A级纳税人 and similar.
- 信用承诺 (commitment): subjects of earlier records, dated before the record; the first of each
  file is a penalty's subject, so the commitment is found broken.

A separate random stream (seeded from the run's seed) keeps the other feeds' rows unchanged.
Every row is valid; the generator's oracle checks that when it writes truth.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from contracts.model import Contract, Department
from pipelines.samples import defects as defects

OUTCOMES = [("维持", 5), ("更正", 3), ("撤销", 2)]
RED_LISTS = ["A级纳税人", "守信激励对象", "诚信示范企业"]
COMMITMENT_KINDS = ["审批替代型", "容缺受理型", "行业自律型", "主动型"]


@dataclass
class CreditSampler:
    rng: random.Random
    pending: list[tuple[date, dict]] = field(default_factory=list)  # objections awaiting a decision
    seq: int = 0

    def next_no(self) -> int:
        self.seq += 1
        return self.seq


def sampler(gen) -> CreditSampler:
    if not hasattr(gen, "_credit_sampler"):
        gen._credit_sampler = CreditSampler(random.Random(f"{gen.summary.seed}-credit"))
    return gen._credit_sampler


def _subject(contract: Contract, rec: dict) -> dict | None:
    """Name, kind, USCC and ID number of a record's subject (None when the feed names none)."""
    s = contract.subject
    if s is None:
        return None
    uscc = rec.get(s.uscc_field) if s.uscc_field else None
    id_no = rec.get(s.id_field) if s.id_field else None
    if not (uscc or id_no) or not rec.get(s.name_field):
        return None
    kind = ("个体工商户" if uscc.startswith("92") else "法人及非法人组织") if uscc else "自然人"
    return {"subject_name": rec[s.name_field], "subject_kind": kind, "subject_uscc": uscc,
            "subject_id_no": None if uscc else id_no}


def _earlier(gen, day: date, feeds: set[str] | None = None) -> list[tuple[date, str, dict]]:
    return [x for x in gen.repairable if x[0] < day and (feeds is None or x[1] in feeds)
            and gen.contracts[x[1]].subject is not None]


def _clock(gen, feed: str, rec: dict) -> date | None:
    c = gen.contracts[feed]
    field_name = c.crosscheck.date_field if c.crosscheck else c.clock_field
    value = rec.get(field_name) if field_name else None
    return date.fromisoformat(value) if value else None


def _blank(contract: Contract) -> dict:
    return {f.name: None for f in contract.fields}


def credit_day(gen, contract: Contract, dept: Department, day: date, index: int) -> None:
    """Write the day's rows of one objection, list or commitment feed for ``dept`` (maybe none)."""
    from pipelines.samples.feeds import _File

    cs = sampler(gen)
    rows: list[dict] = []
    if contract.role == "objection":
        rows = _objections(gen, cs, contract, dept, day, index)
    elif contract.role == "list":
        rows = _listings(gen, cs, contract, dept, day, index)
    elif contract.role == "commitment":
        rows = _commitments(gen, cs, contract, dept, day, index)
    if not rows:
        return
    fmt = dept.delivery_for(contract.feed).format or "csv"
    f = _File(dept, contract, day, gen._file_name(contract, dept, day, 0, fmt))
    f.rows = [defects.Row(r, day, set()) for r in rows]
    gen._write(f, http=False)


def _objections(gen, cs: CreditSampler, contract: Contract, dept: Department, day: date, index: int) -> list[dict]:
    o = contract.objection
    out = []
    due = [(d, rec) for d, rec in cs.pending if d <= day]
    for d, rec in due:  # the department decided: the same 异议编号 again, with the outcome
        cs.pending.remove((d, rec))
        decided = dict(rec)
        decided[o.outcome_field] = cs.rng.choices([x for x, _ in OUTCOMES], weights=[w for _, w in OUTCOMES])[0]
        decided[o.outcome_date_field] = (day - timedelta(days=cs.rng.randint(0, 1))).isoformat()
        out.append(decided)
    allowed = set(contract.field(contract.target.feed_field).enum or [])
    earlier = _earlier(gen, day, allowed)
    if index > 0 and earlier and cs.rng.random() < 0.35:
        received, feed, target = cs.rng.choice(earlier)
        subj = _subject(gen.contracts[feed], target)
        tc = gen.contracts[feed]
        if subj:
            t = contract.target
            rec = _blank(contract) | subj
            rec[o.number_field] = f"YY{gen.ctx.region_code}{day:%Y}{cs.next_no():04d}"
            rec[t.feed_field] = feed
            rec[t.ref_field] = target.get(t.ref_field) if t.ref_field in tc.field_names else "|".join(
                target.get(k) or "" for k in tc.business_key)
            if t.authority_field and t.authority_field in tc.field_names:
                rec[t.authority_field] = target.get(t.authority_field)
            if o.reason_field:
                rec[o.reason_field] = cs.rng.choice(["处罚已履行完毕，申请核实", "记录中的主体名称有误", "该决定已被复议撤销", "金额填写错误"])
            rec[o.filed_field] = (day - timedelta(days=cs.rng.randint(0, min(3, (day - received).days)))).isoformat()
            rec["handling_unit"] = dept.name if "handling_unit" in contract.field_names else None
            out.append(rec)
            cs.pending.append((day + timedelta(days=cs.rng.randint(2, 5)), rec))
    return out


def _listings(gen, cs: CreditSampler, contract: Contract, dept: Department, day: date, index: int) -> list[dict]:
    li = contract.listing
    out = []
    black = li.colour == "black"
    if index == 0 or cs.rng.random() > (0.4 if black else 0.3):
        return out
    feeds = {c.feed for c in gen.contracts.values() if c.crosscheck is not None and c.role == "records"} if black else None
    earlier = _earlier(gen, day, feeds)
    if not black:
        earlier = [x for x in earlier if _subject(gen.contracts[x[1]], x[2]) and _subject(gen.contracts[x[1]], x[2])["subject_uscc"]]
    for _ in range(min(len(earlier), cs.rng.randint(1, 2))):
        received, feed, target = cs.rng.choice(earlier)
        subj = _subject(gen.contracts[feed], target)
        on = _clock(gen, feed, target) or received
        if not subj:
            continue
        rec = _blank(contract) | subj
        n = cs.next_no()
        if black:
            listed = on - timedelta(days=cs.rng.randint(1, 200)) if cs.rng.random() < 0.8 else day
            rec[li.list_field] = cs.rng.choice(["严重失信主体名单", "失信被执行人名单", "重大税收违法失信主体名单"])
            rec["decision_no"] = f"巫信列〔{listed.year}〕{n}号"
            rec["listing_reason"] = "因严重违法失信行为，依法列入严重失信主体名单"
            rec[li.authority_field] = dept.name
            rec["authority_uscc"] = dept.uscc
        else:
            listed = day - timedelta(days=cs.rng.randint(0, 5))
            rec[li.list_field] = cs.rng.choice(RED_LISTS)
            rec["decision_no"] = f"巫税信〔{listed.year}〕{n}号"
            rec[li.authority_field] = dept.name
            rec["authority_uscc"] = dept.uscc
            if cs.rng.random() < 0.5:
                rec[li.to_field] = date(listed.year + 1, 12, 31).isoformat()
        rec[li.from_field] = listed.isoformat()
        out.append(rec)
    return out


def _commitments(gen, cs: CreditSampler, contract: Contract, dept: Department, day: date, index: int) -> list[dict]:
    cm = contract.commitment
    if index == 0 or cs.rng.random() > 0.35:
        return []
    earlier = _earlier(gen, day, set(cm.broken_by) | {c.feed for c in gen.contracts.values() if c.crosscheck})
    # the first commitment of a file is always made by the subject of an earlier record of a
    # ``broken_by`` feed (a penalty), so even a short demo has a broken commitment to find
    breakers = [x for x in earlier if x[1] in cm.broken_by and _subject(gen.contracts[x[1]], x[2])]
    out = []
    for i in range(min(len(earlier), cs.rng.randint(1, 2))):
        received, feed, target = cs.rng.choice(breakers if i == 0 and breakers else earlier)
        subj = _subject(gen.contracts[feed], target)
        on = _clock(gen, feed, target) or received
        if not subj:
            continue
        rec = _blank(contract) | subj
        rec["commitment_no"] = f"CN{gen.ctx.region_code}{day:%Y}{cs.next_no():05d}"
        rec["commitment_kind"] = cs.rng.choice(COMMITMENT_KINDS)
        rec[cm.content_field] = "遵守法律法规，诚信经营，如违反承诺自愿接受相关部门依法依规实施的失信惩戒"
        rec[cm.date_field] = (on - timedelta(days=cs.rng.randint(5, 180))).isoformat()
        authority = gen.registry.departments[cs.rng.randrange(len(gen.registry.departments))]
        rec[cm.issuer_field] = authority.name
        rec["issuer_uscc"] = authority.uscc
        out.append(rec)
    return out
