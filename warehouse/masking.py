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
Unified social credit codes carry letters almost always and are left alone; the rare all-digit
code inside free text may be over-masked, which errs on the safe side.
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


def mask_field_value(value: object, field: "Field") -> str | None:
    """A field's value as it may be shown: masked when personal, scrubbed when free text."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if field.privacy == "personal":
        return mask(value, kind_for_field(field))
    return scrub_text(str(value))


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
# A boundary is anything that is not a letter or digit, so numbers glued to Chinese text
# ("身份证号500237199001011234的") are found, while parts of longer codes are not.
_B_BEFORE = r"(?<![0-9A-Za-z])"
_B_AFTER = r"(?![0-9A-Za-z])"
# 18-digit resident ID: 6-digit area, birth date 18xx/19xx/20xx MMDD, 3 digits, check [0-9X]
_RIC18 = r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx]"
# 15-digit resident ID: 6-digit area, YYMMDD, 3 digits (day checked loosely, as in SQL)
_RIC15 = r"[1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])[0-3]\d{4}"
_PHONE = r"1[3-9]\d{9}"
_CARD = r"\d{16,19}"

_TEXT_RE = re.compile(
    _B_BEFORE + rf"(?:(?P<id>{_RIC18}|{_RIC15})|(?P<phone>{_PHONE})|(?P<card>{_CARD}))" + _B_AFTER
)


def _scrub_match(m: re.Match) -> str:
    s = m.group(0)
    if m.group("phone"):
        return mask(s, "phone")
    return mask(s, "id")  # id and card numbers: first 6 + last 4


def scrub_text(text: object) -> object:
    """Mask ID, mobile and bank card numbers written inside free text; other values unchanged."""
    if not isinstance(text, str) or not text:
        return text
    return _TEXT_RE.sub(_scrub_match, text)


def find_unmasked(text: str) -> list[str]:
    """Full resident IDs, mobile numbers and bank card numbers left in ``text`` (for scanners)."""
    return [m.group(0) for m in _TEXT_RE.finditer(text)]


def scrub_sql(expr: str) -> str:
    """:func:`scrub_text` as a DuckDB expression. RE2 has no look-around, so the boundary
    characters are captured and put back; each pattern runs twice so that two numbers separated
    by a single character are both found. Same order as the Python version: IDs, phones, cards."""
    nb = "[^0-9A-Za-z]"
    date8 = "(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
    steps = [
        (f"(^|{nb})([1-9][0-9]{{5}}){date8}([0-9]{{3}}[0-9Xx])($|{nb})", "\\1\\2********\\3\\4"),
        (f"(^|{nb})([1-9][0-9]{{5}})[0-9]{{2}}(?:0[1-9]|1[0-2])[0-3]([0-9]{{4}})($|{nb})", "\\1\\2*****\\3\\4"),
        (f"(^|{nb})(1[3-9][0-9])[0-9]{{4}}([0-9]{{4}})($|{nb})", "\\1\\2****\\3\\4"),
    ] + [
        (f"(^|{nb})([0-9]{{6}})[0-9]{{{n - 10}}}([0-9]{{4}})($|{nb})", f"\\1\\2{'*' * (n - 10)}\\3\\4")
        for n in (19, 18, 17, 16)
    ]
    text = f"CAST({expr} AS VARCHAR)"
    out = text
    for pattern, repl in steps:
        for _ in range(2):
            out = f"regexp_replace({out}, '{pattern}', '{repl}', 'g')"
    # every pattern needs a run of at least 11 digits (a phone; IDs 15 or 17+, cards 16+): text
    # without one is returned as is, without the fourteen replacements (most free text has none)
    return f"(CASE WHEN regexp_matches({text}, '[0-9]{{11}}') THEN {out} ELSE {text} END)"
