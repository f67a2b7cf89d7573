"""Typed model of a feed contract: the public credit information catalog as code.

Every other stage reads contracts only through these classes, so a contract that loads is
a contract the whole pipeline can run. Unknown keys are refused (``extra="forbid"``) because
a misspelt rule key that is silently ignored would let bad rows through.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field as PydField, model_validator

FieldType = Literal["string", "code", "date", "decimal", "integer"]
IdentifierKind = Literal["uscc", "ric", "org_code"]
PrivacyClass = Literal["public", "personal"]
Severity = Literal["error", "warning"]

SNAKE = r"^[a-z][a-z0-9_]*$"

# Amount units a cell may be marked with, in yuan. A field with ``unit`` set converts a value
# explicitly marked with another of these units to its own unit (with a warning naming the
# original text); a bare number is taken to be in the field's unit.
UNIT_FACTORS = {"元": 1, "万元": 10_000, "亿元": 100_000_000}
Unit = Literal["元", "万元", "亿元"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    """A condition on another field of the same row, e.g. 行政相对人类别 = 自然人."""

    field: str
    equals: str | None = None
    in_: list[str] | None = PydField(default=None, alias="in")
    not_in: list[str] | None = None
    contains_any: list[str] | None = None  # for multi-value fields: any listed value present
    subset_of: list[str] | None = None  # for multi-value fields: every value is one of these
    at_least: float | None = None  # numeric fields: value >= at_least

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_test(self) -> "Condition":
        tests = [self.equals, self.in_, self.not_in, self.contains_any, self.subset_of, self.at_least]
        if sum(t is not None for t in tests) != 1:
            raise ValueError("a condition needs exactly one of: equals, in, not_in, contains_any, subset_of, at_least")
        return self


class Identifier(_Strict):
    kind: IdentifierKind
    when: Condition | None = None  # e.g. check as resident ID only when 证件类型 = 身份证
    severity: Severity = "error"


class CodeTable(_Strict):
    """A code table a department's system uses for an enum field ("1" -> 有效), with its source.

    Code tables differ between provinces and systems, so none is guessed: a code not in the
    table is refused (enum rule) until the deployment adds the table it actually receives."""

    source: str  # the standard or local code table the codes come from
    codes: dict[str, str]

    @model_validator(mode="after")
    def _sourced(self) -> "CodeTable":
        if not self.source.strip():
            raise ValueError("a code table needs its source")
        return self


class InferRule(_Strict):
    """One way to infer a missing column's value from another field of the same row."""

    field: str  # the row's value of this field must be filled
    prefix: str | None = None  # ... and start with this prefix, when given
    value: str  # the inferred value


class Inference(_Strict):
    """How to fill a field whose column a delivery lacks entirely (first matching rule wins);
    every inferred cell carries the warning ``<field>.inferred``."""

    basis: str  # why inferring is acceptable (which real files lack the column)
    rules: list[InferRule]


class Field(_Strict):
    name: Annotated[str, PydField(pattern=SNAKE)]
    label: str  # Chinese name as in the national standard
    code: str | None = None  # standard code, XK_* / CF_*
    aliases: list[str] = []  # older (2016) header names and common variants
    v1_label: str | None = None  # the 2016 ("v1") standard's header, when it differs from label
    type: FieldType = "string"
    # part of the layout the contract follows (the national standard for 双公示, else the local
    # catalog); false: a provincial/local extension. Unset: part of the layout.
    national: bool | None = None
    required: bool = False
    required_when: Condition | None = None
    empty_when: Condition | None = None  # must be empty, e.g. USCC for 自然人
    enum: list[str] | None = None
    enum_aliases: dict[str, str] = {}  # accepted spellings/codes -> canonical enum value ("1" -> 有效)
    code_table: CodeTable | None = None  # codes a system sends for the enum values, with source
    enum_allow_prefix: list[str] = []  # e.g. "其他-" admits 其他-<name>
    pattern: str | None = None  # regular expression the normalised value must match
    multi_value_separator: str | None = None  # e.g. 处罚类别 "罚款;没收违法所得"
    identifier: Identifier | None = None
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    unit: Unit | None = None  # amount unit of a decimal field (元/万元): marked values are converted
    not_future: bool = False  # a date may not lie after the day the row was received
    long_term_sentinel: str | None = None  # e.g. 2099-12-31 means 长期 and is allowed
    privacy: PrivacyClass = "public"
    # how a personal value is masked wherever it is shown (warehouse.masking); inferred when unset
    mask: Literal["id", "account", "phone", "address"] | None = None
    infer_when_missing: Inference | None = None  # a delivery without this column: infer per row
    description: str = ""
    example: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> "Field":
        if self.required and self.required_when:
            raise ValueError("use either required or required_when, not both")
        if self.enum is not None and len(set(self.enum)) != len(self.enum):
            raise ValueError("enum has duplicate values")
        for alias, target in self.all_enum_aliases.items():
            if not self.enum or target not in self.enum:
                raise ValueError(f"enum_aliases/code_table maps {alias!r} to {target!r}, which is not in enum")
        if self.code_table and set(self.code_table.codes) & set(self.enum_aliases):
            raise ValueError("a code is both in enum_aliases and code_table")
        if self.unit and self.type != "decimal":
            raise ValueError("unit applies only to decimal fields")
        if self.infer_when_missing:
            for r in self.infer_when_missing.rules:
                if not self.enum or r.value not in self.enum:
                    raise ValueError(f"infer_when_missing value {r.value!r} is not in enum")
        if self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
        if self.multi_value_separator and not self.enum:
            raise ValueError("multi_value_separator needs an enum")
        if (self.minimum is not None or self.maximum is not None) and self.type not in ("decimal", "integer"):
            raise ValueError("minimum/maximum apply only to decimal or integer fields")
        return self

    @property
    def all_enum_aliases(self) -> dict[str, str]:
        """Accepted spellings plus the code table's codes -> canonical enum value."""
        return {**self.enum_aliases, **(self.code_table.codes if self.code_table else {})}

    @property
    def extension(self) -> bool:
        """A local extension of the layout (``national: false``): marked 扩展 in templates,
        feedback workbooks and the catalog, never pushed. Unset ``national`` is part of the layout;
        whether that layout is a national standard is ``Contract.is_national``."""
        return self.national is False

    @property
    def header_names(self) -> list[str]:
        """Every header a department may use for this field."""
        names = [self.label, self.name] + ([self.code] if self.code else []) + list(self.aliases)
        names += [self.v1_label] if self.v1_label else []
        return list(dict.fromkeys(names))


class DisplayTier(_Strict):
    """Allowed 公示期 range for one tier, counted from the decision date."""

    tier: str  # 轻微 / 一般 / 严重
    min_months: int
    max_months: int
    publish: bool = True  # 轻微 is in principle not published after 2026-04-01


class DisplayRegime(_Strict):
    effective_from: date
    tiers: list[DisplayTier]
    basis: str  # the rule that sets these ranges

    @model_validator(mode="after")
    def _sourced(self) -> "DisplayRegime":
        if not self.basis.strip():
            raise ValueError("a display regime needs its basis")
        return self


class DisplayPolicy(_Strict):
    end_field: str  # 公示截止期
    tier_field: str | None = None  # explicit tier column, when the feed carries one
    minor_when: list[Condition] = []  # any of these makes a record 轻微 when no tier is given
    default_tier: str = "一般"
    regimes: list[DisplayRegime]

    def regime_for(self, decided: date) -> DisplayRegime:
        chosen = None
        for regime in sorted(self.regimes, key=lambda r: r.effective_from):
            if regime.effective_from <= decided:
                chosen = regime
        return chosen or min(self.regimes, key=lambda r: r.effective_from)


class Deadline(_Strict):
    days: Annotated[int, PydField(gt=0)]
    kind: Literal["working", "calendar"]
    basis: str  # the document the rule comes from (required: say where each feed's deadline is set)
    # calendar kind: a period whose last day is a statutory holiday ends on the first day after
    # the holiday (民法典 第二百零三条); working-day deadlines skip holidays anyway
    extend_over_holidays: bool = True

    @model_validator(mode="after")
    def _sourced(self) -> "Deadline":
        if not self.basis.strip():
            raise ValueError("a deadline needs its basis (the document that sets it)")
        return self


class PublicLimit(_Strict):
    """Longest time a record is shown publicly, counted from a date field of the record."""

    months: Annotated[int, PydField(gt=0)]
    from_field: str
    basis: str


class Rule(_Strict):
    """A cross-field rule. Field-level rules (required, enum, ...) are derived from fields."""

    id: Annotated[str, PydField(pattern=r"^[A-Z][A-Z0-9_.-]*$")]
    kind: Literal[
        "date_order",  # fields[0] <= fields[1]
        "required_when_contains",  # fields[0] must be filled (>0 for numbers) when `when` holds
        "prefix_matches",  # identifier prefix <-> category, e.g. 92 <-> 个体工商户
        "display_period",  # 公示截止期 within its tier's range (see display policy)
        "unique_key",  # business key unique within one delivery
        "not_greater",  # fields[0] <= sum of fields[1:] (with `minus` fields subtracted)
        "requires_any",  # at least one group of `any_of` holds entirely (e.g. a listing threshold)
    ]
    fields: list[str] = []
    when: Condition | None = None
    any_of: list[list[Condition]] = []  # requires_any: groups of conditions, all of a group must hold
    prefix: str | None = None
    category_field: str | None = None
    category_value: str | None = None
    minus: list[str] = []
    severity: Severity = "error"
    message: str  # Chinese, for a department clerk
    basis: str = ""  # the rule's source, when it is not the national standard

    @model_validator(mode="after")
    def _shape(self) -> "Rule":
        if self.kind == "requires_any" and (not self.any_of or not self.fields):
            raise ValueError(f"{self.id}: requires_any needs any_of groups and the fields it reports on")
        return self


class SubjectRef(_Strict):
    """Which fields name the subject (主体) of a row, so one subject's rows meet across feeds.

    The subject key is the USCC when filled, else the ID number (upper-cased)."""

    name_field: str
    uscc_field: str | None = None
    id_field: str | None = None  # natural person's ID number (masked wherever shown)

    @model_validator(mode="after")
    def _some_id(self) -> "SubjectRef":
        if not self.uscc_field and not self.id_field:
            raise ValueError("subject needs uscc_field or id_field")
        return self


class TargetRef(_Strict):
    """How a repair or objection row names the record it is about (信息类别 + 决定文书号 [+ 机关]).

    The record is found in the feed named by ``feed_field``: its field of the same name as
    ``ref_field`` when it has one (e.g. decision_no), else its business key text; the authority
    is compared when both sides have ``authority_field`` and the row filled it."""

    feed_field: str
    ref_field: str
    authority_field: str | None = None


class RepairPolicy(_Strict):
    date_field: str  # 修复日期: eligibility is judged on it against the minimum display period
    unit_field: str | None = None


class ObjectionPolicy(_Strict):
    """异议: filed on ``filed_field``; the department's decision in ``outcome_field`` on ``outcome_date_field``."""

    number_field: str
    filed_field: str
    outcome_field: str
    outcome_date_field: str
    revoke_values: list[str]  # outcomes that withdraw the record (撤销)
    # while open: 'mark' shows the record as 异议中 in the public views, 'withhold' hides it
    while_open: Literal["mark", "withhold"] = "mark"
    reason_field: str | None = None


class ListingPolicy(_Strict):
    """A red or black list (红名单 / 严重失信主体名单): a subject is on it from ``from_field`` until ``to_field``."""

    colour: Literal["red", "black"]
    list_field: str  # the list's name (严重失信主体名单, A级纳税人 …)
    authority_field: str  # 列入机关
    from_field: str  # 列入日期
    to_field: str  # 移出日期 (empty: still listed); the subject is off the list from that day


class CommitmentPolicy(_Strict):
    """信用承诺: a record of a feed in ``broken_by`` against the subject on or after ``date_field`` breaks it."""

    date_field: str
    content_field: str
    issuer_field: str
    broken_by: list[str]  # feeds whose records (by their clock_field date) break the commitment


class CrossCheck(_Strict):
    """Flag a row of this feed whose subject is on a black list on ``date_field`` (红黑名单交叉比对)."""

    date_field: str
    message: str  # Chinese, what happened, e.g. 获得行政许可


ROLE_BLOCKS = {  # role -> blocks it needs
    "records": (),
    "ledger": (),
    "repair": ("target", "repair"),
    "objection": ("target", "objection", "subject"),
    "list": ("listing", "subject"),
    "commitment": ("commitment", "subject"),
}


class Contract(_Strict):
    feed: Annotated[str, PydField(pattern=SNAKE)]
    title: str
    # records: credit records that are measured and published; ledger: a department's own
    # count of decisions (for 上报率); repair: 信用修复 events that end publication;
    # objection: 异议 about a record; list: red/black list entries; commitment: 信用承诺
    role: Literal["records", "ledger", "repair", "objection", "list", "commitment"] = "records"
    category: str = ""
    legal_basis: str
    # the national field standard the layout follows (双公示: 发改办财金〔2018〕790号); empty for
    # feeds defined by local catalogs only, whose fields are then not marked 国标
    standard: str = ""
    catalog_item: str = ""
    enabled: bool = True
    business_key: list[str]
    clock_field: str | None = None  # date that starts the reporting clock
    period_field: str | None = None  # date that files a record in a warehouse month
    deadline: Deadline | None = None
    # the field naming the deciding authority (处罚机关/许可机关): the province measures a county's
    # departments by the name a record carries, having no registry of the county's departments
    authority_field: str | None = None
    status_field: str | None = None  # 当前状态 / 公示状态
    revoked_values: list[str] = []  # values of status_field that end publication
    display: DisplayPolicy | None = None
    public_limit: PublicLimit | None = None  # longest public display, from a date of the record
    subject: SubjectRef | None = None  # who a row is about (profile, cross-comparison)
    target: TargetRef | None = None  # repair / objection: the record a row is about
    repair: RepairPolicy | None = None
    objection: ObjectionPolicy | None = None
    listing: ListingPolicy | None = None
    commitment: CommitmentPolicy | None = None
    crosscheck: CrossCheck | None = None
    fields: list[Field]
    rules: list[Rule] = []
    description: str = ""

    @model_validator(mode="after")
    def _references(self) -> "Contract":
        names = [f.name for f in self.fields]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"duplicate field names: {sorted(dupes)}")
        seen: dict[str, str] = {}
        for f in self.fields:
            for h in f.header_names:
                key = normalise_header(h)
                if key in seen and seen[key] != f.name:
                    raise ValueError(f"header {h!r} maps to both {seen[key]!r} and {f.name!r}")
                seen[key] = f.name
        known = set(names)

        def need(name: str | None, where: str) -> None:
            if name is not None and name not in known:
                raise ValueError(f"{where} refers to unknown field {name!r}")

        for k in self.business_key:
            need(k, "business_key")
        need(self.clock_field, "clock_field")
        need(self.period_field, "period_field")
        need(self.authority_field, "authority_field")
        need(self.status_field, "status_field")
        if self.deadline and not self.clock_field:
            raise ValueError("a deadline needs a clock_field")
        for f in self.fields:
            for cond, what in ((f.required_when, "required_when"), (f.empty_when, "empty_when")):
                if cond:
                    need(cond.field, f"field {f.name!r} {what}")
            if f.identifier and f.identifier.when:
                need(f.identifier.when.field, f"field {f.name!r} identifier.when")
            if f.type == "date" and f.long_term_sentinel and not re.match(r"^\d{4}-\d{2}-\d{2}$", f.long_term_sentinel):
                raise ValueError(f"field {f.name!r} long_term_sentinel must be YYYY-MM-DD")
        for f in self.fields:
            if f.infer_when_missing:
                for ir in f.infer_when_missing.rules:
                    need(ir.field, f"field {f.name!r} infer_when_missing")
        if self.public_limit:
            need(self.public_limit.from_field, "public_limit.from_field")
            if self.field(self.public_limit.from_field).type != "date":
                raise ValueError("public_limit.from_field must be a date field")
        for r in self.rules:
            for n in r.fields + r.minus:
                need(n, f"rule {r.id}")
            for group in r.any_of:
                for c in group:
                    need(c.field, f"rule {r.id} any_of")
            need(r.category_field, f"rule {r.id}")
            if r.when:
                need(r.when.field, f"rule {r.id} when")
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate rule ids")
        blocks = {"target": self.target, "repair": self.repair, "objection": self.objection,
                  "listing": self.listing, "commitment": self.commitment, "subject": self.subject}
        for block in ROLE_BLOCKS[self.role]:
            if blocks[block] is None:
                raise ValueError(f"role {self.role!r} needs a {block!r} block")
        for block in ("target", "repair", "objection", "listing", "commitment"):
            if blocks[block] is not None and block not in ROLE_BLOCKS[self.role]:
                raise ValueError(f"a {block!r} block belongs to another role, not {self.role!r}")
        for block_name, block in blocks.items():
            if block is None:
                continue
            for attr, value in block:
                if attr.endswith("_field"):
                    need(value, f"{block_name}.{attr}")
        if self.crosscheck:
            need(self.crosscheck.date_field, "crosscheck.date_field")
        if self.display:
            need(self.display.end_field, "display.end_field")
            need(self.display.tier_field, "display.tier_field")
            for c in self.display.minor_when:
                need(c.field, "display.minor_when")
        return self

    # -- lookups used by every stage -------------------------------------------------
    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.feed}: no field {name!r}")

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def national_fields(self) -> list[Field]:
        """Fields of the layout the contract follows (what templates carry): every field not
        marked ``national: false``. Whether that layout is a national standard: ``is_national``."""
        return [f for f in self.fields if not f.extension]

    def is_national(self, f: Field) -> bool:
        """A field of a national standard (国标): the contract names one and the field is in it."""
        return bool(self.standard) and not f.extension

    def field_source(self, f: Field) -> str:
        """Where a field comes from, in the clerk's words: 国家标准, 地方扩展 or 地方目录 (a feed
        defined by local catalogs only has no national fields)."""
        return "国家标准" if self.is_national(f) else ("地方扩展" if f.extension else "地方目录")

    @property
    def personal_fields(self) -> list[str]:
        return [f.name for f in self.fields if f.privacy == "personal"]

    def header_map(self) -> dict[str, str]:
        """Normalised header text -> field name, over labels, codes and aliases."""
        return {normalise_header(h): f.name for f in self.fields for h in f.header_names}

    def required_columns(self) -> list[str]:
        """Columns a delivery must carry: unconditionally required fields."""
        return [f.name for f in self.fields if f.required]


class Delivery(_Strict):
    kind: Literal["inbox", "http"]
    format: Literal["csv", "xlsx", "json"] | None = None  # what the sample generator writes
    encoding: Literal["utf-8", "utf-8-sig", "gbk", "gb18030"] | None = None
    header_style: Literal["label", "code", "v1"] = "label"
    title_rows: int = 0
    url: str | None = None
    token_env: str | None = None  # name of the environment variable holding the token
    page_size: int = 500

    @model_validator(mode="after")
    def _http(self) -> "Delivery":
        if self.kind == "http" and not self.url:
            raise ValueError("an http delivery needs a url")
        return self


class Department(_Strict):
    code: Annotated[str, PydField(pattern=r"^[a-z][a-z0-9_]*$")]
    name: str
    uscc: str
    feeds: list[str]
    delivery: dict[str, Delivery] = {}  # per feed; missing feed -> inbox with defaults

    def delivery_for(self, feed: str) -> Delivery:
        return self.delivery.get(feed) or Delivery(kind="inbox")


class Registry(_Strict):
    region: str  # e.g. 示范县
    region_code: str
    # the office that issues the monthly indicator export (its title block); default: <region>信用办
    issuing_unit: str | None = None
    # departments in the indicator workbook: "city" keeps this file's order (the order the city's
    # monitoring form lists them in), "rank" ranks them by their 合计 row (及时率, 合规率, 上报率)
    indicator_order: Literal["city", "rank"] = "city"
    departments: list[Department]

    @property
    def issuer(self) -> str:
        return self.issuing_unit or f"{self.region}社会信用体系建设工作领导小组办公室（信用办）"

    def department(self, code: str) -> Department:
        for d in self.departments:
            if d.code == code:
                return d
        raise KeyError(code)


_FULLWIDTH = {i: i - 0xFEE0 for i in range(0xFF01, 0xFF5F)}
_FULLWIDTH[0x3000] = 0x20


def to_halfwidth(text: str) -> str:
    return text.translate(_FULLWIDTH)


def normalise_header(text: str) -> str:
    """Header comparison key: half-width, no whitespace or line breaks, case-folded."""
    return re.sub(r"\s+", "", to_halfwidth(str(text))).casefold()
