"""Findings of the nightly cross-comparison, from the contracts (no per-feed code).

As of the night ``D`` (what the office knew: rows received by D), using each row's status
(warehouse.record_status: a repaired or withdrawn record is not used):

- ``blacklisted_subject`` 黑名单主体：a row of a feed with a ``crosscheck`` block (行政许可, 涉农补贴,
  红名单 …) whose subject was on a black list (a ``list`` feed with colour black) on the row's
  ``crosscheck.date_field`` date: listed on or before it and not yet removed (removed on the day
  means off the list that day).
- ``broken_commitment`` 信用承诺未履行：a commitment (role ``commitment``) whose subject has a
  record in one of its ``broken_by`` feeds with a clock date (decision date) on or after the
  commitment date and on or before D. The commitment is then marked broken in the profile.
- ``repair_too_early`` 信用修复不符合条件：a repair dated before the record's minimum display period
  (the repair is not applied; the record stays public).
- ``target_missing`` 关联记录不存在：a repair or objection naming a record the warehouse does not
  hold (nothing is silently dropped).

``run_crosscheck`` replaces the night's rows of ``crosscheck_findings`` and writes the report
``reports/crosscheck/<D>.xlsx``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

from contracts.model import Contract
from warehouse.db import connect
from warehouse.feed_tables import lit, q, scrub_sql, versions_table
from warehouse.layout import DataDir
from warehouse.record_status import (
    STATUS_ROLES,
    day_sql,
    links,
    match_sql,
    min_display_end_sql,
    min_display_text_sql,
    rows_as_of,
    status_sql,
    subject_key_sql,
    subject_shown_sql,
)

KIND_LABELS = {
    "blacklisted_subject": "黑名单主体获得许可、补贴或红名单",
    "broken_commitment": "信用承诺未履行",
    "repair_too_early": "信用修复不符合条件",
    "target_missing": "关联记录不存在",
}
COLUMNS = ["kind", "kind_label", "subject_key", "subject_shown", "subject_name", "feed", "business_key",
           "related_feed", "related_key", "event_date", "dept", "reason"]


@dataclass
class CrosscheckSummary:
    day: date
    by_kind: Counter = field(default_factory=Counter)
    report: Path | None = None


def _t(text: str) -> str:
    """Contract text placed inside a SQL string literal."""
    return text.replace("'", "''")


def _d(v: str) -> str:
    return f"CAST({v} AS VARCHAR)"


def _select(kind: str, subject_key: str, shown: str, name: str, feed: str, key: str, rfeed: str, rkey: str,
            event: str, dept: str, reason: str) -> str:
    return (f"SELECT {lit(kind)} AS kind, {lit(KIND_LABELS[kind])} AS kind_label, {subject_key} AS subject_key, "
            f"{shown} AS subject_shown, {name} AS subject_name, {feed} AS feed, {key} AS business_key, "
            f"{rfeed} AS related_feed, {rkey} AS related_key, CAST({event} AS DATE) AS event_date, {dept} AS dept, "
            f"{scrub_sql(reason)} AS reason")


class Relations:
    """Where the findings' repeated sub-relations live: inline subqueries (a query embedded in
    another, e.g. the credit profile's) or, for the nightly run, temporary tables built once
    before the findings query.

    Why: one findings query names the same candidate keys (keys of a big feed sharing a subject
    with a black list or a commitment, keys named by repairs) and their as-of rows several times
    (the record, its repairs, its objections; the early-repair and the missing-target checks).
    DuckDB evaluates each occurrence again, a full scan of a 3M-version table each time on a big
    warehouse; built once, each later reference reads a table of a few thousand rows.

    On a connection the candidate keys are also pooled per feed (``plan``): every request for a
    feed's keys (sharing a subject with a black list, with a commitment, named by a repair, by an
    objection) becomes one predicate of a single scan of that feed's versions, and the feed then
    has one as-of table and one status table. Each pooled set is a superset of every request it
    replaces, which is enough: every use joins the keys' rows to the very rows they were
    requested for (the subject, the repair or objection naming them), so a key another request
    brought in finds nothing there. ``tests/credit/test_credit_nights.py`` compares these
    findings with the inline ones, night by night."""

    def __init__(self, con=None):
        self.con, self._names = con, {}
        self._wanted: dict[str, tuple[Contract, list[tuple[str, str]]]] | None = None  # planning: feed -> requests
        self._pooled: dict[str, str] = {}  # feed -> table of its pooled candidate keys

    def relation(self, sql: str) -> str:
        if self.con is None:
            return f"({sql})"
        name = self._names.get(sql)
        if name is None:
            name = f"_crosscheck_{len(self._names)}"
            if self._wanted is not None:  # planning: names only, nothing built yet
                return name
            self._names[sql] = name
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
        return name

    def keys(self, sql: str) -> str:
        """A relation with the distinct ``_key`` of ``sql``."""
        return self.relation(f"SELECT DISTINCT _key FROM ({sql})")

    def candidates(self, contract: Contract, sql: str, column: str, among: str) -> str:
        """Keys of ``contract`` that a finding may need: the distinct ``_key`` of ``sql`` inline;
        on a connection, the feed's pooled keys, of which ``column IN (among)`` (over its
        versions row ``c`` received by the night) is one part."""
        if self.con is None:
            return self.keys(sql)
        if self._wanted is not None:
            parts = self._wanted.setdefault(contract.feed, (contract, []))[1]
            if (column, among) not in parts:
                parts.append((column, among))
            return f"_crosscheck_keys_{contract.feed}"
        return self._pooled[contract.feed]

    def plan(self, parts: Callable[[Relations], list[str]], D: date) -> None:
        """Collect every feed's key requests from a dry run of ``parts``, then build each feed's
        pooled keys in one scan (nothing to do inline). A part whose values are none (no repair
        names the feed) is left out first: inside the OR, DuckDB would still evaluate it for
        every row, where alone it skips the scan."""
        if self.con is None:
            return
        self._wanted = {}
        try:
            parts(self)
            wanted = self._wanted
        finally:
            self._wanted = None
        for feed, (contract, requested) in wanted.items():
            live = [f"{column} IN ({among})" for column, among in requested
                    if self.con.execute(f"SELECT EXISTS ({among})").fetchone()[0]]
            either = " OR ".join(f"({p})" for p in live) or "FALSE"
            self._pooled[feed] = self.relation(
                f"SELECT DISTINCT _key FROM {q(versions_table(contract.feed))} c "
                f"WHERE c._received_date <= {day_sql(D)} AND ({either})")

    def as_of(self, contract: Contract, D: date, keys: str) -> str:
        """The as-of rows of ``keys`` (``rows_as_of``; inline, it is that subquery itself)."""
        rows = rows_as_of(contract, D, keys)
        return rows if self.con is None else self.relation(f"SELECT * FROM {rows}")

    def status(self, contract: Contract, contracts: dict[str, Contract], D: date, keys: str) -> str:
        sql = status_sql(contract, contracts, D, keys=keys, rows=self.as_of(contract, D, keys))
        return sql if self.con is None else f"SELECT * FROM {self.relation(sql)}"

    def drop(self) -> None:
        if self.con is not None:
            for name in self._names.values():
                self.con.execute(f"DROP TABLE IF EXISTS {name}")
            self._names.clear()
            self._pooled.clear()


def _received(contract: Contract, D: date) -> str:
    return f"{q(versions_table(contract.feed))} WHERE _received_date <= {day_sql(D)}"


def _keys_sharing_subject(x: Contract, others: list[Contract], D: date, rel: Relations) -> str:
    """Keys of ``x`` any of whose versions received by D names a subject that a version of one of
    ``others`` (black lists, commitments: small feeds) names.

    Why: the findings join a big feed (permits, penalties) to a small one on the subject; the
    statuses (windows over versions, repair and objection joins) are then computed for these
    keys only, not for the whole warehouse. A superset of the keys that can match (a key whose
    latest version names another subject is dropped by the join itself), so the findings are
    the same."""
    subjects = " UNION ".join(
        f"SELECT {subject_key_sql(o)} AS s FROM {_received(o, D)}" for o in others if o.subject is not None)
    if not subjects:
        return "(SELECT NULL AS _key WHERE FALSE)"
    among = f"SELECT s FROM ({subjects}) WHERE s IS NOT NULL"
    return rel.candidates(x, f"SELECT _key FROM {_received(x, D)} AND {subject_key_sql(x)} IN ({among})",
                          subject_key_sql(x, "c."), among)


def _keys_named_by(t: Contract, link: Contract, D: date, rel: Relations) -> str:
    """Keys of ``t`` that a version of ``link`` (a repair or objection) received by D names (see
    above). Pooled, the reference alone (``Relations.candidates``: the authority is left to the
    join that uses the keys; a join condition inside the pooled scan's OR made it 15 times slower)."""
    tr = link.target
    ref = f"c.{q(tr.ref_field)}" if tr.ref_field in set(t.field_names) else "c._key"
    named = (f"SELECT l.{q(tr.ref_field)} FROM {q(versions_table(link.feed))} l "
             f"WHERE l._received_date <= {day_sql(D)} AND l.{q(tr.feed_field)} = {lit(t.feed)}")
    return rel.candidates(t, f"SELECT c._key FROM (SELECT * FROM {_received(t, D)}) c "
                             f"JOIN (SELECT * FROM {_received(link, D)}) l ON {match_sql(t, link)}",
                          ref, named)


def _blacklisted(contracts: dict[str, Contract], D: date, rel: Relations) -> list[str]:
    out = []
    blacks = [c for c in contracts.values() if c.role == "list" and c.listing.colour == "black"]
    for x in contracts.values():
        if x.crosscheck is None or x.subject is None:
            continue
        on = f"x.{q(x.crosscheck.date_field)}"
        for b in blacks:
            if b.feed == x.feed:
                continue
            li = b.listing
            removed = f"coalesce('，' || {_d('b.' + q(li.to_field))} || ' 移出', '')"
            reason = (f"x._subject_name || ' 在 ' || {_d(on)} || ' 处于“' || b.{q(li.list_field)} || '”期间（' || "
                      f"b.{q(li.authority_field)} || ' ' || {_d('b.' + q(li.from_field))} || ' 列入' || {removed} || '），仍"
                      f"{_t(x.crosscheck.message)}（{_t(x.title)} ' || x._ref || '），请核查'")
            out.append(
                _select("blacklisted_subject", "x._subject_key", "x._subject_shown", "x._subject_name", lit(x.feed), "x._key",
                        lit(b.feed), "b._key", on, "x._dept", reason)
                + f"""
FROM ({rel.status(x, contracts, D, _keys_sharing_subject(x, [b], D, rel))}) x
JOIN ({status_sql(b, contracts, D)}) b ON x._subject_key = b._subject_key
WHERE x._used AND b._used AND {on} <= {day_sql(D)}
  AND b.{q(li.from_field)} <= {on} AND (b.{q(li.to_field)} IS NULL OR b.{q(li.to_field)} > {on})"""
            )
    return out


def _broken(contracts: dict[str, Contract], D: date, rel: Relations) -> list[str]:
    out = []
    for k in contracts.values():
        if k.role != "commitment":
            continue
        cm = k.commitment
        for feed in cm.broken_by:
            p = contracts.get(feed)
            if p is None or p.subject is None or not p.clock_field:
                continue
            on = f"p.{q(p.clock_field)}"
            reason = (f"k._subject_name || ' 于 ' || {_d('k.' + q(cm.date_field))} || ' 作出信用承诺“' || k.{q(cm.content_field)} "
                      f"|| '”（' || k.{q(cm.issuer_field)} || '），' || {_d(on)} || ' 受到{_t(p.title)}（' || p._ref || '），承诺未履行'")
            out.append(
                _select("broken_commitment", "k._subject_key", "k._subject_shown", "k._subject_name", lit(k.feed), "k._key",
                        lit(p.feed), "p._key", on, "k._dept", reason)
                + f"""
FROM ({status_sql(k, contracts, D)}) k
JOIN ({rel.status(p, contracts, D, _keys_sharing_subject(p, [k], D, rel))}) p ON k._subject_key = p._subject_key
WHERE k._used AND p._used AND {on} >= k.{q(cm.date_field)} AND {on} <= {day_sql(D)}"""
            )
    return out


def _early_repairs(contracts: dict[str, Contract], D: date, rel: Relations) -> list[str]:
    out = []
    for t in contracts.values():
        if t.role not in STATUS_ROLES or t.display is None:
            continue
        for link in links(contracts, "repair"):
            on = f"l.{q(link.repair.date_field)}"
            min_end = min_display_end_sql(t, "c.")
            reason = (f"'{_t(t.title)} ' || c._ref || ' 的信用修复不符合条件：该记录为' || {min_display_text_sql(t, 'c.')} || "
                      f"'，应公示至 ' || {_d(min_end)} || '，修复日期 ' || {_d(on)} || ' 早于最短公示期，不予修复，记录继续公示'")
            out.append(
                _select("repair_too_early", "c._subject_key", "c._subject_shown", "c._subject_name", lit(link.feed), "l._key",
                        lit(t.feed), "c._key", on, "l._dept", reason)
                + f"""
FROM ({rel.status(t, contracts, D, _keys_named_by(t, link, D, rel))}) c JOIN {rows_as_of(link, D)} l ON {match_sql(t, link)}
WHERE {on} <= {day_sql(D)} AND {on} < {min_end}"""
            )
    return out


def _missing(contracts: dict[str, Contract], D: date, rel: Relations) -> list[str]:
    out = []
    targets = [c for c in contracts.values() if c.role in STATUS_ROLES]
    titles = " ".join(f"WHEN {lit(t.feed)} THEN {lit(t.title)}" for t in contracts.values())
    for role in ("repair", "objection"):
        for link in links(contracts, role):
            tr = link.target
            exists = " OR ".join(
                f"EXISTS (SELECT 1 FROM {rel.as_of(t, D, _keys_named_by(t, link, D, rel))} c WHERE {match_sql(t, link)})"
                for t in targets
            ) or "FALSE"
            on = f"l.{q(link.repair.date_field if role == 'repair' else link.objection.filed_field)}"
            feed_title = f"CASE l.{q(tr.feed_field)} {titles} ELSE l.{q(tr.feed_field)} END"
            reason = (f"'{_t(link.title)} ' || l._key || ' 所指的记录（' || {feed_title} || ' ' || l.{q(tr.ref_field)} || "
                      f"'）在仓库中不存在，请核实信息类别和文书号'")
            subj = "CAST(NULL AS VARCHAR)"
            if link.subject is not None:
                sk, ss, sn = subject_key_sql(link, "l."), subject_shown_sql(link, "l."), f"l.{q(link.subject.name_field)}"
            else:
                sk = ss = sn = subj
            out.append(
                _select("target_missing", sk, ss, sn, lit(link.feed), "l._key", f"l.{q(tr.feed_field)}",
                        f"l.{q(tr.ref_field)}", on, "l._dept", reason)
                + f"\nFROM {rows_as_of(link, D)} l WHERE {on} <= {day_sql(D)} AND NOT ({exists})"
            )
    return out


def findings_sql(contracts: dict[str, Contract], as_of: date, rel: Relations | None = None) -> str | None:
    """Every finding as of ``as_of`` (columns ``COLUMNS``), or None when the catalog has nothing to
    compare. With ``rel`` bound to a connection, repeated sub-relations are built on it first."""
    rel = rel or Relations()

    def every(r: Relations) -> list[str]:
        return (_blacklisted(contracts, as_of, r) + _broken(contracts, as_of, r) + _early_repairs(contracts, as_of, r)
                + _missing(contracts, as_of, r))

    rel.plan(every, as_of)
    parts = every(rel)
    return "\nUNION ALL\n".join(f"({p})" for p in parts) if parts else None


def night_findings(con, day: date) -> list[dict]:
    """The night's stored findings, with the first night each was found (ordered for the report)."""
    d = f"DATE {lit(day.isoformat())}"
    cur = con.execute(
        f"""SELECT f.*, (SELECT min(g.as_of) FROM crosscheck_findings g
                         WHERE g.kind = f.kind AND g.feed = f.feed AND g.business_key = f.business_key
                           AND g.related_feed IS NOT DISTINCT FROM f.related_feed
                           AND g.related_key IS NOT DISTINCT FROM f.related_key AND g.as_of <= {d}) AS first_found
            FROM crosscheck_findings f WHERE f.as_of = {d}
            ORDER BY f.kind, f.subject_key NULLS LAST, f.feed, f.business_key, f.related_feed, f.related_key"""
    )
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def run_crosscheck(data_dir, day: date, contracts: dict[str, Contract], registry=None) -> CrosscheckSummary:
    from assets.crosscheck.report import write_report

    dd = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
    summary = CrosscheckSummary(day)
    d = f"DATE {lit(day.isoformat())}"
    with connect(dd) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            rel = Relations(con)
            sql = findings_sql(contracts, day, rel)
            con.execute(f"DELETE FROM crosscheck_findings WHERE as_of = {d}")
            if sql:
                cols = ", ".join(COLUMNS)
                con.execute(f"INSERT INTO crosscheck_findings (as_of, {cols}) SELECT DISTINCT {d}, {cols} FROM ({sql})")
            rel.drop()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        rows = night_findings(con, day)
    summary.by_kind.update(r["kind"] for r in rows)
    summary.report = write_report(dd, day, rows, contracts, registry)
    return summary


def describe_findings(data_dir, day: date, limit: int = 8) -> str:
    """The night's findings for a terminal (Chinese): counts per type and the first reasons."""
    from warehouse.masking import scrub_text

    dd = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
    with connect(dd, read_only=True) as con:
        rows = night_findings(con, day)
    if not rows:
        return f"{day} 交叉比对：无发现"
    counts = Counter(r["kind_label"] for r in rows)
    lines = [f"{day} 交叉比对发现 {len(rows)} 条（" + "，".join(f"{k} {n}" for k, n in sorted(counts.items())) + "）"]
    lines += [f"  [{r['kind_label']}] {scrub_text(r['reason'])}" for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"  ……其余 {len(rows) - limit} 条见 {dd.crosscheck_file(day)}")
    return "\n".join(lines)
