"""Identifier checks (USCC, resident ID, organisation code), each a pure function of one value.

The rule engine applies them once per *distinct* value of a column and maps the answers back
(see ``rules._per_unique``), so their speed matters little; their correctness matters a lot.

- ``uscc_ok``: ``stdnum.cn.uscc.is_valid`` (with a faster equivalent path for compact values; GB 32100-2015: 18 characters of the alphabet
  without I O Z S V, digits in positions 1–8, mod-31 check).
- ``ric_ok``: a thin wrapper over ``stdnum.cn.ric``, because stdnum does not do what REFERENCE §4
  and ARCHITECTURE require:
  * 15-digit numbers (pre-1999 cards) are not handled by stdnum (``InvalidLength``): we convert
    them to 18 digits (century ``19`` inserted, check digit from ``stdnum.cn.ric.calc_check_digit``)
    and check the result.
  * lower-case ``x``: stdnum already upper-cases in ``compact``; kept.
  * stdnum checks the 6-digit area code against the *year of birth* and rejects anyone born before
    the code was created: every resident of this very county (500237 巫山县 has been a Chongqing
    code only since 1997) born before 1997 would be rejected, and ID numbers do not change when a
    county is renamed or regrouped. It also crashes (``KeyError``) on unknown county codes under a
    known province. We therefore use stdnum's check digit and birth date, and our own *lenient*
    area check: the province (positions 1–2) must be a known province code (stdnum's list, plus 83
    for Taiwan residence permits; 2023 foreign permanent-residence cards start with 9 followed by a
    province code); when stdnum knows the 6-digit code, it is rejected only if every period of
    that code *ended before* the year of birth (a number cannot be issued from an abolished code);
    a code created after the year of birth is tolerated. DISPUTED test lines decided by this:
    411082198901010002, 500154199301135886 and 110111198012010078 accepted; 110201199312010077
    rejected (昌平县 code abolished 1982, born 1993).
  * placeholders: a number whose first 17 digits (15 for old numbers) are one repeated digit is
    rejected (``111111111111111``, ``111111111111111111``; DISPUTED: hutool accepts the former).
- ``org_code_ok``: GB 11714 check character. python-stdnum has no module for the organisation code
  and no other maintained library on our list does, so the weighted sum is written here (weights
  3,7,9,10,5,8,4,2; check 11 − sum mod 11, 10 → X, 11 → 0); accepted forms ``XXXXXXXX-X`` and
  ``XXXXXXXXX``.
"""

from __future__ import annotations

import re
from functools import lru_cache

from stdnum import numdb
from stdnum.cn import ric as _ric
from stdnum.cn import uscc as _uscc
from stdnum.exceptions import ValidationError

_RIC_EXTRA_PROVINCES = {"83"}  # 台湾居民居住证 (830000), not in stdnum's province list


def _province_codes() -> frozenset[str]:
    db = numdb.get("cn/loc")
    out = set()
    for i in range(10, 100):
        code = f"{i:02d}"
        info = db.info(code + "0000")
        if info and info[0][0] == code and info[0][1].get("province"):
            out.add(code)
    return frozenset(out | _RIC_EXTRA_PROVINCES)


PROVINCES = _province_codes()


_USCC_PLAIN = re.compile(r"[0-9]{8}[0-9ABCDEFGHJKLMNPQRTUWXY]{10}")  # ASCII only: nothing for compact() to change
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # stdnum.cn.uscc._alphabet
_USCC_VALUE = {c: i for i, c in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_ok(value: str) -> bool:
    """``stdnum.cn.uscc.is_valid``. A value already in compact form (18 ASCII characters of the
    alphabet, digits first: nearly every value a night receives) is checked here with stdnum's
    weights and alphabet in a third of the time (the rule engine and the Data Docs validation
    check every distinct USCC of a night); anything else goes to stdnum itself."""
    if _USCC_PLAIN.fullmatch(value):
        total = sum(_USCC_VALUE[c] * w for c, w in zip(value, _USCC_WEIGHTS))
        return value[17] == _USCC_ALPHABET[(31 - total) % 31]
    return _uscc.is_valid(value)


@lru_cache(maxsize=None)  # a few thousand area codes at most; stdnum's lookup costs ~100 µs
def _county_periods(area: str) -> tuple[tuple[int | None, int | None], ...] | None:
    """Periods in which stdnum's table knows ``area``; None when it does not know the code."""
    info = {k: v for _part, props in numdb.get("cn/loc").info(area) for k, v in props.items()}
    county = info.get("county")
    if not county:
        return None
    periods = []
    for item in county.split(","):
        if not item.startswith("["):
            periods.append((None, None))
            continue
        span = item[1:].split("]")[0]
        start, _, end = span.partition("-")
        periods.append((int(start) if start else None, int(end) if end else None))
    return tuple(periods)  # immutable: the result is cached


def ric_to_18(value: str) -> str | None:
    """The 18-character form of a resident ID (15-digit numbers converted), or None if malformed."""
    number = _ric.compact(value)
    if len(number) == 15:
        if not number.isdigit():
            return None
        body = number[:6] + "19" + number[6:]
        return body + _ric.calc_check_digit(body + "0")
    if len(number) == 18 and number[:17].isdigit() and (number[17].isdigit() or number[17] == "X"):
        return number
    return None


def ric_ok(value: str) -> bool:
    number = ric_to_18(value)
    if number is None:
        return False
    if len(set(number[:17])) == 1 or len(set(_ric.compact(value)[:15])) == 1:
        return False  # placeholder such as 111111111111111
    if number[-1] != _ric.calc_check_digit(number):
        return False
    try:
        born = _ric.get_birth_date(number)
    except (ValidationError, ValueError):
        return False
    if born.year < 1800:
        return False
    province = number[:2]
    if number[0] == "9":  # 外国人永久居留身份证 (2023): 9 + province code of the issuing office
        return number[1:3] in PROVINCES
    if province not in PROVINCES:
        return False
    periods = _county_periods(number[:6])
    if periods is None:
        return True  # unknown county under a known province: lenient (development zones, old lists)
    return any(end is None or end >= born.year for _start, end in periods)


_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def org_code_ok(value: str) -> bool:
    text = value.strip().upper()
    if len(text) == 10 and text[8] == "-":
        text = text[:8] + text[9]
    if len(text) != 9 or any(c not in _ORG_ALPHABET for c in text[:8]):
        return False
    total = sum(_ORG_ALPHABET.index(c) * w for c, w in zip(text[:8], _ORG_WEIGHTS))
    check = 11 - total % 11
    expected = "X" if check == 10 else "0" if check == 11 else str(check)
    return text[8] == expected
