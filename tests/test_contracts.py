"""The catalog loads, matches the national layout, fails loudly and precisely when broken,
and a new feed needs only a YAML file."""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

import openpyxl
import pytest
import yaml

from assets.publish.catalog_docs import render_markdown
from assets.publish.templates import write_template
from contracts import ContractError, load_contract, load_contracts, load_registry
from pipelines.samples.feeds import generate

PENALTY_CODES = [
    "CF_XDR_MC", "CF_XDR_LB", "CF_XDR_SHXYM", "CF_XDR_GSZC", "CF_XDR_ZZJG", "CF_XDR_SWDJ", "CF_XDR_SYDW",
    "CF_XDR_SHZZ", "CF_FRDB", "CF_FR_ZJLX", "CF_FR_ZJHM", "CF_XDR_ZJLX", "CF_XDR_ZJHM", "CF_WSH", "CF_WFXW",
    "CF_SY", "CF_YJ", "CF_CFLB", "CF_NR", "CF_NR_FK", "CF_NR_WFFF", "CF_NR_ZKDX", "CF_JDRQ", "CF_YXQ",
    "CF_GSJZQ", "CF_CFJG", "CF_CFJGDM", "CF_SJLY", "CF_SJLYDM", "BZ",
]
PERMIT_CODES = [
    "XK_XDR_MC", "XK_XDR_LB", "XK_XDR_SHXYM", "XK_XDR_GSZC", "XK_XDR_ZZJG", "XK_XDR_SWDJ", "XK_XDR_SYDW",
    "XK_XDR_SHZZ", "XK_FRDB", "XK_FR_ZJLX", "XK_FR_ZJHM", "XK_XDR_ZJLX", "XK_XDR_ZJHM", "XK_XKWS", "XK_WSH",
    "XK_XKLB", "XK_XKZS", "XK_XKBH", "XK_NR", "XK_JDRQ", "XK_YXQZ", "XK_YXQZI", "XK_XKJG", "XK_XKJGDM",
    "XK_ZT", "XK_LYDW", "XK_LYDWDM", "BZ",
]


def test_shipped_catalog_and_registry_load(shipped_contracts_dir):
    contracts = load_contracts()
    assert set(contracts) == {"penalties", "permits", "utility_arrears", "agri_subsidies", "declarations", "repairs",
                              "objections", "blacklist", "redlist", "commitments", "tax_arrears", "enforcement"}
    assert contracts["declarations"].role == "ledger" and contracts["repairs"].role == "repair"
    assert {contracts[f].role for f in ("objections", "blacklist", "redlist", "commitments")} == {"objection", "list", "commitment"}
    assert contracts["tax_arrears"].role == contracts["enforcement"].role == "records"
    registry = load_registry(contracts=contracts)
    assert registry.region_code == "500237"
    owed = {f for d in registry.departments for f in d.feeds}
    assert owed == set(contracts)  # every feed has a department, every department feed a contract


def test_national_layouts_in_order():
    contracts = load_contracts()
    assert [f.code for f in contracts["penalties"].national_fields] == PENALTY_CODES
    assert [f.code for f in contracts["permits"].national_fields] == PERMIT_CODES


def _penalties(tmp_path: Path, shipped: Path) -> tuple[dict, Path]:
    data = yaml.safe_load((shipped / "penalties.yaml").read_text(encoding="utf-8"))
    return data, tmp_path / "penalties.yaml"


def _field(data: dict, name: str) -> dict:
    return next(f for f in data["fields"] if f["name"] == name)


def _dump(data: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _unknown_key(d):
    _field(d, "fine_amount")["requried"] = True


def _bad_type(d):
    _field(d, "fine_amount")["type"] = "money"


def _unknown_condition_field(d):
    _field(d, "subject_uscc")["required_when"]["field"] = "subject_type"


def _duplicate_name(d):
    _field(d, "violation_facts")["name"] = "violation_type"


@pytest.mark.parametrize(
    "breaker, expected",
    [
        (_unknown_key, ['field "fine_amount"', "requried", "unknown key"]),
        (_bad_type, ['field "fine_amount"', ".type", "string"]),
        (_unknown_condition_field, ["subject_uscc", "required_when", "unknown field 'subject_type'"]),
        (_duplicate_name, ["duplicate field names", "violation_type"]),
    ],
    ids=["unknown-key", "bad-type", "required-when-unknown-field", "duplicate-name"],
)
def test_broken_contract_names_file_and_field(tmp_path, shipped_contracts_dir, breaker, expected):
    data, path = _penalties(tmp_path, shipped_contracts_dir)
    breaker(data)
    _dump(data, path)
    with pytest.raises(ContractError) as err:
        load_contract(path)
    message = str(err.value)
    assert message.startswith("penalties.yaml: "), message
    for part in expected:
        assert part in message, message
    # the same failure stops loading of the whole directory
    with pytest.raises(ContractError, match="penalties.yaml"):
        load_contracts(tmp_path)


def test_invalid_yaml_names_file_and_line(tmp_path, shipped_contracts_dir):
    lines = (shipped_contracts_dir / "penalties.yaml").read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if "name: fine_amount" in line)
    lines.insert(at + 1, "  label: [罚款金额（万元）")  # unclosed flow sequence
    path = tmp_path / "penalties.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ContractError) as err:
        load_contract(path)
    message = str(err.value)
    assert message.startswith("penalties.yaml: line "), message
    assert "not valid YAML" in message
    line_no = int(message.split("line ")[1].split(":")[0])
    assert at + 1 <= line_no <= at + 4  # points at the broken fine_amount entry, not at the top


COERCIONS = """\
feed: coercions
title: 行政强制
category: 行政行为
legal_basis: 《中华人民共和国行政强制法》；县社会信用体系建设实施方案（2022）
business_key: [decision_no, authority_uscc]
clock_field: decision_date
period_field: decision_date
deadline: {days: 7, kind: working, basis: 作出决定之日起7个工作日内}
fields:
- {name: subject_name, label: 行政相对人名称, code: QZ_XDR_MC, required: true, max_length: 200}
- {name: subject_uscc, label: 统一社会信用代码, code: QZ_XDR_SHXYM, type: code, required: true, identifier: {kind: uscc}, max_length: 18}
- {name: decision_no, label: 行政强制决定书文号, code: QZ_WSH, type: code, required: true, max_length: 128}
- {name: measure, label: 强制措施种类, code: QZ_ZL, required: true, enum: [查封场所设施或者财物, 扣押财物, 冻结存款汇款, 其他]}
- {name: decision_date, label: 决定日期, code: QZ_JDRQ, type: date, required: true, not_future: true}
- {name: authority, label: 实施机关, code: QZ_SSJG, required: true, max_length: 200}
- {name: authority_uscc, label: 实施机关统一社会信用代码, code: QZ_SSJGDM, type: code, required: true, identifier: {kind: uscc}, max_length: 18}
- {name: local_note, label: 地方备注, national: false, max_length: 200}
rules:
- {id: QZ-KEY-UNIQUE, kind: unique_key, fields: [decision_no, authority_uscc], message: 同一批报送中，决定书文号与实施机关重复}
"""


def test_fifth_contract_needs_no_code(tmp_path, shipped_contracts_dir):
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for p in shipped_contracts_dir.glob("*.yaml"):
        shutil.copy(p, catalog / p.name)
    (catalog / "coercions.yaml").write_text(COERCIONS, encoding="utf-8")
    registry_yaml = yaml.safe_load((catalog / "departments.yaml").read_text(encoding="utf-8"))
    registry_yaml["departments"].append({
        "code": "gaj", "name": "巫山县公安局", "uscc": "11500237716605742P", "feeds": ["coercions"],
        "delivery": {"coercions": {"kind": "inbox", "format": "csv", "encoding": "gb18030", "header_style": "code"}},
    })
    _dump(registry_yaml, catalog / "departments.yaml")

    contracts = load_contracts(catalog)
    assert "coercions" in contracts and len(contracts) == len(load_contracts()) + 1
    registry = load_registry(catalog / "departments.yaml", contracts=contracts)

    # template: national columns in contract order, then the local extension; drop-down on the enumeration
    out = write_template(contracts["coercions"], tmp_path / "coercions.xlsx")
    ws = openpyxl.load_workbook(out).worksheets[0]
    assert [c.value for c in ws[1]] == ["行政相对人名称", "统一社会信用代码", "行政强制决定书文号", "强制措施种类",
                                        "决定日期", "实施机关", "实施机关统一社会信用代码", "地方备注"]
    lists = [dv for dv in ws.data_validations.dataValidation if dv.type == "list"]
    assert [str(dv.sqref).split(":")[0] for dv in lists] == ["D2"]

    # catalog document
    md = render_markdown(contracts, registry)
    assert "## 行政强制（`coercions`）" in md and "QZ-KEY-UNIQUE" in md and "巫山县公安局" in md

    # sample generator: the new feed gets files and truth rows from the contract alone
    data = tmp_path / "data"
    generate(data, start=date(2026, 9, 21), days=2, rows_per_day=5, seed=3, defect_rate=0.0,
             contracts=contracts, registry=registry)
    files = sorted((data / "inbox" / "gaj" / "coercions").rglob("*.csv"))
    assert files
    header = files[0].read_bytes().decode("gb18030").splitlines()[0].split(",")
    assert header[:3] == ["QZ_XDR_MC", "QZ_XDR_SHXYM", "QZ_WSH"] and header[-1] == "地方备注"
    with (data / "truth.csv").open(encoding="utf-8") as fh:
        truth = [r for r in csv.DictReader(fh) if r["feed"] == "coercions"]
    assert truth and all(r["valid"] == "true" for r in truth)


def test_shipped_catalog_document_is_current():
    """docs/catalog.md is generated from the contracts; regenerate it with
    `credit-etl contracts --format md > docs/catalog.md` after changing a contract."""
    from pathlib import Path

    from assets.publish.catalog_docs import render_markdown
    from contracts import load_contracts, load_registry

    contracts = load_contracts()
    doc = Path(__file__).resolve().parents[1] / "docs" / "catalog.md"
    assert doc.read_text(encoding="utf-8").rstrip("\n") == render_markdown(contracts, load_registry(contracts=contracts)).rstrip("\n")


def _objections(shipped: Path) -> dict:
    return yaml.safe_load((shipped / "objections.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "breaker, expected",
    [
        (lambda d: d.pop("objection"), "role 'objection' needs a 'objection' block"),
        (lambda d: d["subject"].update(id_field="subject_idno"), "subject.id_field refers to unknown field 'subject_idno'"),
        (lambda d: d["objection"].update(while_open="hide"), "objection.while_open"),
        (lambda d: d.update(repair={"date_field": "filed_date"}), "a 'repair' block belongs to another role"),
        (lambda d: d["target"].update(ref_feld="decision_no"), "unknown key"),
        (lambda d: d.update(subject={"name_field": "subject_name"}), "subject needs uscc_field or id_field"),
    ],
    ids=["missing-block", "unknown-field", "bad-mode", "foreign-block", "misspelt-key", "subject-without-id"],
)
def test_credit_blocks_are_validated(tmp_path, shipped_contracts_dir, breaker, expected):
    data = _objections(shipped_contracts_dir)
    breaker(data)
    path = _dump(data, tmp_path / "objections.yaml")
    with pytest.raises(ContractError) as err:
        load_contract(path)
    assert expected in str(err.value), str(err.value)


def test_black_list_and_crosscheck_settings_reach_the_catalog_document():
    from assets.publish.catalog_docs import render_markdown

    md = render_markdown(load_contracts(), None)
    assert "黑名单（严重失信主体名单）" in md and "获得涉农补贴发放" in md and "公开视图中标注“异议中”" in md
    assert "修复日期须不早于该记录失信程度" in md
