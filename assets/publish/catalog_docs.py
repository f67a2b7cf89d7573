"""The catalog (contracts + department registry) as Chinese Markdown, for people.

Data officers and department clerks read the catalog, not YAML; generating the document from
the same contracts the pipeline runs on keeps the two from drifting apart. The small
``describe_*`` helpers are shared with the XLSX submission template (templates.py), so the
template's notes and this document always say the same thing.
"""

from __future__ import annotations

from contracts.model import Condition, Contract, Field, Registry, Rule

TYPE_TEXT = {"string": "文本", "code": "代码", "date": "日期", "decimal": "数值", "integer": "整数"}
ROLE_TEXT = {"records": "信用记录", "ledger": "台账", "repair": "信用修复", "objection": "异议",
             "list": "红黑名单", "commitment": "信用承诺"}
CHECK_TEXT = {"uscc": "统一社会信用代码校验（GB 32100）", "ric": "居民身份证号码校验（GB 11643）",
              "org_code": "组织机构代码校验（GB 11714）"}


def _label(contract: Contract, name: str) -> str:
    try:
        return contract.field(name).label
    except KeyError:
        return name


def describe_condition(contract: Contract, c: Condition) -> str:
    who = _label(contract, c.field)
    if c.equals is not None:
        return f"{who}为“{c.equals}”"
    if c.in_ is not None:
        return f"{who}为“{'/'.join(c.in_)}”之一"
    if c.not_in is not None:
        return f"{who}不为“{'/'.join(c.not_in)}”"
    if c.contains_any is not None:
        return f"{who}含“{'/'.join(c.contains_any)}”"
    if c.at_least is not None:
        return f"{who}不少于{_num(c.at_least)}"
    return f"{who}仅含“{'/'.join(c.subset_of or [])}”"


def describe_required(contract: Contract, f: Field) -> str:
    if f.required:
        text = "必填"
    elif f.required_when:
        text = f"条件必填（{describe_condition(contract, f.required_when)}时）"
    else:
        text = "选填"
    if f.empty_when:
        text += f"；{describe_condition(contract, f.empty_when)}时不填"
    return text


def _num(x: float | None) -> str:
    if x is None:
        return ""
    return f"{int(x)}" if float(x).is_integer() else f"{x}"


def describe_format(f: Field) -> str:
    """Type and format in words, e.g. 日期（YYYY-MM-DD）."""
    parts = [TYPE_TEXT[f.type]]
    if f.type == "date":
        parts[0] += "（YYYY-MM-DD，也接受 YYYY/MM/DD、YYYYMMDD）"
    if f.long_term_sentinel:
        parts.append(f"{f.long_term_sentinel} 表示长期")
    if f.pattern:
        parts.append(f"格式 `{f.pattern}`")
    if f.min_length is not None and f.max_length is not None:
        parts.append(f"长度{f.min_length}–{f.max_length}字符")
    elif f.max_length is not None:
        parts.append(f"最长{f.max_length}字符")
    elif f.min_length is not None:
        parts.append(f"至少{f.min_length}字符")
    if f.minimum is not None or f.maximum is not None:
        parts.append(f"取值范围 {_num(f.minimum)}–{_num(f.maximum)}")
    if f.unit:
        parts.append(f"单位：{f.unit}（标明其他金额单位的按单位换算并提示）")
    if f.identifier:
        check = CHECK_TEXT[f.identifier.kind]
        parts.append(check + ("（不符仅提示）" if f.identifier.severity == "warning" else ""))
    if f.not_future:
        parts.append("不得晚于报送日")
    return "；".join(parts)


def describe_values(f: Field) -> str:
    if not f.enum:
        return ""
    text = "、".join(f.enum)
    if f.enum_allow_prefix:
        text += "；或 " + "、".join(f"{p}<名称>" for p in f.enum_allow_prefix)
    if f.multi_value_separator:
        text += f"；可多选，以“{f.multi_value_separator}”分隔"
    return text


def describe_deadline(contract: Contract) -> str:
    d = contract.deadline
    if not d:
        return "无报送时限"
    unit = "个工作日" if d.kind == "working" else "日（自然日）"
    clock = _label(contract, contract.clock_field) if contract.clock_field else "决定日期"
    text = f"自{clock}起 {d.days} {unit}内报送（决定当日不计入）"
    if d.kind == "calendar" and d.extend_over_holidays:
        text += "；期限末日为法定节假日的，顺延至节假日后第一日（《民法典》第二百零三条）"
    return text + (f"；依据：{d.basis}" if d.basis else "")


def describe_rule(contract: Contract, r: Rule) -> str:
    text = r.message
    if r.kind == "requires_any":
        groups = ["且".join(describe_condition(contract, c) for c in g) for g in r.any_of]
        text += "（满足其一：" + "；或 ".join(groups) + "）"
    return text + (f"（依据：{r.basis}）" if r.basis else "")


def describe_codes(f: Field) -> str:
    """Code table and inference of a field, in words (empty when it has neither)."""
    parts = []
    if f.code_table:
        codes = "、".join(f"{k}={v}" for k, v in f.code_table.codes.items())
        parts.append(f"代码表：{codes}（来源：{f.code_table.source}）")
    if f.infer_when_missing:
        rules = "；".join(
            f"{r.field}{('以' + r.prefix + '开头') if r.prefix else '已填'}→{r.value}" for r in f.infer_when_missing.rules
        )
        parts.append(f"文件缺此列时推定：{rules}（{f.infer_when_missing.basis}）")
    return "；".join(parts)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _credit_meta(contract: Contract) -> list[tuple[str, str]]:
    """The contract's subject, target, repair, objection, list, commitment and cross-check settings."""
    L = lambda n: _label(contract, n) if n else "—"  # noqa: E731
    out = []
    if s := contract.subject:
        ids = "、".join(L(n) for n in (s.uscc_field, s.id_field) if n)
        out.append(("主体", f"名称：{L(s.name_field)}；标识：{ids}（有统一社会信用代码时用之，否则用证件号码）"))
    if t := contract.target:
        auth = f"＋{L(t.authority_field)}" if t.authority_field else ""
        out.append(("指向记录", f"{L(t.feed_field)}＋{L(t.ref_field)}{auth}"))
    if r := contract.repair:
        out.append(("信用修复", f"修复日期：{L(r.date_field)}；修复日期须不早于该记录失信程度在其决定日期施行的规定下的最短公示期，"
                              "否则不予修复并列入交叉比对结果；修复后停止公示、共享和比对使用，归集量与历史保留"))
    if o := contract.objection:
        mode = "公开视图中标注“异议中”" if o.while_open == "mark" else "暂停公示"
        out.append(("异议处理", f"编号：{L(o.number_field)}；提出日期：{L(o.filed_field)}；处理结果：{L(o.outcome_field)}"
                              f"（{L(o.outcome_date_field)}）；处理中的记录{mode}；结果为“{'、'.join(o.revoke_values)}”时记录撤销"))
    if li := contract.listing:
        colour = "黑名单（严重失信主体名单）" if li.colour == "black" else "红名单（守信激励）"
        out.append(("名单", f"{colour}；名单名称：{L(li.list_field)}；列入机关：{L(li.authority_field)}；"
                          f"自{L(li.from_field)}起在列，至{L(li.to_field)}当日移出"))
    if c := contract.commitment:
        out.append(("信用承诺", f"承诺日期：{L(c.date_field)}；此后该主体在{'、'.join(c.broken_by)}中受到的记录使承诺记为未履行"))
    if x := contract.crosscheck:
        out.append(("交叉比对", f"{L(x.date_field)}当日主体在黑名单中的，提示：{x.message}"))
    return out


def _feed_section(contract: Contract) -> list[str]:
    out = [f"## {contract.title}（`{contract.feed}`）", ""]
    meta = [
        ("类别", contract.category or ROLE_TEXT[contract.role]),
        ("用途", ROLE_TEXT[contract.role]),
        ("法律依据", contract.legal_basis),
        ("目录事项", contract.catalog_item or "—"),
        ("业务主键", "＋".join(_label(contract, k) for k in contract.business_key)),
        ("字段标准", contract.standard or "无国家字段标准（按地方目录）"),
        ("报送时限", describe_deadline(contract)),
        ("启用", "是" if contract.enabled else "否（本部署不归集）"),
    ]
    if contract.status_field and contract.revoked_values:
        meta.append(("停止公示", f"{_label(contract, contract.status_field)}为“{'/'.join(contract.revoked_values)}”的记录停止公示（保留历史）"))
    if contract.authority_field:
        meta.append(("决定机关", f"省级模式按记录中的“{_label(contract, contract.authority_field)}”统计部门指标（authority_field）"))
    if contract.public_limit:
        pl = contract.public_limit
        meta.append(("公示期限", f"自{_label(contract, pl.from_field)}起最长{pl.months}个月；依据：{pl.basis}"))
    meta += _credit_meta(contract)
    if contract.description:
        meta.append(("说明", contract.description))
    out += ["| 项目 | 内容 |", "|---|---|"] + [f"| {k} | {_cell(v)} |" for k, v in meta] + [""]
    out += ["### 字段", "", "| 序号 | 中文名 | 代码 | 字段名 | 类型/格式 | 必填 | 取值 | 隐私 | 国标 |",
            "|---|---|---|---|---|---|---|---|---|"]
    for i, f in enumerate(contract.fields, start=1):
        out.append("| " + " | ".join(_cell(x) for x in (
            i, f.label, f.code or "—", f"`{f.name}`", describe_format(f), describe_required(contract, f),
            "；".join(x for x in (describe_values(f), describe_codes(f)) if x) or "—",
            "个人信息（公开时遮蔽）" if f.privacy == "personal" else "公开",
            "是" if contract.is_national(f) else ("扩展" if f.extension else "地方目录"))) + " |")
    out.append("")
    if contract.rules:
        out += ["### 跨字段规则", "", "| 规则编号 | 涉及字段 | 级别 | 说明 |", "|---|---|---|---|"]
        for r in contract.rules:
            fields = "、".join(_label(contract, n) for n in r.fields + r.minus) or "—"
            level = "错误" if r.severity == "error" else "提示"
            out.append(f"| `{r.id}` | {_cell(fields)} | {level} | {_cell(describe_rule(contract, r))} |")
        out.append("")
    if contract.display:
        out += ["### 公示期限", "", "| 施行日期 | 依据 | 失信程度 | 最短（月） | 最长（月） | 公示 |", "|---|---|---|---|---|---|"]
        for regime in contract.display.regimes:
            for t in regime.tiers:
                out.append(f"| {regime.effective_from} | {_cell(regime.basis)} | {t.tier} | {t.min_months} | {t.max_months} | {'是' if t.publish else '原则上不公示'} |")
        out += ["", f"某施行期无对应失信程度的（如2026-04-01前的“轻微”），按{contract.display.default_tier}审核。"]
        out.append("")
    return out


def render_markdown(contracts: dict[str, Contract], registry: Registry | None) -> str:
    """The whole catalog: one section per feed, then the department registry."""
    out = ["# 公共信用信息资源目录", ""]
    if registry is not None:
        order = "按本目录部门顺序（市里规定顺序）" if registry.indicator_order == "city" else "按合计及时率、合规率、上报率排名"
        out += [f"地区：{registry.region}（{registry.region_code}）；监测指标填报单位：{registry.issuer}；"
                f"监测指标部门排序（indicator_order）：{order}", ""]
    out += ["| 信息类别 | 代码 | 用途 | 字段数 | 报送时限 |", "|---|---|---|---|---|"]
    for c in contracts.values():
        out.append(f"| {c.title} | `{c.feed}` | {ROLE_TEXT[c.role]} | {len(c.fields)} | {_cell(describe_deadline(c))} |")
    out.append("")
    for c in contracts.values():
        out += _feed_section(c)
    if registry is not None:
        out += ["## 报送部门", "", "| 部门代码 | 部门名称 | 统一社会信用代码 | 报送信息类别 | 报送方式 |", "|---|---|---|---|---|"]
        for d in registry.departments:
            feeds = "、".join(contracts[f].title if f in contracts else f for f in d.feeds)
            ways = []
            for f in d.feeds:
                dl = d.delivery_for(f)
                how = "接口" if dl.kind == "http" else f"文件{('（' + dl.format.upper() + '）') if dl.format else ''}"
                ways.append(f"{contracts[f].title if f in contracts else f}：{how}")
            out.append(f"| `{d.code}` | {d.name} | {d.uscc} | {feeds} | {_cell('；'.join(ways))} |")
        out.append("")
    return "\n".join(out)
