"""The sample generator writes what departments really send, and truth.csv tells the truth
about it: every claim is checked here against the files read back independently."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from contracts import load_contracts, load_registry, normalise_header, to_halfwidth
from pipelines.samples.feeds import TRUTH_COLUMNS, generate
from pipelines.samples.ids import PLACEHOLDER_USCC
from pipelines.samples.oracle import deadline

START = date(2026, 9, 21)  # a Monday
ARGS = dict(start=START, days=3, rows_per_day=15, seed=11, defect_rate=0.08)


@pytest.fixture(scope="module")
def catalog():
    contracts = load_contracts()
    return contracts, load_registry(contracts=contracts)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gen") / "data"
    summary = generate(root, **ARGS)
    assert "truth.csv" in summary.describe()
    return root


@pytest.fixture(scope="module")
def truth(data) -> list[dict]:
    with (data / "truth.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == TRUTH_COLUMNS
        return list(reader)


def _delivery(registry, path: Path, data: Path):
    rel = path.relative_to(data).parts  # inbox/<dept>/<feed>/<day>/<name> or http_outbox/<dept>/<feed>/<day>.json
    dept = registry.department(rel[1])
    return dept, rel[2], dept.delivery_for(rel[2])


def _data_files(data: Path) -> list[Path]:
    return sorted(p for p in (data / "inbox").rglob("*") if p.is_file()) + sorted((data / "http_outbox").rglob("*.json"))


def _read_back(path: Path, encoding: str | None, title_rows: int) -> tuple[list[str], list[tuple[int, list]]]:
    """(header, [(row number a clerk sees, cells)]) read with plain csv/openpyxl/json."""
    if path.suffix == ".json":
        records = json.loads(path.read_text(encoding="utf-8"))
        header = list(records[0]) if records else []
        return header, [(i, list(r.values())) for i, r in enumerate(records, start=1)]
    if path.suffix == ".xlsx":
        ws = openpyxl.load_workbook(path, read_only=True).worksheets[0]
        rows = list(ws.iter_rows(values_only=True))
        header = [str(c) for c in rows[title_rows]]
        body = [(n, list(r)) for n, r in enumerate(rows, start=1) if n > title_rows + 1 and any(c not in (None, "") for c in r)]
        return header, body
    text = path.read_bytes().decode(encoding)
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    return rows[title_rows], [(n, r) for n, r in enumerate(rows, start=1) if n > title_rows + 1]


def test_every_delivery_format_is_written(data, catalog):
    contracts, registry = catalog
    seen = Counter()
    for path in _data_files(data):
        dept, feed, delivery = _delivery(registry, path, data)
        raw = path.read_bytes()
        if path.suffix == ".csv":
            enc = delivery.encoding or "utf-8"
            seen[enc] += 1
            assert raw.startswith(b"\xef\xbb\xbf") == (enc == "utf-8-sig"), path
            if enc in ("gbk", "gb18030"):
                with pytest.raises(UnicodeDecodeError):
                    raw.decode("utf-8")
                raw.decode(enc)
            else:
                raw.decode("utf-8")
        elif path.suffix == ".xlsx":
            assert delivery.format == "xlsx"
            seen["xlsx"] += 1
        else:
            assert path.suffix == ".json" and delivery.kind == "http"
            seen["json"] += 1
    assert {"utf-8", "utf-8-sig", "gbk", "gb18030", "xlsx", "json"} <= set(seen), seen
    # CSV deliveries that use a legacy encoding really contain text only that codec reads
    jt = next((data / "inbox" / "jtysj" / "penalties").rglob("*.csv")).read_bytes()
    assert "行政处罚决定书文号".encode("gbk") in jt


def test_truth_agrees_with_files(data, catalog, truth):
    contracts, registry = catalog
    by_file = defaultdict(list)
    for r in truth:
        by_file[r["file"]].append(r)
    files = _data_files(data)
    assert {p.relative_to(data).as_posix() for p in files} >= set(by_file)
    checked = 0
    for path in files:
        dept, feed, delivery = _delivery(registry, path, data)
        contract = contracts[feed]
        title_rows = 0 if path.suffix == ".json" else delivery.title_rows
        header, body = _read_back(path, delivery.encoding or "utf-8", title_rows)
        rows = sorted(by_file.get(path.relative_to(data).as_posix(), []), key=lambda r: int(r["row_no"]))
        assert [int(r["row_no"]) for r in rows] == [n for n, _ in body], path
        assert all(r["feed"] == feed and r["dept"] == dept.code for r in rows)
        if not body:
            continue
        # the first business-key column of every row holds the value truth.csv names
        hmap = contract.header_map()
        col = next(i for i, h in enumerate(header) if hmap.get(normalise_header(h)) == contract.business_key[0])
        key_field = contract.field(contract.business_key[0])
        for (_n, cells), r in zip(body, rows):
            got = to_halfwidth(str(cells[col] or "")).strip()
            got = key_field.enum_aliases.get(got, got)
            got = got.upper() if key_field.type == "code" else got
            assert got == r["business_key"].split("|")[0], (path, _n, got, r["business_key"])
            checked += 1
    assert checked > 300


def test_truth_columns_are_consistent(truth):
    for r in truth:
        assert r["valid"] in ("true", "false") and r["late"] in ("true", "false", "")
        assert (r["valid"] == "false") == bool(r["rule_ids"]), r
        assert (r["defect"] != "") == (r["valid"] == "false"), r
        ids = r["rule_ids"].split(";") if r["rule_ids"] else []
        assert ids == sorted(ids)
        if r["late"]:
            assert r["decision_date"], r


def test_defect_share_and_rule_ids(truth):
    records = [r for r in truth if r["feed"] in ("penalties", "permits", "utility_arrears", "agri_subsidies")]
    share = sum(r["defect"] != "" for r in records) / len(records)
    assert 0.04 <= share <= 0.16, share
    assert all(r["valid"] == "true" for r in truth if r["feed"] in ("declarations", "repairs"))
    for r in records:
        ids, d = r["rule_ids"].split(";") if r["rule_ids"] else [], r["defect"]
        if d in ("bad_uscc_check", "placeholder_uscc"):
            assert len(ids) == 1 and ids[0].endswith(".uscc")
        elif d == "bad_ric":
            assert len(ids) == 1 and ids[0].endswith(".ric")
        elif d == "missing_required":
            assert len(ids) == 1 and ids[0].endswith(".required")
        elif d == "duplicate":
            assert ids == [{"penalties": "PEN-KEY-UNIQUE", "permits": "PMT-KEY-UNIQUE",
                            "utility_arrears": "ARR-KEY-UNIQUE", "agri_subsidies": "AGR-KEY-UNIQUE"}[r["feed"]]]
        elif d:
            assert 1 <= len(ids) <= 2, r  # PEN-DISPLAY-ORDER brings PEN-DISPLAY-RANGE along
    # duplicates: both rows, same file, same key
    dup = Counter((r["file"], r["business_key"]) for r in records if r["defect"] == "duplicate")
    assert all(n == 2 for n in dup.values())


def test_many_defect_kinds_with_expected_rules(tmp_path):
    generate(tmp_path / "d", start=START, days=2, rows_per_day=20, seed=5, defect_rate=0.6)
    with (tmp_path / "d" / "truth.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ids = {i for r in rows for i in r["rule_ids"].split(";") if i}
    assert {"subject_uscc.uscc", "subject_id_no.ric", "PEN-FINE", "PMT-VALID-ORDER", "PEN-DISPLAY-RANGE",
            "PEN-KEY-UNIQUE", "PMT-KEY-UNIQUE", "arrears_amount.range", "billing_period.pattern",
            "AGR-AREA-CAP", "decision_date.required", "ARR-LISTING"} <= ids, sorted(ids)
    assert any(i.endswith(".sentinel") for i in ids) and any(i.endswith(".type") for i in ids)
    assert any(i.endswith("-PREFIX-92") for i in ids) and any(i.endswith(".enum") for i in ids)
    # a placeholder code is really in the file, at the row truth names
    ph = next(r for r in rows if r["defect"] == "placeholder_uscc")
    assert PLACEHOLDER_USCC.encode() in (tmp_path / "d" / ph["file"]).read_bytes() or ph["file"].endswith(".xlsx")


def test_timeliness(truth):
    contracts = load_contracts()
    # the reference calendar example: National Day and Mid-Autumn skipped, make-up Saturday counted
    assert deadline(contracts["penalties"], date(2026, 9, 22)) == date(2026, 10, 9)
    assert deadline(contracts["penalties"], date(2026, 9, 23)) == date(2026, 10, 10)
    timed = [r for r in truth if r["late"]]
    late = [r for r in timed if r["late"] == "true"]
    assert 0 < len(late) < len(timed) * 0.5
    for r in timed:
        decided, received = date.fromisoformat(r["decision_date"]), date.fromisoformat(r["received_date"])
        assert decided < received
        if r["late"] == "true":
            assert (received - decided).days > 7  # 7 working days are at least 7 calendar days
    assert all(r["late"] == "" for r in truth if r["feed"] in ("declarations", "repairs"))


def test_ledgers_and_repairs(data, truth):
    with (data / "truth_declarations.csv").open(encoding="utf-8") as fh:
        decl = list(csv.DictReader(fh))
    assert decl
    # the ledger counts records by the month of their decision date. truth.csv gives a row's
    # decision date only where it is usable (a defect may have spoilt it), so the generated count
    # lies between the records dated in the month and those plus the undated ones
    for d in decl:
        rows = [r for r in truth if r["dept"] == d["dept"] and r["feed"] == d["target_feed"]]
        valid_dated = {r["business_key"] for r in rows if r["decision_date"].startswith(d["month"]) and r["valid"] == "true"}
        dated = {r["business_key"] for r in rows if r["decision_date"].startswith(d["month"])}
        spoilt = {r["business_key"] for r in rows if r["valid"] == "false" and not r["decision_date"].startswith(d["month"])}
        assert len(valid_dated) <= int(d["generated_count"]) <= len(dated) + len(spoilt), d
    # some departments declare more than they send (records never reported), some fewer (a
    # ledger mismatch that shows as 上报率 above 100%)
    assert any(int(d["declared_count"]) > int(d["generated_count"]) for d in decl)
    assert any(int(d["declared_count"]) < int(d["generated_count"]) for d in decl)
    # ledgers are filed on the 1st of the following month or on the last generated day
    for r in truth:
        if r["feed"] == "declarations":
            month = r["business_key"].split("|")[0]
            assert r["received_date"] > month, r
    ledger_keys = {(r["dept"], r["business_key"]) for r in truth if r["feed"] == "declarations"}
    assert ledger_keys == {(d["dept"], f"{d['month']}|{d['target_feed']}") for d in decl}
    # first valid arrival of each penalty (a key may arrive again later: a resend or correction)
    valid_penalties: dict = {}
    for r in sorted((r for r in truth if r["feed"] == "penalties" and r["valid"] == "true"), key=lambda r: r["received_date"]):
        valid_penalties.setdefault(r["business_key"], r)
    repairs = [r for r in truth if r["feed"] == "repairs"]
    assert repairs
    for r in repairs:
        target_feed, key = r["business_key"].split("|", 1)
        assert target_feed == "penalties" and key in valid_penalties
        assert valid_penalties[key]["received_date"] < r["received_date"]


def test_same_seed_same_bytes(data, tmp_path):
    again = tmp_path / "again"
    generate(again, **ARGS)
    ours = {p.relative_to(data): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    theirs = {p.relative_to(again): p.read_bytes() for p in again.rglob("*") if p.is_file()}
    assert ours.keys() == theirs.keys()
    assert [k for k in ours if ours[k] != theirs[k]] == []
    other = tmp_path / "other"
    generate(other, **{**ARGS, "seed": 12})
    assert (other / "truth.csv").read_bytes() != (data / "truth.csv").read_bytes()


def test_rerun_replaces_own_output_but_never_foreign_files(tmp_path):
    root = tmp_path / "d"
    generate(root, start=START, days=1, rows_per_day=3, seed=1)
    generate(root, start=START, days=1, rows_per_day=3, seed=2)  # its own earlier output: replaced
    with (root / "truth.csv").open(encoding="utf-8") as fh:
        files = {r["file"] for r in csv.DictReader(fh)}
    assert {p.relative_to(root).as_posix() for p in _data_files(root)} >= files
    foreign = tmp_path / "real"
    (foreign / "inbox" / "scjgj").mkdir(parents=True)
    (foreign / "inbox" / "scjgj" / "a.csv").write_text("x", encoding="utf-8")
    with pytest.raises(FileExistsError):
        generate(foreign, start=START, days=1, rows_per_day=3, seed=1)
    assert (foreign / "inbox" / "scjgj" / "a.csv").exists()


def _all_cells(root: Path, feed: str = "") -> list[str]:
    """Every cell of every written file (CSV in its encoding, XLSX, JSON pages) as text."""
    out: list[str] = []
    for p in sorted(root.rglob("*")):
        if feed and feed not in p.parts:
            continue
        if p.suffix == ".csv" and p.name not in ("truth.csv", "truth_declarations.csv"):
            raw = p.read_bytes()
            for enc in ("utf-8-sig", "gb18030"):
                try:
                    text = raw.decode(enc)
                    break
                except UnicodeDecodeError:
                    continue
            out += [c for row in csv.reader(io.StringIO(text)) for c in row]
        elif p.suffix == ".xlsx":
            wb = openpyxl.load_workbook(p, read_only=True)
            out += [str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row if c is not None]
        elif p.suffix == ".json" and "http_outbox" in p.parts:
            out += [str(v) for rec in json.loads(p.read_text(encoding="utf-8")) for v in rec.values() if v is not None]
    return out


def test_the_issue_11_rules_are_exercised(data, truth):
    """Every corrected rule of issue 11 shows up in the sample: amounts marked with the other
    unit, the seed's subsidy spelling, local status codes, the 2016 penalty category, subsidies
    to organisations with a USCC, records decided in another month than received, pre-2026
    decisions, and records sent again with the status that ends their publication."""
    import re

    cells = _all_cells(data)
    assert any(re.fullmatch(r"\d+(\.\d+)?万元", c) for c in cells)  # 元 amounts written in 万元
    assert any(re.fullmatch(r"\d+(\.\d+)?元", c) for c in cells)  # 万元 fines written in 元
    assert "耕地地力补贴" in cells
    assert "暂扣或者吊销许可证件" in " ".join(cells) or "暂扣或者吊销许可证" in " ".join(cells)
    subsidies = [c.strip() for c in _all_cells(data, "agri_subsidies")]
    # recipients that are cooperatives (93), companies (91) or family farms (92), with their USCC
    assert any(re.fullmatch(r"9[123]\w{16}", c) for c in subsidies)
    assert any(c.endswith(("合作社", "家庭农场", "有限公司")) for c in subsidies)
    assert "未缴清" in cells
    # the 2016 layout's second category column (处罚类别2) carries the further categories
    v1 = [p for p in (data / "inbox").rglob("*.csv") if "penalties" in p.parts and "jtysj" in p.parts]
    table = [row for p in v1 for row in csv.reader(io.StringIO(p.read_bytes().decode("gbk")))]
    heads = [r for r in table if "处罚类别2" in r]
    assert heads
    col = heads[0].index("处罚类别2")
    assert any(len(r) > col and r[col].strip() for r in table if r not in heads)
    # decisions of one month received in the next (the 上报率 case) and decisions before 2026-04-01
    dated = [r for r in truth if r["decision_date"] and r["feed"] not in ("declarations", "repairs")]
    assert any(r["decision_date"][:7] != r["received_date"][:7] for r in dated)
    assert any(r["feed"] == "penalties" and r["decision_date"] < "2026-04-01" for r in dated)
    # a record sent again later, valid both times: its ending status (已缴清 / 无效 / 撤销 / 已撤销)
    valid = Counter((r["feed"], r["dept"], r["business_key"]) for r in truth if r["valid"] == "true" and r["defect"] == "")
    assert any(n >= 2 for n in valid.values())
