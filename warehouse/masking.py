"""The one masking policy for everything that leaves the office or is rendered for people.

Public views, exports, feedback workbooks, Data Docs, the dashboard, stored validation results
and command output all mask through this module, so a natural person's full ID number, phone
number, bank account or address is never shown anywhere, and the same value looks the same
everywhere. Internal warehouse tables keep the full value (they are evidence).

Policy (REFERENCE §6; no national pattern was found, this is the common practice):

| kind      | used for                                   | example                              |
|-----------|--------------------------------------------|--------------------------------------|
| ``id``    | resident ID and other personal document no.| ``500237199001011234 → 500237********1234`` (first 6 + last 4) |
| ``account``| bank card / account numbers               | same as ``id``: first 6 + last 4     |
| ``phone`` | mobile and fixed-line numbers              | ``13812345678 → 138****5678`` (first 3 + last 4) |
| ``address``| home addresses                            | ``重庆市巫山县高唐街道… → 重庆市巫山县****`` (first 6 characters) |

A value too short to keep anything under its rule is starred in full. A field's kind comes from
the contract: ``mask:`` on the field when given, otherwise inferred from the identifier kind
and the field's name and label (see :func:`kind_for_field`).

Free text that is not personal by itself (违法事实, 备注, 处罚内容 …) is *scrubbed*: resident ID
numbers (18 or 15 digits with a plausible birth date), mobile numbers and bank card numbers
written inside it are masked by the same rules (:func:`scrub_text`, :func:`scrub_sql`).

Unified social credit codes are not personal, and a clerk must see the code a row was rejected
for. Those of government bodies and public institutions (11…, 12…) are often all digits, the
shape of an 18-digit bank card. So a field that is not free text (a code, a number with a
pattern or an identifier check, such as 许可机关统一社会信用代码; :func:`is_free_text`) is shown
as received, except that a resident ID or mobile number written into it is still masked
(:func:`mask_field_value`; public views show such fields as published). Inside free text (a
business key, a reason) an all-digit code cannot be told from a card and is masked, in Python
and SQL alike: the safe side.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal


if TYPE_CHECKING:  # pragma: no cover
    from contracts.model import Field

MaskKind = Literal["id", "account", "phone", "address"]
MASK_KINDS: tuple[str, ...] = ("id", "account", "phone", "address")


def kind_for_field(field: "Field") -> MaskKind:
    """The mask kind of a personal field (explicit ``mask:`` in the contract wins)."""
    explicit = getattr(field, "mask", None)
    if explicit:
        return explicit
    name, label = field.name, field.label
    if field.identifier is not None and field.identifier.kind == "ric":
        return "id"
    if any(k in name for k in ("phone", "mobile", "tel")) or any(k in label for k in ("电话", "手机")):
        return "phone"
    if any(k in name for k in ("account", "card", "bank")) or any(k in label for k in ("账号", "账户", "卡号")):
        return "account"
    if "address" in name or "addr" in name or "地址" in label or "住址" in label:
        return "address"
    return "id"


def mask(value: object, kind: str = "id") -> str | None:
    """Mask one value by its kind; ``None`` (and NaN) stay ``None``."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    v = str(value)
    n = len(v)
    if kind in ("id", "account"):
        return v[:6] + "*" * (n - 10) + v[-4:] if n > 10 else "*" * n
    if kind == "phone":
        return v[:3] + "****" + v[-4:] if n >= 8 else "*" * n
    if kind == "address":
        return v[:6] + "****" if n > 8 else "*" * n
    raise ValueError(f"unknown mask kind {kind!r}; expected one of {MASK_KINDS}")


def is_free_text(field: "Field") -> bool:
    """Text a clerk types freely (违法事实, 备注 …), as opposed to a code, a checked identifier or
    an enumerated value: the only kind in which card-shaped numbers are masked."""
    return field.type == "string" and not field.enum and field.identifier is None and field.pattern is None


def mask_field_value(value: object, field: "Field") -> str | None:
    """A field's value as it may be shown: masked when personal, scrubbed when free text; any other
    field is shown as received unless a resident ID or mobile number was written into it."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if field.privacy == "personal":
        return mask(value, kind_for_field(field))
    return scrub_text(str(value), cards=is_free_text(field))


def mask_sql(expr: str, kind: str) -> str:
    """The same masking as :func:`mask`, as a DuckDB expression over ``expr``."""
    e = f"CAST({expr} AS VARCHAR)"
    if kind in ("id", "account"):
        return (
            f"CASE WHEN {e} IS NULL THEN NULL WHEN length({e}) > 10 THEN "
            f"left({e}, 6) || repeat('*', length({e}) - 10) || right({e}, 4) "
            f"ELSE repeat('*', length({e})) END"
        )
    if kind == "phone":
        return (
            f"CASE WHEN {e} IS NULL THEN NULL WHEN length({e}) >= 8 THEN "
            f"left({e}, 3) || '****' || right({e}, 4) ELSE repeat('*', length({e})) END"
        )
    if kind == "address":
        return (
            f"CASE WHEN {e} IS NULL THEN NULL WHEN length({e}) > 8 THEN left({e}, 6) || '****' "
            f"ELSE repeat('*', length({e})) END"
        )
    raise ValueError(f"unknown mask kind {kind!r}; expected one of {MASK_KINDS}")


# -- free text -------------------------------------------------------------------------------
# One set of building blocks for the Python patterns and the DuckDB (RE2) steps, so the two find
# the same numbers. Digits are ASCII or full width (a clerk's IME types ５００２３７…); a boundary
# is anything that is not such a digit or an ASCII letter, so numbers glued to Chinese text
# ("身份证号500237199001011234的") are found, while parts of longer codes are not.
_D = "[0-9０-９]"
_NZ = "[1-9１-９]"
_CHECK = "[0-9０-９XxＸｘ]"
_NB = "[^0-9０-９A-Za-z]"
_SEP = "[- ]"
_YEAR = "(?:[1１][89８９]|[2２][0０])" + _D + "{2}"
_MONTH = "(?:[0０][1-9１-９]|[1１][0-2０-２])"
_DAY = "(?:[0０][1-9１-９]|[12１２]" + _D + "|[3３][01０１])"
_CN = r"\+86" + _SEP + "?"  # +86 before a mobile number: kept, the number itself masked

# 18-digit resident ID: area, birth date 18xx/19xx/20xx MMDD, 3 digits, check character; any
# other 17 digits + X (a mistyped birth date) is an ID number too; 15-digit ID: area, YYMMDD, 3
_RIC18 = f"{_NZ}{_D}{{5}}{_YEAR}{_MONTH}{_DAY}{_D}{{3}}{_CHECK}"
_RIC18X = f"{_D}{{17}}[XxＸｘ]"
_RIC15 = f"{_NZ}{_D}{{5}}{_D}{{2}}{_MONTH}[0-3０-３]{_D}{{4}}"
# mobile, also written 138-1234-5678 / 138 1234 5678; a landline with its area code and a dash
_MOBILE = f"[1１][3-9３-９]{_D}{_SEP}?{_D}{{4}}{_SEP}?{_D}{{4}}"
_LANDLINE = f"[0０]{_D}{{2,3}}-{_D}{{7,8}}"
_CARD = f"{_D}{{16,19}}"

_TEXT_RE = re.compile(
    f"(?:(?<![0-9０-９A-Za-z])"
    f"(?:(?P<id>{_RIC18}|{_RIC18X}|{_RIC15})|(?P<phone>{_MOBILE}|{_LANDLINE})|(?P<card>{_CARD}))"
    f"|(?:(?<=\\+86)|(?<=\\+86[- ]))(?P<phone_cn>{_MOBILE}))"
    f"(?![0-9０-９A-Za-z])"
)
# Text that can hold none of the numbers above is left alone without running them (RE2 syntax:
# DuckDB and pyarrow's match_substring_regex): every one has 7 digits in a row or a dashed mobile.
SCRUB_CANDIDATE = f"{_D}{{7}}|{_D}{{3}}{_SEP}{_D}{{4}}"


def _scrub_match(m: re.Match, cards: bool = True) -> str:
    s = m.group(0)
    if m.group("phone") or m.group("phone_cn"):
        return mask(s, "phone")
    if m.group("card") and not cards:
        return s  # a code field's own value (an all-digit unified social credit code)
    return mask(s, "id")  # id and card numbers: first 6 + last 4


def _scrub_code(m: re.Match) -> str:
    return _scrub_match(m, cards=False)


def scrub_text(text: object, cards: bool = True) -> object:
    """Mask ID, mobile, landline and bank card numbers written inside free text (card numbers only
    when ``cards``); other values unchanged. Addresses inside free text cannot be told from place
    names (违法地点, 经营场所) and are not looked for: personal addresses live in address fields,
    which are masked whole."""
    if not isinstance(text, str) or not text:
        return text
    return _TEXT_RE.sub(_scrub_match if cards else _scrub_code, text)


def find_unmasked(text: str) -> list[str]:
    """Full resident IDs, mobile numbers and bank card numbers left in ``text`` (for scanners)."""
    return [m.group(0) for m in _TEXT_RE.finditer(text)]


def scrub_sql(expr: str) -> str:
    """:func:`scrub_text` as a DuckDB expression, from the same building blocks. RE2 has no
    look-around, so the boundary characters are captured and put back; each pattern runs twice so
    that two numbers separated by a single character are both found. Same order as the Python
    alternation: IDs, phones, cards. Each step keeps what :func:`mask` keeps (ID and card: first
    6 + last 4; phone: first 3 + last 4), so the result is the same string."""
    before, after = f"(^|{_NB})", f"($|{_NB})"
    steps = [
        (f"{before}({_NZ}{_D}{{5}}){_YEAR}{_MONTH}{_DAY}({_D}{{3}}{_CHECK}){after}", "\\1\\2********\\3\\4"),
        (f"{before}({_D}{{6}}){_D}{{8}}({_D}{{3}}[XxＸｘ]){after}", "\\1\\2********\\3\\4"),
        (f"{before}({_NZ}{_D}{{5}}){_D}{{2}}{_MONTH}[0-3０-３]({_D}{{4}}){after}", "\\1\\2*****\\3\\4"),
    ]
    # phones: first 3 + **** + last 4, whatever the separators in between
    steps += [
        (f"(^|{_NB}|{_CN})([1１][3-9３-９]{_D}){_SEP}?{_D}{{4}}{_SEP}?({_D}{{4}}){after}", "\\1\\2****\\3\\4"),
    ] + [
        (f"{before}([0０]{_D}{{2}}){_D}{{{a - 3}}}-{_D}{{{n - 4}}}({_D}{{4}}){after}", "\\1\\2****\\3\\4")
        for a in (4, 3) for n in (8, 7)  # area code of 3 or 4 digits, number of 7 or 8
    ]
    steps += [
        (f"{before}({_D}{{6}}){_D}{{{n - 10}}}({_D}{{4}}){after}", f"\\1\\2{'*' * (n - 10)}\\3\\4")
        for n in (19, 18, 17, 16)
    ]
    text = f"CAST({expr} AS VARCHAR)"
    out = text
    for pattern, repl in steps:
        for _ in range(2):
            out = f"regexp_replace({out}, '{pattern}', '{repl}', 'g')"
    return f"(CASE WHEN regexp_matches({text}, '{SCRUB_CANDIDATE}') THEN {out} ELSE {text} END)"
