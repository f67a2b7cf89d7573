"""Defects injected into sample rows, each with the error rule ids it must trigger.

Every defect is derived from the contract (field flags and cross-field rule kinds), so a new
contract gets defects without code. A defect returns the rule ids it *intends*; the generator
keeps it only when the oracle (sample_oracle) agrees exactly, so a defect never triggers a
second rule by accident (e.g. a 92-prefixed code with a wrong check digit stays 个体工商户).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable

from contracts.model import Contract, Field
from pipelines.samples import ids as ids
from pipelines.samples.oracle import display_range, holds, parse_date, parse_num, row_errors

Record = dict[str, str | None]


@dataclass
class Row:
    """One data row: canonical values, fields written verbatim (no rendering noise), truth."""

    rec: Record
    received: date
    raw: set[str]
    defect: str = ""
    intended: frozenset[str] = frozenset()
    duplicate_of: "Row | None" = None
    decided: date | None = None  # the intended decision date (the ledger counts by its month)
    resend: bool = False  # a later version of an earlier record (e.g. arrears now paid)


def _referenced(contract: Contract) -> set[str]:
    """Fields other rules depend on; defects that blank or corrupt them would cascade."""
    names: set[str] = set()
    for f in contract.fields:
        for c in (f.required_when, f.empty_when):
            if c:
                names.add(c.field)
    for r in contract.rules:
        names |= set(r.fields) | set(r.minus)
        names |= {n for n in (r.category_field, r.when.field if r.when else None) if n}
    if contract.display:
        d = contract.display
        names |= {n for n in (d.end_field, d.tier_field) if n} | {c.field for c in d.minor_when}
    return names


Defect = Callable[[random.Random, Contract, Row], "set[str] | None"]


def missing_required(rng, contract, row):
    skip = _referenced(contract) | set(contract.business_key)
    names = [f.name for f in contract.fields if f.required and row.rec.get(f.name) is not None
             and (f.name not in skip or f.name == contract.clock_field)]
    if not names:
        return None
    name = rng.choice(names)
    row.rec[name] = None
    row.raw.add(name)
    return {f"{name}.required"}


def missing_conditional(rng, contract, row):
    fs = [f for f in contract.fields if f.required_when and row.rec.get(f.name) is not None
          and holds(f.required_when, row.rec, contract)]
    if not fs:
        return None
    f = rng.choice(fs)
    row.rec[f.name] = None
    return {f"{f.name}.required_when"}


def enum_invalid(rng, contract, row):
    skip = _referenced(contract)
    fs = [f for f in contract.fields if f.enum and f.name not in skip and not f.multi_value_separator]
    if not fs:
        return None
    f = rng.choice(fs)
    row.rec[f.name] = rng.choice(["其它", "不详", "未知类别"])
    return {f"{f.name}.enum"}


def _date_fields(contract: Contract, row: Row) -> list[Field]:
    return [f for f in contract.fields if f.type == "date" and parse_date(row.rec.get(f.name))]


def impossible_date(rng, contract, row):
    fs = _date_fields(contract, row)
    if not fs:
        return None
    f = rng.choice(fs)
    year = parse_date(row.rec[f.name]).year
    row.rec[f.name] = rng.choice([f"{year}-02-30", f"{year}-04-31", f"{year}-13-01"])
    row.raw.add(f.name)
    return {f"{f.name}.type"}


def sentinel_date(rng, contract, row):
    fs = _date_fields(contract, row)
    if not fs:
        return None
    f = rng.choice(fs)
    row.rec[f.name] = rng.choice(["1900-01-01", "1899-12-31"])
    row.raw.add(f.name)
    return {f"{f.name}.sentinel"}


def future_date(rng, contract, row):
    fs = [f for f in _date_fields(contract, row) if f.not_future]
    if not fs:
        return None
    f = rng.choice(fs)
    row.rec[f.name] = (row.received + timedelta(days=rng.randint(3, 40))).isoformat()
    return {f"{f.name}.future"}


def _ident_fields(contract: Contract, row: Row, kind: str) -> list[Field]:
    return [f for f in contract.fields if f.identifier and f.identifier.kind == kind and f.identifier.severity == "error"
            and row.rec.get(f.name) and holds(f.identifier.when, row.rec, contract)]


def bad_uscc_check(rng, contract, row):
    fs = _ident_fields(contract, row, "uscc")
    if not fs:
        return None
    f = rng.choice(fs)
    row.rec[f.name] = ids.wrong_check_uscc(rng, row.rec[f.name])
    return {f"{f.name}.uscc"}


def placeholder_uscc(rng, contract, row):
    fs = [f for f in _ident_fields(contract, row, "uscc") if f.name not in contract.business_key]
    if not fs:
        return None
    f = fs[0]
    row.rec[f.name] = ids.PLACEHOLDER_USCC
    return {f"{f.name}.uscc"}


def bad_ric(rng, contract, row):
    fs = _ident_fields(contract, row, "ric")
    if not fs:
        return None
    f = rng.choice(fs)
    row.rec[f.name] = ids.wrong_check_ric(row.rec[f.name])
    return {f"{f.name}.ric"}


def bad_pattern(rng, contract, row):
    fs = [f for f in contract.fields if f.pattern and row.rec.get(f.name)]
    if not fs:
        return None
    f = rng.choice(fs)
    v = row.rec[f.name]
    row.rec[f.name] = rng.choice([v.replace("-", ""), v[:4] + "-13", v.replace("-", "年") + "月"])
    row.raw.add(f.name)
    return {f"{f.name}.pattern"}


def out_of_range(rng, contract, row):
    fs = [f for f in contract.fields if f.minimum is not None and row.rec.get(f.name) is not None]
    if not fs:
        return None
    f = rng.choice(fs)
    row.rec[f.name] = "0" if f.minimum > 0 else "-" + (row.rec[f.name] or "1").lstrip("-")
    if row.rec[f.name] in ("-0", "-0.0", "-0.00"):
        row.rec[f.name] = "-1"
    # a 0 or negative amount is also below a listing threshold that reads the field
    below = {r.id for r in _rules(contract, "requires_any") if f.name in r.fields}
    return {f"{f.name}.range"} | (below & row_errors(contract, row.rec, row.received))


def too_long(rng, contract, row):
    skip = _referenced(contract) | set(contract.business_key)
    fs = [f for f in contract.fields if f.max_length and f.type == "string" and not f.enum
          and row.rec.get(f.name) and f.name not in skip and f.max_length <= 600]
    if not fs:
        return None
    f = rng.choice(fs)
    v = row.rec[f.name]
    row.rec[f.name] = (v + "（详见附件）") * (f.max_length // max(len(v), 1) + 2)
    return {f"{f.name}.length"}


def _rules(contract: Contract, kind: str):
    return [r for r in contract.rules if r.kind == kind and r.severity == "error"]


def date_order(rng, contract, row):
    rules = [r for r in _rules(contract, "date_order") if all(parse_date(row.rec.get(n)) for n in r.fields[:2])]
    if not rules:
        return None
    r = rng.choice(rules)
    first = parse_date(row.rec[r.fields[0]])
    row.rec[r.fields[1]] = (first - timedelta(days=rng.randint(10, 90))).isoformat()
    out = {r.id}
    # an end date before the decision is also outside every display range
    out |= {d.id for d in _rules(contract, "display_period") if d.fields[1] == r.fields[1]}
    return out


def when_contains(rng, contract, row):
    rules = [r for r in _rules(contract, "required_when_contains") if holds(r.when, row.rec, contract)
             and row.rec.get(r.fields[0]) is not None]
    if not rules:
        return None
    r = rng.choice(rules)
    f = contract.field(r.fields[0])
    row.rec[f.name] = "0" if f.type in ("decimal", "integer") and rng.random() < 0.3 else None
    return {r.id}


def prefix_mismatch(rng, contract, row):
    rules = [r for r in _rules(contract, "prefix_matches") if row.rec.get(r.fields[0]) and row.rec.get(r.category_field)]
    if not rules:
        return None
    r = rng.choice(rules)
    is_cat = row.rec[r.category_field] == r.category_value
    prefix = "91" if is_cat else r.prefix
    row.rec[r.fields[0]] = ids.make_uscc(rng, prefix) if len(prefix) == 2 else None
    return {r.id} if row.rec[r.fields[0]] else None


def display_out_of_range(rng, contract, row):
    rules = _rules(contract, "display_period")
    if not rules or not contract.display:
        return None
    rng_ = display_range(contract, row.rec)
    if rng_ is None:
        return None
    r = rules[0]
    row.rec[r.fields[1]] = (rng_[1] + timedelta(days=rng.randint(20, 200))).isoformat()
    return {r.id}


def area_over_cap(rng, contract, row):
    rules = [r for r in _rules(contract, "not_greater")
             if parse_num(row.rec.get(r.fields[0])) is not None and parse_num(row.rec.get(r.fields[1])) is not None]
    if not rules:
        return None
    r = rng.choice(rules)
    cap = sum(parse_num(row.rec.get(n)) or 0 for n in r.fields[1:]) - sum(parse_num(row.rec.get(n)) or 0 for n in r.minus)
    row.rec[r.fields[0]] = f"{cap + rng.randint(2, 40):.1f}"
    return {r.id}


def listing_not_met(rng, contract, row):
    """A record below every alternative of a requires_any rule (e.g. arrears under the listing
    threshold): each at_least field lowered below its smallest threshold, or emptied when the
    rule does not need it."""
    rules = [r for r in _rules(contract, "requires_any") if all(row.rec.get(n) is not None for n in r.fields)]
    if not rules:
        return None
    r = rng.choice(rules)
    limits: dict[str, float] = {}
    for group in r.any_of:
        for c in group:
            if c.at_least is not None:
                limits[c.field] = min(limits.get(c.field, c.at_least), c.at_least)
    for name, limit in limits.items():
        f = contract.field(name)
        if name not in r.fields:
            row.rec[name] = None
        elif f.type == "integer":
            row.rec[name] = str(max(int(limit) - 1, int(f.minimum or 0)))
        else:
            row.rec[name] = f"{max(limit * rng.uniform(0.2, 0.9), f.minimum or 0.01):.2f}"
    return {r.id}


# name -> (function, weight). "duplicate" is handled by the file assembler (needs two rows).
DEFECTS: dict[str, tuple[Defect, int]] = {
    "missing_required": (missing_required, 14),
    "missing_conditional": (missing_conditional, 6),
    "enum_invalid": (enum_invalid, 8),
    "impossible_date": (impossible_date, 6),
    "sentinel_date": (sentinel_date, 5),
    "future_date": (future_date, 3),
    "bad_uscc_check": (bad_uscc_check, 10),
    "placeholder_uscc": (placeholder_uscc, 4),
    "bad_ric": (bad_ric, 8),
    "bad_pattern": (bad_pattern, 8),
    "out_of_range": (out_of_range, 6),
    "too_long": (too_long, 2),
    "date_order": (date_order, 6),
    "required_when_contains": (when_contains, 8),
    "prefix_mismatch": (prefix_mismatch, 5),
    "display_out_of_range": (display_out_of_range, 8),
    "area_over_cap": (area_over_cap, 10),
    "listing_not_met": (listing_not_met, 8),
    "duplicate": (None, 6),  # type: ignore[dict-item]
}


def order(rng: random.Random) -> list[str]:
    """Defect names in a weighted random order (first applicable and oracle-confirmed wins)."""
    names = list(DEFECTS)
    keys = {n: rng.random() ** (1.0 / DEFECTS[n][1]) for n in names}
    return sorted(names, key=lambda n: -keys[n])
