"""Identifiers for the sample feeds: USCCs and resident ID numbers with correct check digits.

The sample data must be *valid* except where a defect is injected on purpose, otherwise the
truth table lies. Check digits therefore come from python-stdnum (`stdnum.cn.uscc`,
`stdnum.cn.ric`), never from arithmetic written here. The one exception is the GB 11714
organisation-code check (USCC positions 9–17): no maintained library provides it, so
`gb11714_check` below is a tiny helper kept next to the only place that needs it.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from functools import lru_cache

from stdnum.cn import ric, uscc

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
PLACEHOLDER_USCC = "00000000000000000X"

# Divisions with codes that are valid today (GB/T 2260); the county itself first.
HOME_DIVISION = "500237"  # 巫山县
OTHER_DIVISIONS = ["500101", "500103", "500238", "420502", "510104", "110105", "440305"]

# 巫山县 changed code twice (四川省万县地区 → 万县市 → 重庆市); a resident ID keeps the code
# in force when it was assigned, and stdnum checks that, so pick the code by birth year.
_WUSHAN_BY_ERA = [(1997, "500237"), (1992, "511226"), (0, "512227")]

_GB11714_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

# Cached validators: each generated code is checked when made and again by the oracle.
is_valid_uscc = lru_cache(maxsize=1 << 17)(uscc.is_valid)
is_valid_ric = lru_cache(maxsize=1 << 17)(ric.is_valid)


def gb11714_check(body8: str) -> str:
    """Check character of an 8-character organisation code body (GB 11714-1997).

    Hand-written because python-stdnum has no ``cn.orgcode`` module; kept minimal and
    covered by the generator's self-check (every generated USCC is re-validated).
    """
    total = sum(int(c, 36) * w for c, w in zip(body8, _GB11714_WEIGHTS))
    c = 11 - total % 11
    return {10: "X", 11: "0"}.get(c, str(c))


def org_code(rng: random.Random) -> str:
    body = "".join(rng.choice("0123456789") for _ in range(8))
    if body[0] == "0":
        body = "M" + body[1:]  # codes issued since 2013 often start with a letter
    return body + gb11714_check(body)


def make_uscc(rng: random.Random, prefix: str, division: str | None = None) -> str:
    """A USCC with a valid GB 11714 organisation-code part and a valid GB 32100 check."""
    division = division or (HOME_DIVISION if rng.random() < 0.85 else rng.choice(OTHER_DIVISIONS))
    first17 = prefix + division + org_code(rng)
    code = first17 + uscc.calc_check_digit(first17)
    assert is_valid_uscc(code), code
    return code


def wrong_check_uscc(rng: random.Random, code: str) -> str:
    """Same code with a different (wrong) final check character; prefix and body unchanged."""
    good = code[-1]
    return code[:-1] + rng.choice([c for c in USCC_ALPHABET if c != good])


def make_ric(rng: random.Random, *, today: date, min_age: int = 18, max_age: int = 75, local: float = 0.85) -> str:
    """An 18-digit resident ID number (GB 11643) that python-stdnum accepts."""
    born = today - timedelta(days=rng.randint(min_age * 366, max_age * 365))
    if rng.random() < local:
        division = next(code for since, code in _WUSHAN_BY_ERA if born.year >= since)
    else:
        division = rng.choice(["110105", "310104"])  # valid for every birth year used
    body = f"{division}{born:%Y%m%d}{rng.randint(0, 999):03d}"
    number = body + ric.calc_check_digit(body + "0")
    assert is_valid_ric(number), number
    return number


def wrong_check_ric(number: str) -> str:
    """Same number with a wrong check character (stdnum rejects it)."""
    good = number[-1]
    bad = "0" if good != "0" else "1"
    return number[:-1] + bad
