"""Rules compiled from a contract: one generic compiler, no per-feed code.

``compile_rules(contract)`` turns every field setting and every cross-field rule of a contract into
a :class:`CompiledRule`: an id (``<field>.<check>`` or the contract's rule id), a severity, the field
the failure is reported against, a Chinese message built from the field's label, and a *vectorised*
check ``mask(df) -> numpy bool array`` that is True where the row fails.

The same mask functions serve the row-level engine (``assets.validate.validate_frame``), the Great
Expectations metric providers (``assets.validate.expectations``) and the offline ``check`` command,
so the three can never disagree.

Semantics follow ARCHITECTURE.md ("Rule ids"). The one principle that shapes every mask: a rule
that needs a value it does not have (null or unparseable) does not fire; the missing or bad value
has its own rule. Values are the staged strings (dates ``YYYY-MM-DD`` when recognised).

Speed: string work (date parsing, number parsing, identifier checks, enum splitting) runs once per
*distinct* value of a column (``pd.factorize`` then a lookup), which matters because codes, dates and
categories repeat a great deal in real feeds.
"""

from __future__ import annotations

import csv
import json
import re
from contextvars import ContextVar
from dataclasses import dataclass, field as dc_field
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from contracts import CONTRACTS_DIR, Condition, Contract, Field, Rule
from assets.validate import identifiers

SEP = ";"  # staged multi-value separator (ingest normalises every separator to it)
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SENTINEL_LIMIT = np.datetime64("1900-01-02")
MUNICIPALITIES = {"11", "12", "31", "50"}  # no prefecture rows in the MCA list
DIVISIONS_FILE = CONTRACTS_DIR / "reference" / "mca_areacodes_2024_province_prefecture.csv"

Mask = np.ndarray  # 1-d bool, one entry per row of the frame


# ----------------------------------------------------------------------------------------------
# column helpers (vectorised, per distinct value)
# ----------------------------------------------------------------------------------------------
def column(df: pd.DataFrame, name: str) -> pd.Series:
    """The column as it is, or an all-null column when the frame lacks it."""
    if name in df.columns:
        return df[name]
    return pd.Series([None] * len(df), index=df.index, dtype="object")


# Per-``evaluate`` memo: (codes, uniques) per column array, and per-value identifier answers. Only
# active while ``evaluate`` runs over one frame (masks called on their own, e.g. by GE, do not use it).
_MEMO: ContextVar[dict | None] = ContextVar("rules_memo", default=None)


def _factorize(s: pd.Series) -> tuple[np.ndarray, Any]:
    memo = _MEMO.get()
    if memo is None:
        return pd.factorize(s, use_na_sentinel=True)
    arr = s.array
    hit = memo.get(("factorize", id(arr)))
    if hit is not None and hit[0] is arr and len(hit[1]) == len(s):
        return hit[1], hit[2]
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    memo[("factorize", id(arr))] = (arr, codes, uniques)  # keeps ``arr`` alive: its id stays unique
    return codes, uniques


def _memo_scalar(name: str, fn: Callable[[str], Any]) -> Callable[[str], Any]:
    """``fn`` with its answers shared by every rule of the current ``evaluate`` (e.g. ``uscc_ok``
    for rules ``uscc`` and ``uscc_division``)."""

    def call(v: str) -> Any:
        memo = _MEMO.get()
        if memo is None:
            return fn(v)
        answers = memo.setdefault(("scalar", name), {})
        try:
            return answers[v]
        except KeyError:
            out = answers[v] = fn(v)
            return out

    return call


def _per_unique(s: pd.Series, fn: Callable[[np.ndarray], np.ndarray], fill: Any, dtype: Any) -> np.ndarray:
    """Apply ``fn`` (array of distinct non-null values -> array of results) and map back; nulls get ``fill``."""
    codes, uniques = _factorize(s)
    out_u = np.asarray(fn(np.asarray(uniques, dtype=object)), dtype=dtype) if len(uniques) else np.empty(0, dtype=dtype)
    out = np.empty(len(s), dtype=dtype)
    valid = codes >= 0
    out[valid] = out_u[codes[valid]]
    out[~valid] = fill
    return out


def _per_unique_scalar(s: pd.Series, fn: Callable[[str], Any], fill: Any, dtype: Any) -> np.ndarray:
    return _per_unique(s, lambda u: [fn(str(v)) for v in u], fill, dtype)


def notnull(s: pd.Series) -> Mask:
    return s.notna().to_numpy(dtype=bool)


def isnull(s: pd.Series) -> Mask:
    return s.isna().to_numpy(dtype=bool)


def parse_dates(s: pd.Series) -> np.ndarray:
    """datetime64[D] per row; NaT for nulls and for anything that is not a real YYYY-MM-DD day."""

    def conv(u: np.ndarray) -> np.ndarray:
        out = np.full(len(u), np.datetime64("NaT"), dtype="datetime64[D]")
        for i, v in enumerate(u):
            v = str(v)
            if DATE_RE.match(v):
                try:
                    out[i] = np.datetime64(date.fromisoformat(v), "D")
                except ValueError:
                    pass
        return out

    return _per_unique(s, conv, np.datetime64("NaT"), "datetime64[D]")


def _decimal(v: str, integer: bool) -> float:
    try:
        n = Decimal(v)
    except (InvalidOperation, ValueError):
        return np.nan
    if not n.is_finite() or (integer and n != n.to_integral_value()):
        return np.nan
    return float(n)


def parse_numbers(s: pd.Series, integer: bool = False) -> np.ndarray:
    """float per row; NaN for nulls and text that is not a finite decimal (an integer field also
    rejects fractions). Parsed with ``decimal.Decimal``, as the contract semantics are decimal."""
    return _per_unique_scalar(s, lambda v: _decimal(v, integer), np.nan, float)


def usable_dates(s: pd.Series) -> np.ndarray:
    """Dates a cross-field rule may use: real days that are not sentinels (those have their own rule)."""
    d = parse_dates(s)
    d[d < SENTINEL_LIMIT] = np.datetime64("NaT")
    return d


def split_parts(value: str) -> list[str]:
    """Parts of a multi-value cell. Empty parts are kept ("罚款;" has an empty second value)."""
    return [p.strip() for p in str(value).split(SEP)]


def received_dates(df: pd.DataFrame) -> np.ndarray:
    """The row's received date as datetime64[D] (NaT when the frame has none)."""
    if "_received_date" not in df.columns:
        return np.full(len(df), np.datetime64("NaT"), dtype="datetime64[D]")
    s = df["_received_date"]
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.to_numpy().astype("datetime64[D]")

    def conv(u: np.ndarray) -> np.ndarray:
        return np.array([np.datetime64(str(v)[:10], "D") for v in u], dtype="datetime64[D]")

    return _per_unique(s, conv, np.datetime64("NaT"), "datetime64[D]")


def condition_mask(cond: Condition, df: pd.DataFrame) -> Mask:
    """Where ``cond`` holds. A null value satisfies no condition (not even ``not_in``)."""
    s = column(df, cond.field)
    if cond.equals is not None:
        return (s == cond.equals).fillna(False).to_numpy(dtype=bool)
    if cond.in_ is not None:
        return s.isin(cond.in_).to_numpy(dtype=bool) & notnull(s)
    if cond.not_in is not None:
        return notnull(s) & ~s.isin(cond.not_in).to_numpy(dtype=bool)
    if cond.contains_any is not None:
        wanted = set(cond.contains_any)
        return _per_unique_scalar(s, lambda v: bool(wanted & set(split_parts(v))), False, bool)
    if cond.at_least is not None:
        x = parse_numbers(s)
        with np.errstate(invalid="ignore"):
            return ~np.isnan(x) & (x >= cond.at_least)
    allowed = set(cond.subset_of or [])
    return _per_unique_scalar(s, lambda v: bool(split_parts(v)) and set(split_parts(v)) <= allowed, False, bool)


def condition_text(cond: Condition, contract: Contract) -> str:
    label = contract.field(cond.field).label
    if cond.equals is not None:
        return f"「{label}」为“{cond.equals}”"
    if cond.in_ is not None:
        return f"「{label}」为" + "或".join(f"“{v}”" for v in cond.in_)
    if cond.not_in is not None:
        return f"「{label}」不为" + "、".join(f"“{v}”" for v in cond.not_in)
    if cond.contains_any is not None:
        return f"「{label}」含" + "或".join(f"“{v}”" for v in cond.contains_any)
    if cond.at_least is not None:
        return f"「{label}」不少于{_fmt_num(cond.at_least)}"
    return f"「{label}」仅含" + "、".join(f"“{v}”" for v in cond.subset_of or [])


@lru_cache(maxsize=1)
def division_codes() -> frozenset[str]:
    with open(DIVISIONS_FILE, encoding="utf-8") as fh:
        return frozenset(row["code"] for row in csv.DictReader(fh))


def division_known(code: str) -> bool:
    """USCC positions 3–8: province known, and prefecture known unless province-level or a municipality."""
    div = code[2:8]
    known = division_codes()
    if len(div) != 6 or not div.isdigit() or div[:2] + "0000" not in known:
        return False
    if div[:2] in MUNICIPALITIES or div[2:4] == "00":
        return True
    return div[:4] + "00" in known


def notes_has(df: pd.DataFrame, key: str) -> Mask:
    """Rows whose ingest ``_notes`` (JSON object) carry ``key`` (e.g. ``fine_amount.unit``)."""
    s = column(df, "_notes")
    return _per_unique_scalar(s, lambda v: key in _notes_obj(v), False, bool)


def _notes_obj(v: str) -> dict:
    try:
        obj = json.loads(v)
    except ValueError:
        return {}
    return obj if isinstance(obj, dict) else {}


def note_values(df: pd.DataFrame, key: str, idx: np.ndarray) -> list[str | None]:
    """The ingest note ``key`` of rows ``idx`` (the original text of a converted cell)."""
    raw = column(df, "_notes").iloc[idx].to_numpy(dtype=object)
    return [None if (v is None or v != v) else _notes_obj(str(v)).get(key) for v in raw]


def add_months(days: np.ndarray, months: int) -> np.ndarray:
    """Calendar month arithmetic with end-of-month clamping (01-31 + 1 month = 02-28/29)."""
    idx = pd.DatetimeIndex(days.astype("datetime64[s]"))
    return (idx + pd.DateOffset(months=months)).to_numpy().astype("datetime64[D]")


# ----------------------------------------------------------------------------------------------
# the compiled rule
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CompiledRule:
    id: str
    check: str  # field check name or cross-field kind
    severity: str  # 'error' | 'warning'
    field: str | None  # field the failure is reported against
    message: str  # Chinese, for a department clerk
    columns: tuple[str, ...]  # frame columns the mask reads
    fn: Callable[[pd.DataFrame], Mask] = dc_field(repr=False, compare=False)
    params: dict = dc_field(default_factory=dict, compare=False)

    @property
    def row_local(self) -> bool:
        """Whether a row's verdict reads that row only (``unique_key`` compares rows of a delivery)."""
        return self.check != "unique_key"

    def mask(self, df: pd.DataFrame) -> Mask:
        out = np.asarray(self.fn(df), dtype=bool)
        assert out.shape == (len(df),), (self.id, out.shape)
        return out


_uscc_ok = _memo_scalar("uscc_ok", identifiers.uscc_ok)


def _labelled(f: Field) -> str:
    return f"「{f.label}」"


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _field_rules(contract: Contract, f: Field) -> list[CompiledRule]:
    rules: list[CompiledRule] = []
    name, lab = f.name, _labelled(f)

    def add(check: str, message: str, fn: Callable[[pd.DataFrame], Mask], cols: Iterable[str] = (),
            severity: str = "error", **params: Any) -> None:
        rules.append(CompiledRule(f"{name}.{check}", check, severity, name, message,
                                  tuple(dict.fromkeys([name, *cols])), fn, params))

    if f.required:
        add("required", f"{lab}为必填项", lambda df: isnull(column(df, name)))
    if f.required_when:
        c = f.required_when
        add("required_when", f"{condition_text(c, contract)}时，{lab}为必填项",
            lambda df, c=c: condition_mask(c, df) & isnull(column(df, name)), [c.field], condition=c)
    if f.empty_when:
        c = f.empty_when
        add("empty_when", f"{condition_text(c, contract)}时，{lab}应为空",
            lambda df, c=c: condition_mask(c, df) & notnull(column(df, name)), [c.field], condition=c)

    if f.type == "date":
        add("type", f"{lab}不是有效日期（应为真实存在的日期，如 2026-03-15）",
            lambda df: notnull(column(df, name)) & np.isnat(parse_dates(column(df, name))))
    elif f.type in ("decimal", "integer"):
        integer = f.type == "integer"
        add("type", f"{lab}不是有效{'整数' if integer else '数字'}（不要带单位、千分位或文字）",
            lambda df, i=integer: notnull(column(df, name)) & np.isnan(parse_numbers(column(df, name), i)))

    if f.min_length is not None or f.max_length is not None:
        lo, hi = f.min_length, f.max_length
        if lo is not None and hi is not None:
            text = f"{lab}长度应为{lo}至{hi}个字符"
        elif hi is not None:
            text = f"{lab}不能超过{hi}个字符"
        else:
            text = f"{lab}不能少于{lo}个字符"

        def length_fn(df: pd.DataFrame, lo=lo, hi=hi) -> Mask:
            s = column(df, name)

            def bad_lengths(n: np.ndarray) -> np.ndarray:
                m = np.zeros(len(n), dtype=bool)
                if lo is not None:
                    m |= n < lo
                if hi is not None:
                    m |= n > hi
                return m

            if isinstance(s.dtype, pd.StringDtype):
                # Arrow-backed text: code points counted in one vectorised pass (utf8_length, the
                # same count as Python's len), no factorising of a mostly unique free-text column
                n = s.str.len().to_numpy(dtype=float, na_value=np.nan)
                return bad_lengths(n) & s.notna().to_numpy(dtype=bool)
            return _per_unique(s, lambda u: bad_lengths(pd.Series(u, dtype="object").astype(str).str.len().to_numpy()), False, bool)

        add("length", text, length_fn, min_length=lo, max_length=hi)

    if f.pattern:
        regex = re.compile(f.pattern)
        hint = f"（{f.description}）" if f.description else ""
        add("pattern", f"{lab}格式不正确{hint}",
            lambda df, r=regex: _per_unique_scalar(column(df, name), lambda v: r.fullmatch(v) is None, False, bool),
            regex=f.pattern)

    if f.enum:
        allowed = frozenset(f.enum)
        prefixes = tuple(f.enum_allow_prefix)
        multi = bool(f.multi_value_separator)
        shown = "、".join(f.enum)
        extra = "；或以" + "、".join(f"“{p}”" for p in prefixes) + "开头注明" if prefixes else ""
        sep_hint = "；多个值用英文分号 ; 分隔" if multi else ""

        def part_bad(p: str) -> bool:
            return p not in allowed and not (prefixes and p.startswith(prefixes))

        def enum_value_bad(v: str) -> bool:
            if multi:
                parts = split_parts(v)
                return not parts or any(part_bad(p) for p in parts)
            return part_bad(v)

        add("enum", f"{lab}的值不在规定范围内（可选：{shown}{extra}{sep_hint}）",
            lambda df: _per_unique_scalar(column(df, name), enum_value_bad, False, bool),
            values=list(f.enum), prefixes=list(prefixes), multi=multi)

    if f.type in ("decimal", "integer") and (f.minimum is not None or f.maximum is not None):
        lo, hi = f.minimum, f.maximum
        integer = f.type == "integer"
        if lo is not None and hi is not None:
            text = f"{lab}应在{_fmt_num(lo)}至{_fmt_num(hi)}之间"
        elif lo is not None:
            text = f"{lab}不能小于{_fmt_num(lo)}"
        else:
            text = f"{lab}不能大于{_fmt_num(hi)}"

        def range_fn(df: pd.DataFrame, lo=lo, hi=hi, integer=integer) -> Mask:
            x = parse_numbers(column(df, name), integer)
            with np.errstate(invalid="ignore"):
                m = np.zeros(len(x), dtype=bool)
                if lo is not None:
                    m |= x < lo
                if hi is not None:
                    m |= x > hi
            return m & ~np.isnan(x)

        add("range", text, range_fn, minimum=lo, maximum=hi)

    if f.unit:
        add("unit", f"{lab}带有与本字段不同的金额单位，已按单位换算为{f.unit}（原值见本条的“收到的值”），请核对并按{f.unit}填报",
            lambda df, k=f"{name}.unit": notes_has(df, k), ["_notes"], severity="warning", note_key=f"{name}.unit")
    if f.infer_when_missing:
        add("inferred", f"文件缺少{lab}列，已按已填写的证照号码推定（{f.infer_when_missing.basis}），请在模板中补充该列",
            lambda df, k=f"{name}.inferred": notes_has(df, k), ["_notes"], severity="warning",
            note_key=f"{name}.inferred")

    if f.type == "date":
        add("sentinel", f"{lab}是占位日期（1900-01-01 及以前，多为 Excel 空值），请填写真实日期",
            lambda df: parse_dates(column(df, name)) < SENTINEL_LIMIT)
        if f.not_future:
            add("future", f"{lab}不能晚于报送（接收）日期",
                lambda df: parse_dates(column(df, name)) > received_dates(df), ["_received_date"])

    if f.identifier:
        ident = f.identifier
        when = ident.when
        cols = [when.field] if when else []

        def applies(df: pd.DataFrame) -> Mask:
            s = notnull(column(df, name))
            return s & condition_mask(when, df) if when else s

        when_text = f"（{condition_text(when, contract)}时检查）" if when else ""
        if ident.kind == "uscc":
            add("uscc", f"{lab}不是有效的统一社会信用代码：位数、字符或校验位错误（GB 32100-2015）{when_text}",
                lambda df: applies(df) & ~_per_unique_scalar(column(df, name), _uscc_ok, True, bool),
                cols, severity=ident.severity)
            add("uscc_division",
                f"{lab}第3至8位（登记管理机关行政区划码）不在民政部行政区划代码表中，请核对（仅提示，不影响入库）",
                lambda df: applies(df) & _per_unique_scalar(
                    column(df, name), lambda v: _uscc_ok(v) and not division_known(v.upper()), False, bool),
                cols, severity="warning")
        elif ident.kind == "ric":
            add("ric", f"{lab}不是有效的居民身份证号码：位数、出生日期、地区码或校验位错误（GB 11643-1999）{when_text}",
                lambda df: applies(df) & ~_per_unique_scalar(column(df, name), identifiers.ric_ok, True, bool),
                cols, severity=ident.severity)
        elif ident.kind == "org_code":
            add("org_code", f"{lab}校验位不符（GB 11714 组织机构代码），请核对{when_text}",
                lambda df: applies(df) & ~_per_unique_scalar(column(df, name), identifiers.org_code_ok, True, bool),
                cols, severity=ident.severity)
    return rules


def _tier_masks(contract: Contract, df: pd.DataFrame) -> dict[str, Mask]:
    """Which rows are of which tier: the explicit tier column, else 轻微 by minor_when, else default."""
    policy = contract.display
    assert policy is not None
    names = {t.tier for r in policy.regimes for t in r.tiers}
    if policy.tier_field:
        explicit = column(df, policy.tier_field)
        has_tier = notnull(explicit)
    else:
        explicit = pd.Series([None] * len(df), index=df.index, dtype="object")
        has_tier = np.zeros(len(df), dtype=bool)
    minor = np.zeros(len(df), dtype=bool)
    for c in policy.minor_when:
        minor |= condition_mask(c, df)
    out: dict[str, Mask] = {}
    for name in names:
        inferred = np.where(minor, "轻微", policy.default_tier) == name
        out[name] = np.where(has_tier, (explicit == name).fillna(False).to_numpy(dtype=bool), inferred)
    return out


def _regime_text(regime) -> str:
    def months(m: int) -> str:
        return f"{m // 12}年" if m and m % 12 == 0 else f"{m}个月"

    parts = []
    for t in regime.tiers:
        if not t.publish:
            parts.append(f"{t.tier}原则上不公示")
        elif t.min_months == 0:
            parts.append(f"{t.tier}最长{months(t.max_months)}")
        else:
            parts.append(f"{t.tier}{months(t.min_months)}至{months(t.max_months)}")
    return f"{regime.effective_from.isoformat()}起决定的适用{regime.basis}：" + "、".join(parts)


def _cross_rule(contract: Contract, r: Rule) -> CompiledRule:
    fs = r.fields
    if r.kind == "date_order":
        a, b = fs[0], fs[1]

        def fn(df: pd.DataFrame) -> Mask:
            return usable_dates(column(df, a)) > usable_dates(column(df, b))  # NaT compares False

        return CompiledRule(r.id, r.kind, r.severity, b, r.message, (a, b), fn)

    if r.kind == "required_when_contains":
        target = contract.field(fs[0])
        cond = r.when
        assert cond is not None, r.id

        def fn(df: pd.DataFrame) -> Mask:
            s = column(df, target.name)
            x = parse_numbers(s)  # a value that reads as a number must be > 0, whatever the field type
            with np.errstate(invalid="ignore"):
                missing = isnull(s) | (x <= 0)
            return condition_mask(cond, df) & missing

        return CompiledRule(r.id, r.kind, r.severity, target.name, r.message, (target.name, cond.field), fn)

    if r.kind == "prefix_matches":
        ident, cat = fs[0], r.category_field
        prefix, value = r.prefix or "", r.category_value

        def fn(df: pd.DataFrame) -> Mask:
            s, c = column(df, ident), column(df, cat)
            both = notnull(s) & notnull(c)
            starts = s.astype("object").fillna("").astype(str).str.startswith(prefix).to_numpy(dtype=bool)
            is_cat = (c == value).fillna(False).to_numpy(dtype=bool)
            return both & (starts != is_cat)

        return CompiledRule(r.id, r.kind, r.severity, ident, r.message, (ident, cat), fn)

    if r.kind == "display_period":
        policy = contract.display
        assert policy is not None, f"{r.id}: display_period needs a display policy"
        start_f = fs[0] if fs else contract.clock_field
        end_f = fs[1] if len(fs) > 1 else policy.end_field
        regimes = sorted(policy.regimes, key=lambda g: g.effective_from)
        cols = [start_f, end_f] + ([policy.tier_field] if policy.tier_field else []) + [c.field for c in policy.minor_when]

        def fn(df: pd.DataFrame) -> Mask:
            start = usable_dates(column(df, start_f))
            end = usable_dates(column(df, end_f))
            ok_dates = ~np.isnat(start) & ~np.isnat(end)
            tiers = _tier_masks(contract, df)
            out = np.zeros(len(df), dtype=bool)
            for i, regime in enumerate(regimes):
                lo_day = np.datetime64(regime.effective_from, "D") if i > 0 else None
                hi_day = np.datetime64(regimes[i + 1].effective_from, "D") if i + 1 < len(regimes) else None
                in_regime = ok_dates.copy()
                if lo_day is not None:
                    in_regime &= start >= lo_day
                if hi_day is not None:
                    in_regime &= start < hi_day
                known = {t.tier for t in regime.tiers}
                unknown = np.zeros(len(df), dtype=bool)  # tiers this regime lacks: judged as the default
                for name, m in tiers.items():
                    if name not in known:
                        unknown |= m
                for t in regime.tiers:
                    sel = in_regime & (tiers.get(t.tier, np.zeros(len(df), dtype=bool))
                                       | (unknown if t.tier == policy.default_tier else False))
                    if not sel.any():
                        continue
                    s = start[sel]
                    lo, hi = add_months(s, t.min_months), add_months(s, t.max_months)
                    e = end[sel]
                    out[sel] = (e < lo) | (e > hi)
            return out

        texts = [_regime_text(g) for g in regimes]

        def messages(df: pd.DataFrame, idx: np.ndarray) -> list[str]:
            """Per row: the message with the ranges of the regime in force on its decision date."""
            start = usable_dates(column(df, start_f))[idx]
            out = []
            for d in start:
                i = 0
                for j, g in enumerate(regimes):
                    if not np.isnat(d) and d >= np.datetime64(g.effective_from, "D"):
                        i = j
                out.append(f"{r.message}（{texts[i]}，自决定日期起算）")
            return out

        return CompiledRule(r.id, r.kind, r.severity, end_f, f"{r.message}（{'；'.join(texts)}，自决定日期起算）",
                            tuple(dict.fromkeys(cols)), fn, {"messages": messages})

    if r.kind == "requires_any":
        groups = r.any_of
        needed = list(r.fields)

        def fn(df: pd.DataFrame) -> Mask:
            have = np.ones(len(df), dtype=bool)
            for n in needed:
                f = contract.field(n)
                have &= ~np.isnan(parse_numbers(column(df, n), f.type == "integer")) if f.type in ("decimal", "integer") \
                    else notnull(column(df, n))
            ok = np.zeros(len(df), dtype=bool)
            for group in groups:
                g = np.ones(len(df), dtype=bool)
                for c in group:
                    g &= condition_mask(c, df)
                ok |= g
            return have & ~ok

        cols = list(dict.fromkeys(needed + [c.field for g in groups for c in g]))
        return CompiledRule(r.id, r.kind, r.severity, needed[0], r.message, tuple(cols), fn)

    if r.kind == "unique_key":
        keys = list(fs)

        def fn(df: pd.DataFrame) -> Mask:
            frame = pd.DataFrame({k: column(df, k).to_numpy() for k in keys})
            complete = frame.notna().all(axis=1).to_numpy(dtype=bool)
            group = list(keys)
            if "_file_id" in df.columns:
                frame["_file_id"] = df["_file_id"].to_numpy()
                group = ["_file_id"] + group
            dup = frame.duplicated(subset=group, keep=False).to_numpy(dtype=bool)
            return complete & dup

        return CompiledRule(r.id, r.kind, r.severity, keys[0], r.message, tuple(keys) + ("_file_id",), fn)

    if r.kind == "not_greater":
        first, rest, minus = fs[0], fs[1:], list(r.minus)
        types = list(dict.fromkeys([first, *rest, *minus]))

        def fn(df: pd.DataFrame) -> Mask:
            vals = {n: parse_numbers(column(df, n)) for n in types}
            # the first two must be numbers; the others count 0 when null (or unreadable: their
            # own type rule reports them)
            need = ~np.isnan(vals[first]) & ~np.isnan(vals[rest[0]])
            cap = sum(np.nan_to_num(vals[n]) for n in rest) - sum((np.nan_to_num(vals[n]) for n in minus), np.zeros(len(df)))
            with np.errstate(invalid="ignore"):
                over = np.round(vals[first], 6) > np.round(cap, 6)
            return need & over

        return CompiledRule(r.id, r.kind, r.severity, first, r.message, tuple([first, *rest, *minus]), fn)

    raise ValueError(f"{contract.feed}: rule {r.id}: unknown kind {r.kind!r}")  # pragma: no cover


_CACHE: dict[int, tuple[Contract, list[CompiledRule]]] = {}


def compile_rules(contract: Contract) -> list[CompiledRule]:
    """Every rule of the contract, field rules in field order, then cross-field rules (cached)."""
    hit = _CACHE.get(id(contract))
    if hit is not None and hit[0] is contract:
        return hit[1]
    rules = _compile(contract)
    _CACHE[id(contract)] = (contract, rules)
    return rules


def _compile(contract: Contract) -> list[CompiledRule]:
    out: list[CompiledRule] = []
    for f in contract.fields:
        out.extend(_field_rules(contract, f))
    for r in contract.rules:
        out.append(_cross_rule(contract, r))
    ids = [r.id for r in out]
    assert len(ids) == len(set(ids)), f"{contract.feed}: duplicate rule ids"
    return out


def rule_by_id(contract: Contract, rule_id: str) -> CompiledRule:
    for r in compile_rules(contract):
        if r.id == rule_id:
            return r
    raise KeyError(f"{contract.feed}: no rule {rule_id!r}")


def evaluate(contract: Contract, df: pd.DataFrame) -> dict[str, Mask]:
    """rule id -> failure mask over ``df`` for every rule of the contract."""
    token = _MEMO.set({})
    try:
        return {r.id: r.mask(df) for r in compile_rules(contract)}
    finally:
        _MEMO.reset(token)
