"""An independent, deliberately simple reading of the rule semantics in ARCHITECTURE.md.

The generator uses it as a self-check: every row it writes is evaluated here on its
*canonical* values (what ingest must produce after normalisation), and a row whose intended
defect does not yield exactly the intended error rule ids is regenerated. So truth.csv never
claims a rule that the written semantics would not fire, and clean rows are provably clean.
It is not the validator (assets/validate owns that); it is the generator's second opinion,
and the timeliness helper (deadline, late) that truth.csv needs.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from contracts.model import Condition, Contract, Field
from pipelines.samples.ids import is_valid_ric, is_valid_uscc

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# every row is checked twice (at creation and when truth is written) and authority codes repeat
_CHECKS = {"uscc": is_valid_uscc, "ric": is_valid_ric}
SENTINEL_BEFORE = date(1900, 1, 2)


# -- values ------------------------------------------------------------------------------
def parse_date(v: str | None) -> date | None:
    """A usable date: ISO, a real day, not a sentinel. Anything else counts as missing."""
    if v is None or not ISO.match(v):
        return None
    try:
        d = date.fromisoformat(v)
    except ValueError:
        return None
    return d if d >= SENTINEL_BEFORE else None


def parse_num(v: str | None) -> Decimal | None:
    if v is None:
        return None
    try:
        n = Decimal(v)
    except InvalidOperation:
        return None
    return n if n.is_finite() else None


def parts(f: Field, v: str) -> list[str]:
    return [p for p in v.split(";")] if f.multi_value_separator else [v]


def holds(c: Condition | None, rec: dict[str, str | None], contract: Contract) -> bool:
    if c is None:
        return True
    v = rec.get(c.field)
    if v is None:
        return False
    ps = set(parts(contract.field(c.field), v))
    if c.equals is not None:
        return v == c.equals
    if c.in_ is not None:
        return v in c.in_
    if c.not_in is not None:
        return v not in c.not_in
    if c.contains_any is not None:
        return bool(ps & set(c.contains_any))
    if c.at_least is not None:
        n = parse_num(v)
        return n is not None and n >= Decimal(str(c.at_least))
    return bool(ps) and ps <= set(c.subset_of or [])


def add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    y, m = d.year + y, m + 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


# -- timeliness --------------------------------------------------------------------------
def is_workday(d: date) -> bool:
    """State Council calendar where chinesecalendar covers the year, Monday–Friday otherwise."""
    try:
        import chinese_calendar

        return chinese_calendar.is_workday(d)
    except NotImplementedError:
        return d.weekday() < 5


def deadline(contract: Contract, decided: date) -> date | None:
    """Last on-time received day: the n-th (working) day after the decision, day 0 not counted."""
    if not contract.deadline:
        return None
    n = contract.deadline.days
    if contract.deadline.kind == "calendar":
        d = decided + timedelta(days=n)
        while contract.deadline.extend_over_holidays and not is_workday(d):  # 民法典 第二百零三条
            d += timedelta(days=1)
        return d
    d = decided
    while n:
        d += timedelta(days=1)
        n -= is_workday(d)
    return d


def late(contract: Contract, rec: dict[str, str | None], received: date) -> bool | None:
    """True/False, or None when there is no deadline or no usable clock date (incl. future)."""
    if not contract.clock_field or not contract.deadline:
        return None
    decided = parse_date(rec.get(contract.clock_field))
    if decided is None or decided > received:
        return None
    return received > deadline(contract, decided)


# -- rules -------------------------------------------------------------------------------
def field_errors(contract: Contract, f: Field, rec: dict[str, str | None], received: date) -> set[str]:
    v = rec.get(f.name)
    out: set[str] = set()
    if v is None:
        if f.required:
            out.add(f"{f.name}.required")
        elif f.required_when and holds(f.required_when, rec, contract):
            out.add(f"{f.name}.required_when")
        return out
    if f.empty_when and holds(f.empty_when, rec, contract):
        out.add(f"{f.name}.empty_when")
    if f.enum is not None:
        if any(p not in f.enum and not any(p.startswith(x) for x in f.enum_allow_prefix) for p in parts(f, v)):
            out.add(f"{f.name}.enum")
    if f.pattern and not re.fullmatch(f.pattern, v):
        out.add(f"{f.name}.pattern")
    if (f.min_length is not None and len(v) < f.min_length) or (f.max_length is not None and len(v) > f.max_length):
        out.add(f"{f.name}.length")
    if f.type == "date":
        try:
            d = date.fromisoformat(v) if ISO.match(v) else None
        except ValueError:
            d = None
        if d is None:
            out.add(f"{f.name}.type")
        elif d < SENTINEL_BEFORE:
            out.add(f"{f.name}.sentinel")
        elif f.not_future and d > received:
            out.add(f"{f.name}.future")
    if f.type in ("decimal", "integer"):
        n = parse_num(v)
        if n is None or (f.type == "integer" and n != n.to_integral_value()):
            out.add(f"{f.name}.type")
        elif (f.minimum is not None and n < Decimal(str(f.minimum))) or (
            f.maximum is not None and n > Decimal(str(f.maximum))
        ):
            out.add(f"{f.name}.range")
    ident = f.identifier
    if ident and ident.severity == "error" and holds(ident.when, rec, contract):
        ok = _CHECKS[ident.kind](v) if ident.kind in _CHECKS else True
        if not ok:
            out.add(f"{f.name}.{ident.kind}")
    return out


def _tier(contract: Contract, rec: dict[str, str | None]) -> str:
    pol = contract.display
    tier_value = rec.get(pol.tier_field) if pol.tier_field else None
    if tier_value:
        return tier_value
    if any(holds(c, rec, contract) for c in pol.minor_when):
        return "轻微"
    return pol.default_tier


def display_range(contract: Contract, rec: dict[str, str | None]) -> tuple[date, date] | None:
    """[earliest, latest] allowed display end for this record, or None without a decision date."""
    pol = contract.display
    if pol is None:
        return None
    rule = next((r for r in contract.rules if r.kind == "display_period"), None)
    decided = parse_date(rec.get(rule.fields[0] if rule else contract.clock_field))
    if decided is None:
        return None
    tiers = {t.tier: t for t in pol.regime_for(decided).tiers}
    # a tier the regime in force lacks (轻微 before 2026-04-01) is judged as the default tier
    t = tiers.get(_tier(contract, rec)) or tiers.get(pol.default_tier)
    if t is None:
        return None
    return add_months(decided, t.min_months), add_months(decided, t.max_months)


def row_errors(contract: Contract, rec: dict[str, str | None], received: date) -> set[str]:
    """Error rule ids of one row, except unique_key (a property of the whole delivery)."""
    out: set[str] = set()
    for f in contract.fields:
        out |= field_errors(contract, f, rec, received)
    for r in contract.rules:
        if r.severity != "error":
            continue
        if r.kind == "date_order":
            a, b = (parse_date(rec.get(n)) for n in r.fields[:2])
            fire = a is not None and b is not None and a > b
        elif r.kind == "required_when_contains":
            v = rec.get(r.fields[0])
            n = parse_num(v)
            fire = holds(r.when, rec, contract) and (v is None or (n is not None and n <= 0))
        elif r.kind == "prefix_matches":
            v, cat = rec.get(r.fields[0]), rec.get(r.category_field)
            fire = v is not None and cat is not None and v.startswith(r.prefix) != (cat == r.category_value)
        elif r.kind == "display_period":
            rng = display_range(contract, rec) if contract.display else None
            end = parse_date(rec.get(r.fields[1]))
            fire = rng is not None and end is not None and not (rng[0] <= end <= rng[1])
        elif r.kind == "not_greater":
            first, second = parse_num(rec.get(r.fields[0])), parse_num(rec.get(r.fields[1]))
            if first is None or second is None:
                fire = False
            else:
                cap = sum((parse_num(rec.get(n)) or 0 for n in r.fields[1:]), Decimal(0))
                cap -= sum((parse_num(rec.get(n)) or 0 for n in r.minus), Decimal(0))
                fire = first > cap
        elif r.kind == "requires_any":
            have = all(
                (parse_num(rec.get(n)) is not None) if contract.field(n).type in ("decimal", "integer")
                else rec.get(n) is not None
                for n in r.fields
            )
            fire = have and not any(all(holds(c, rec, contract) for c in g) for g in r.any_of)
        else:  # unique_key: see duplicate_keys
            fire = False
        if fire:
            out.add(r.id)
    return out


def key_of(contract: Contract, rec: dict[str, str | None], fields: list[str] | None = None) -> tuple | None:
    vals = tuple(rec.get(n) for n in (fields or contract.business_key))
    return None if any(v is None for v in vals) else vals
