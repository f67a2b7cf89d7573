"""Sample department submissions with a ground-truth table, driven by the catalog.

Demos, tests and the benchmark need realistic input whose correct outcome is known row by
row. `generate` walks the department registry day by day and writes what each department
owes, in its own delivery format (CSV in its encoding, XLSX with title rows, JSON pages for
HTTP departments), injects a controlled share of single defects, and writes:

- ``truth.csv``: one line per written row (feed, dept, file, row_no, received_date,
  business_key, decision_date, valid, rule_ids, late, defect), so every later stage can be
  checked against it;
- ``truth_declarations.csv``: what each department declared in its monthly ledger (records by
  the month of their *decision* date), next to what was actually generated (the basis of 上报率).
  Ledgers are filed on the 1st of the following month (or the last generated day); some
  departments declare more than they send, some fewer (a ledger mismatch: 上报率 > 100%).

Records of feeds with a status field are sometimes sent again later with an ending status
(arrears 已缴清 with the payment date, a permit 无效, a penalty 撤销): the record's later version.

Output depends only on the arguments: same seed, same bytes.
"""

from __future__ import annotations

import csv
import io
import random
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from faker import Faker

from contracts import load_contracts, load_registry
from contracts.model import Contract, Department, Registry
from pipelines.samples import defects as defects
from pipelines.samples import oracle as oracle
from pipelines.samples import writers as writers
from pipelines.samples.credit import credit_day
from pipelines.samples.records import BUILDERS, Ctx, build
from warehouse.files import write_bytes
from warehouse.layout import DataDir

TRUTH_COLUMNS = ["feed", "dept", "file", "row_no", "received_date", "business_key", "decision_date",
                 "valid", "rule_ids", "late", "defect"]
DECLARATION_COLUMNS = ["dept", "target_feed", "month", "declared_count", "generated_count"]
MARKER = ".sample_generated"
HTTP_OUTBOX = "http_outbox"
LATE_SHARES = [0.02, 0.05, 0.08, 0.12, 0.3]  # per department: some are chronically late


@dataclass
class GenerateSummary:
    data_dir: Path
    start: date
    days: int
    seed: int
    files: Counter = field(default_factory=Counter)  # by format
    rows: Counter = field(default_factory=Counter)  # by feed
    defective: Counter = field(default_factory=Counter)  # by feed
    late: int = 0

    def describe(self) -> str:
        total, bad = sum(self.rows.values()), sum(self.defective.values())
        end = self.start + timedelta(days=self.days - 1)
        files = "、".join(f"{k.upper()} {v}" for k, v in sorted(self.files.items()))
        per_feed = "，".join(f"{k} {v}" for k, v in self.rows.items())
        return (
            f"示例数据已生成 / sample feeds generated: {self.start} – {end}（{self.days} 天 / days, seed {self.seed}）\n"
            f"  文件 / files: {files}\n"
            f"  行数 / rows: {total}（{per_feed}）；问题行 / defective: {bad}（{bad / max(total, 1):.1%}）；迟报 / late: {self.late}\n"
            f"  真值表 / truth: {DataDir(self.data_dir).truth}"
        )


@dataclass
class _File:
    """One delivery being assembled: its rows in file order."""

    dept: Department
    contract: Contract
    received: date
    name: str
    rows: list[defects.Row] = field(default_factory=list)


class _Generator:
    def __init__(self, root: Path, start: date, days: int, rows_per_day: int, seed: int, defect_rate: float,
                 contracts: dict[str, Contract], registry: Registry):
        self.dd = DataDir(root)
        self.start, self.days, self.rows_per_day, self.defect_rate = start, days, rows_per_day, defect_rate
        self.contracts, self.registry = contracts, registry
        self.rng = random.Random(seed)
        fake = Faker("zh_CN")
        fake.seed_instance(seed)
        self.ctx = Ctx(self.rng, fake, registry.region, registry.region_code)
        self.summary = GenerateSummary(self.dd.root, start, days, seed)
        self.truth: list[dict] = []
        self.generated: Counter = Counter()  # (dept, feed, YYYY-MM) -> records (duplicate copies excluded)
        self.repairable: list[tuple[date, str, dict]] = []  # (received, feed, rec) of valid records
        self.late_share = {d.code: self.rng.choice(LATE_SHARES) for d in registry.departments}
        # ledger habit per department: declares more than it sends, fewer (a mismatch), or exactly
        ledgers = {c.feed for c in contracts.values() if c.role == "ledger"}
        keeping = [d for d in registry.departments if ledgers & set(d.feeds)]
        habits = (["more", "fewer", "exact", "more", "exact"] * len(keeping))[: len(keeping)]
        self.rng.shuffle(habits)
        self.under_reports = {d.code: "exact" for d in registry.departments} | {d.code: h for d, h in zip(keeping, habits)}
        self.endable: dict[tuple[str, str], list[tuple[date, dict]]] = {}  # (dept, feed) -> valid records
        self._candidates: dict[tuple[str, date], tuple[list[date], list[date]]] = {}
        self._ledgered: set[str] = set()
        self.declarations: list[dict] = []

    # -- decision dates ----------------------------------------------------------------
    def _decided(self, contract: Contract, received: date, dept: str) -> date:
        key = (contract.feed, received)
        if key not in self._candidates:
            on, late = [], []
            for lag in range(1, 50):
                d = received - timedelta(days=lag)
                if not oracle.is_workday(d):
                    continue
                dl = oracle.deadline(contract, d)
                if dl is None or received <= dl:
                    (on if lag <= 12 else late).append(d)
                elif lag <= 45:
                    late.append(d)
            self._candidates[key] = (on, late)
        on, late = self._candidates[key]
        if contract.display and self.rng.random() < 0.02:
            # a backlog record decided over half a year ago (before 2026-04-01 in the demo month):
            # judged under the display rules in force on its decision date
            d = received - timedelta(days=self.rng.randint(200, 400))
            while not oracle.is_workday(d):
                d -= timedelta(days=1)
            return d
        pool = late if (self.rng.random() < self.late_share[dept] and late) else on
        return self.rng.choice(pool or [received - timedelta(days=1)])

    # -- rows --------------------------------------------------------------------------
    def _row(self, contract: Contract, dept: Department, received: date) -> defects.Row:
        decided = self._decided(contract, received, dept.code)
        rec = build(self.ctx, contract, dept, decided)
        row = defects.Row(rec, received, set(), decided=decided)
        # known feeds' clean rows are re-checked (strictly) when truth is written; a feed with
        # only the generic builder may produce rows that fail, and truth must say so
        base = oracle.row_errors(contract, rec, received) if contract.feed not in BUILDERS else set()
        if base:
            row.defect, row.intended = "generic_unclean", frozenset(base)
            return row
        if self.rng.random() >= self.defect_rate:
            return row
        has_unique = any(r.kind == "unique_key" for r in contract.rules)
        for name in defects.order(self.rng):
            fn = defects.DEFECTS[name][0]
            if name == "duplicate":
                if has_unique and oracle.key_of(contract, rec, self._unique_fields(contract)):
                    row.defect = "duplicate"
                    row.intended = frozenset(r.id for r in contract.rules if r.kind == "unique_key")
                    return row
                continue
            trial = defects.Row(dict(rec), received, set())
            intended = fn(self.rng, contract, trial)
            if intended and oracle.row_errors(contract, trial.rec, received) == intended:
                trial.defect, trial.intended, trial.decided = name, frozenset(intended), decided
                return trial
        return row

    def _ended(self, contract: Contract, dept: Department, received: date) -> defects.Row | None:
        """Now and then, an earlier valid record of the department sent again with the status
        that ends its publication (已缴清 / 无效 / 撤销), fields required by it filled in."""
        pool = self.endable.get((dept.code, contract.feed))
        if not pool or not contract.status_field or not contract.revoked_values or self.rng.random() > 0.25:
            return None
        first, old = pool.pop(self.rng.randrange(len(pool)))
        if first >= received:
            return None
        rec = dict(old)
        rec[contract.status_field] = contract.revoked_values[0]
        clock = oracle.parse_date(rec.get(contract.clock_field)) if contract.clock_field else None
        for fl in contract.fields:
            if rec.get(fl.name) is None and fl.type == "date" and fl.required_when and oracle.holds(fl.required_when, rec, contract):
                lo = max(clock or first, first)
                rec[fl.name] = (lo + timedelta(days=self.rng.randint(0, max((received - lo).days, 0)))).isoformat()
        if oracle.row_errors(contract, rec, received):
            return None
        return defects.Row(rec, received, set(), resend=True)

    @staticmethod
    def _unique_fields(contract: Contract) -> list[str]:
        return next((r.fields for r in contract.rules if r.kind == "unique_key"), contract.business_key)

    def _assemble(self, f: _File, n: int) -> None:
        for _ in range(n):
            row = self._row(f.contract, f.dept, f.received)
            f.rows.append(row)
            self.generated[(f.dept.code, f.contract.feed, f"{row.decided or f.received:%Y-%m}")] += 1
        ended = self._ended(f.contract, f.dept, f.received)
        if ended is not None:
            f.rows.insert(self.rng.randint(0, len(f.rows)), ended)
        for row in [r for r in f.rows if r.defect == "duplicate"]:
            copy = defects.Row(dict(row.rec), row.received, set(row.raw), "duplicate", row.intended, duplicate_of=row)
            pos = f.rows.index(row) + 1 + self.rng.randint(0, len(f.rows) - f.rows.index(row) - 1)
            f.rows.insert(pos, copy)

    # -- files -------------------------------------------------------------------------
    def _write(self, f: _File, http: bool) -> None:
        contract, dept, delivery = f.contract, f.dept, f.dept.delivery_for(f.contract.feed)
        fmt = "json" if http else (delivery.format or "csv")
        style = delivery.header_style
        r = writers.Renderer(self.rng, fmt)
        stamp = f"{f.received} {self.rng.randint(17, 23):02d}:{self.rng.randint(0, 59):02d}:00"
        cells = [r.row(contract, row, style if fmt != "json" else "label", self.registry.region_code, stamp) for row in f.rows]
        title = [] if fmt == "json" else writers.title_lines(contract, delivery, dept.name, self.registry.region, f.received)
        header = writers.headers(contract, style)
        if fmt == "json":
            path = self.dd.root / HTTP_OUTBOX / dept.code / contract.feed / f"{f.received}.json"
            data = writers.json_bytes(contract, cells)
        else:
            path = self.dd.inbox / dept.code / contract.feed / f.received.isoformat() / f.name
            if fmt == "xlsx":
                data = writers.xlsx_bytes(title, header, cells, contract.title)
            else:
                data = writers.csv_bytes(title, header, cells, delivery.encoding or "utf-8")
        write_bytes(data, path, private=True)  # a department's delivery: unmasked
        self.summary.files[fmt] += 1
        self._truth(f, path, 0 if fmt == "json" else len(title) + 1)

    def _truth(self, f: _File, path: Path, offset: int) -> None:
        contract = f.contract
        unique = Counter()
        ufields = self._unique_fields(contract)
        for row in f.rows:
            k = oracle.key_of(contract, row.rec, ufields)
            if k is not None:
                unique[k] += 1
        unique_ids = {r.id for r in contract.rules if r.kind == "unique_key"}
        rel = path.relative_to(self.dd.root).as_posix()
        for i, row in enumerate(f.rows, start=1):
            errors = oracle.row_errors(contract, row.rec, row.received)
            k = oracle.key_of(contract, row.rec, ufields)
            if k is not None and unique[k] > 1:
                errors |= unique_ids
            strict = contract.feed in BUILDERS or contract.role != "records"
            if strict and errors != set(row.intended):
                raise AssertionError(f"sample generator bug: {contract.feed} row {i} of {rel}: "
                                     f"intended {sorted(row.intended)}, oracle {sorted(errors)}")
            late = oracle.late(contract, row.rec, row.received)
            clock = oracle.parse_date(row.rec.get(contract.clock_field)) if contract.clock_field else None
            key = "|".join(v or "" for v in (row.rec.get(n) for n in contract.business_key))
            self.truth.append({
                "feed": contract.feed, "dept": f.dept.code, "file": rel, "row_no": offset + i,
                "received_date": row.received.isoformat(), "business_key": key,
                "decision_date": clock.isoformat() if clock else "", "valid": "false" if errors else "true",
                "rule_ids": ";".join(sorted(errors)), "late": "" if late is None else str(late).lower(),
                "defect": row.defect,
            })
            self.summary.rows[contract.feed] += 1
            self.summary.defective[contract.feed] += bool(row.defect)
            self.summary.late += bool(late)
            if contract.role == "records" and not errors and row.duplicate_of is None and clock and not row.resend:
                self.repairable.append((row.received, contract.feed, row.rec))
                self.endable.setdefault((f.dept.code, contract.feed), []).append((row.received, row.rec))

    def _file_name(self, contract: Contract, dept: Department, day: date, part: int, fmt: str) -> str:
        suffix = "" if part == 0 else "_补报"
        return f"{contract.title}_{dept.name}_{day:%Y%m%d}{suffix}.{fmt}"

    # -- the walk ----------------------------------------------------------------------
    def run(self) -> GenerateSummary:
        for i in range(self.days):
            day = self.start + timedelta(days=i)
            workday = oracle.is_workday(day)
            for dept in self.registry.departments:
                for feed in dept.feeds:
                    contract = self.contracts.get(feed)
                    if contract is None:
                        continue
                    if contract.role == "records":
                        self._records_day(contract, dept, day, workday)
                    elif contract.role == "repair":
                        self._repairs_day(contract, dept, day, i)
                    elif contract.role in ("objection", "list", "commitment"):
                        credit_day(self, contract, dept, day, i)
            self._ledgers(day)
        self._write_truth()
        return self.summary

    def _records_day(self, contract: Contract, dept: Department, day: date, workday: bool) -> None:
        http = dept.delivery_for(contract.feed).kind == "http"
        if self.rng.random() < (0.06 if workday else 0.6):
            if http:  # the API answers with an empty page
                self._write(_File(dept, contract, day, ""), http=True)
            return
        n = max(1, round(self.rows_per_day * self.rng.uniform(0.7, 1.3)))
        parts = 2 if (not http and n >= 4 and self.rng.random() < 0.15) else 1
        split = [n] if parts == 1 else [n - n // 3, n // 3]
        for part, k in enumerate(split):
            fmt = dept.delivery_for(contract.feed).format or "csv"
            f = _File(dept, contract, day, self._file_name(contract, dept, day, part, fmt))
            self._assemble(f, k)
            self._write(f, http=http)

    def _repairs_day(self, contract: Contract, dept: Department, day: date, index: int) -> None:
        earlier = [x for x in self.repairable if x[0] < day and x[1] in self._repair_targets(contract)]
        if index == 0 or not earlier or (index > 1 and self.rng.random() > 0.45):  # always some repairs
            return
        f = _File(dept, contract, day, self._file_name(contract, dept, day, 0, dept.delivery_for(contract.feed).format or "csv"))
        for _ in range(min(len(earlier), self.rng.randint(1, 3))):
            received, feed, target = earlier.pop(self.rng.randrange(len(earlier)))
            self.repairable.remove((received, feed, target))
            src = self.contracts[feed]
            rec = {fl.name: None for fl in contract.fields}
            for fl in contract.fields:
                if fl.name in src.field_names:
                    rec[fl.name] = target.get(fl.name)
            rec["target_feed"] = feed
            rec["repair_date"] = (received + timedelta(days=self.rng.randint(0, (day - received).days))).isoformat()
            rec["repair_unit"] = dept.name
            f.rows.append(defects.Row(rec, day, set()))
        self._write(f, http=False)

    def _repair_targets(self, contract: Contract) -> set[str]:
        """Feeds a repair can point at: published with a display period, and keyed alike."""
        try:
            allowed = set(contract.field("target_feed").enum or [])
        except KeyError:
            return set()
        need = set(contract.business_key) - {"target_feed"}
        return {f for f in allowed if f in self.contracts and self.contracts[f].display
                and need <= set(self.contracts[f].field_names)}

    def _ledgers(self, day: date) -> None:
        """Monthly ledgers of the decisions made in each month, written once the walk is over
        (a ledger declares decisions, some of which arrive only after it is filed): each is
        received on the 1st of the following month, or on the last generated day."""
        last = self.start + timedelta(days=self.days - 1)
        if day != last:
            return
        ledger = next((c for c in self.contracts.values() if c.role == "ledger"), None)
        if ledger is None:
            return
        # the walk's months and the month before (decisions arriving in the walk); a backlog
        # record decided long ago belongs to a ledger filed long before the sample begins
        before = self.start.replace(day=1) - timedelta(days=1)
        months = sorted({f"{before:%Y-%m}"} | {f"{self.start + timedelta(days=i):%Y-%m}" for i in range(self.days)})
        for month in months:
            self._ledgered.add(month)
            first = date.fromisoformat(month + "-01")
            filed = (first + timedelta(days=32)).replace(day=1)
            filed = filed if self.start <= filed <= last else last
            for dept in self.registry.departments:
                if ledger.feed not in dept.feeds:
                    continue
                f = _File(dept, ledger, filed, f"{ledger.title}_{dept.name}_{month}.{dept.delivery_for(ledger.feed).format or 'csv'}")
                for feed in dept.feeds:
                    if self.contracts.get(feed) is None or self.contracts[feed].role != "records":
                        continue
                    made = self.generated[(dept.code, feed, month)]
                    habit = self.under_reports[dept.code]
                    extra = (self.rng.randint(1, 3) if habit == "more" else -1 if habit == "fewer" and made >= 2 else 0) if made else 0
                    rec = {"month": month, "target_feed": feed, "declared_count": str(made + extra)}
                    f.rows.append(defects.Row(rec, filed, set()))
                    self.declarations.append({"dept": dept.code, "target_feed": feed, "month": month,
                                              "declared_count": made + extra, "generated_count": made})
                if f.rows:
                    self._write(f, http=False)

    def _write_truth(self) -> None:
        def table(columns: list[str], rows: list[dict]) -> bytes:
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
            return buf.getvalue().encode("utf-8")

        write_bytes(table(TRUTH_COLUMNS, self.truth), self.dd.truth, private=True)
        write_bytes(table(DECLARATION_COLUMNS, self.declarations), self.dd.root / "truth_declarations.csv", private=True)


def _prepare(dd: DataDir) -> None:
    """Start from a clean slate, but never delete files this generator did not write."""
    marker = dd.root / MARKER
    outbox = dd.root / HTTP_OUTBOX
    if marker.exists():
        for p in (dd.inbox, outbox):
            shutil.rmtree(p, ignore_errors=True)
    elif any(p.exists() and any(p.rglob("*")) for p in (dd.inbox, outbox)):
        raise FileExistsError(
            f"{dd.inbox} 中已有非示例数据，拒绝覆盖 / the inbox holds files not written by the generator; use another --data-dir"
        )
    dd.root.mkdir(parents=True, exist_ok=True)
    marker.write_text("written by credit-etl generate; inbox/ and http_outbox/ are regenerated\n", encoding="utf-8")


def generate(
    data_dir: str | Path,
    *,
    start: date,
    days: int,
    rows_per_day: int,
    seed: int,
    defect_rate: float = 0.08,
    contracts: dict[str, Contract] | None = None,
    registry: Registry | None = None,
) -> GenerateSummary:
    """Write sample submissions for ``days`` received days from ``start`` plus truth tables."""
    if days < 1 or rows_per_day < 1 or not 0 <= defect_rate <= 1:
        raise ValueError("days 与 rows_per_day 须为正数，defect_rate 在 0–1 之间 / days and rows_per_day must be positive, 0 <= defect_rate <= 1")
    contracts = contracts or load_contracts()
    registry = registry or load_registry(contracts=contracts)
    dd = DataDir(data_dir)
    _prepare(dd)
    gen = _Generator(dd.root, start, days, rows_per_day, seed, defect_rate, contracts, registry)
    return gen.run()
