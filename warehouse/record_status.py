"""A record's public status on a given day, from the contracts (one definition for every reader).

The public views, the shared export, the status history, the subject profile and the red/black
cross-comparison all ask the same question: on day D, is this record 公示中, 异议中, 已到期,
已修复, 已撤销 or 不予公示, and why? :func:`status_sql` answers it in SQL for one feed, as of a
day (``as_of``) or of today (``None``: the current tables and ``current_date``).

Rules, in order (the first that holds wins):

1. 已撤销: the department's own status field says so (``revoked_values``), or an objection about
   the record was decided with an outcome in the objection contract's ``revoke_values`` on or
   before D.
2. 已修复: a 信用修复 about the record dated on or before D, and *eligible*: its repair date is not
   before the record's minimum display period (decision date + the minimum months of the record's
   tier under the display regime in force on its decision date, REFERENCE §6). A repair dated
   earlier is not applied (the record stays public) and the cross-comparison reports it. Feeds
   without a display policy have no minimum period: any repair is eligible.
3. 异议中: an objection filed on or before D that was not decided by D. Shown in the public views
   marked 异议中, or withheld when the objection contract says ``while_open: withhold``.
4. 不予公示: a tier the rules in force on the decision date do not publish (轻微 after 2026-04-01).
5. 已到期: the display end (公示截止期) lies before D, or the contract's ``public_limit`` (months
   from one of the record's dates, e.g. arrears: 12 months from 认定日期) ended before D.
6. 公示中 otherwise.

"As of D" means what the office knew that night: record versions and repair/objection rows
received on or before D (the latest version of each key), with their own dates on or before D.
A repaired or withdrawn record stops being published, shared and used in the cross-comparison
(``_used``); 归集量 and the version history are not touched.
"""

from __future__ import annotations

from datetime import date

from contracts.model import Contract
from warehouse.feed_tables import (
    VERSION_ORDER,
    current_table,
    lit,
    q,
    tier_sql,
    unpublished_tier_sql,
    versions_table,
)

PUBLISHED, OBJECTED, EXPIRED, REPAIRED, REVOKED, UNPUBLISHED = "公示中", "异议中", "已到期", "已修复", "已撤销", "不予公示"
STATUSES = (PUBLISHED, OBJECTED, EXPIRED, REPAIRED, REVOKED, UNPUBLISHED)
NOT_USED = (REPAIRED, REVOKED)  # out of sharing and the cross-comparison
STATUS_ROLES = ("records", "list", "commitment")  # feeds whose rows have a status


def day_sql(as_of: date | None) -> str:
    return "current_date" if as_of is None else f"DATE {lit(as_of.isoformat())}"


def rows_as_of(contract: Contract, as_of: date | None, keys: str | None = None) -> str:
    """The latest version of every key received on or before ``as_of`` (None: the current table).

    ``keys``: a table or subquery with a ``_key`` column; only those keys are windowed (an
    incremental night computes the few records whose status can change, not the warehouse)."""
    if as_of is None:
        table = q(current_table(contract.feed))
        # the keys' row ids from the key column alone, then their wide rows by row id (a plain
        # ``_key IN (...)`` reads every column of every row before the join drops them)
        return table if not keys else (
            f"(SELECT * FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE _key IN (SELECT _key FROM {keys})))")
    # the winner of each key from the narrow columns (count, first arrival, row id of the latest
    # version), then its wide row fetched by row id. A window over the wide rows sorted all of
    # them: 16 s and out of memory under the 320 MB cap for the as-of snapshot of a 3.4M-version
    # feed, against 4 s this way
    return winner_rows_sql(contract, f"({winners_sql(contract, as_of, keys)})")


def winners_sql(contract: Contract, as_of: date, keys: str | None = None, earlier: date | None = None) -> str:
    """Per key, from the narrow columns of the versions received by ``as_of``: ``_version_count``,
    ``_first_valid_received`` and ``_rid``, the row id of the latest version (:func:`rows_as_of`).

    ``earlier``: the same as of an earlier night too (``_version_count_e``, ``_first_valid_received_e``,
    ``_rid_e``; a NULL row id for a key none of whose versions had arrived), from the same scan:
    the share changes compare the night with the previous export, and each side alone is a probe
    of the whole versions table."""
    where = f"_received_date <= {day_sql(as_of)}"
    if keys:
        where += f" AND _key IN (SELECT _key FROM {keys})"
    cols = ["count(*) AS _version_count", "min(_received_date) AS _first_valid_received",
            f"arg_max(rowid, ({VERSION_ORDER})) AS _rid"]
    if earlier is not None:
        by = f"FILTER (WHERE _received_date <= {day_sql(earlier)})"
        cols += [f"count(*) {by} AS _version_count_e", f"min(_received_date) {by} AS _first_valid_received_e",
                 f"arg_max(rowid, ({VERSION_ORDER})) {by} AS _rid_e"]
    return f"SELECT {', '.join(cols)} FROM {q(versions_table(contract.feed))} WHERE {where} GROUP BY _key"


def winner_rows_sql(contract: Contract, winners: str, side: str = "") -> str:
    """The wide rows of ``winners`` (:func:`winners_sql`; ``side="_e"``: as of its earlier night)."""
    cols = "w._version_count, w._first_valid_received" if not side else (
        f"w._version_count{side} AS _version_count, w._first_valid_received{side} AS _first_valid_received")
    return f"(SELECT v.*, {cols} FROM {q(versions_table(contract.feed))} v JOIN {winners} w ON v.rowid = w._rid{side})"


def subject_key_sql(contract: Contract, prefix: str = "") -> str:
    """The subject key: USCC when filled, else the ID number, trimmed and upper-cased (NULL: none)."""
    s = contract.subject
    if s is None:
        return "CAST(NULL AS VARCHAR)"
    parts = [f"NULLIF(upper(trim({prefix}{q(n)})), '')" for n in (s.uscc_field, s.id_field) if n]
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


def subject_shown_sql(contract: Contract, prefix: str = "") -> str:
    """The subject identifier as it may be shown: a USCC as is, a natural person's ID number masked."""
    from warehouse.masking import mask_sql

    s = contract.subject
    if s is None:
        return "CAST(NULL AS VARCHAR)"
    uscc = f"NULLIF(upper(trim({prefix}{q(s.uscc_field)})), '')" if s.uscc_field else "NULL"
    person = mask_sql(f"NULLIF(upper(trim({prefix}{q(s.id_field)})), '')", "id") if s.id_field else "NULL"
    return f"coalesce({uscc}, {person})"


def record_ref_sql(contract: Contract, prefix: str = "") -> str:
    """How a clerk names a record: its decision number when the feed has one, else its key."""
    return f"{prefix}{q('decision_no')}" if "decision_no" in contract.field_names else f"{prefix}_key"


def normalise_subject(text: str) -> str:
    """A USCC or ID number as typed by a clerk, as the subject key compares it."""
    from contracts.model import to_halfwidth

    return to_halfwidth(str(text)).strip().upper()


def match_sql(target: Contract, link: Contract, l: str = "l", c: str = "c") -> str:
    """Join condition: link row ``l`` (a repair or objection) names record ``c`` of ``target``."""
    t = link.target
    assert t is not None
    names = set(target.field_names)
    conds = [f"{l}.{q(t.feed_field)} = {lit(target.feed)}"]
    ref = f"{c}.{q(t.ref_field)}" if t.ref_field in names else f"{c}._key"
    conds.append(f"{l}.{q(t.ref_field)} = {ref}")
    if t.authority_field and t.authority_field in names:
        conds.append(f"({l}.{q(t.authority_field)} IS NULL OR {l}.{q(t.authority_field)} = {c}.{q(t.authority_field)})")
    return " AND ".join(conds)


def _tier_cases(contract: Contract, prefix: str) -> list[tuple[str, object, object]]:
    """(SQL condition, regime, tier) for every tier of every display regime: the regime in force
    on the record's decision date and the record's tier. Empty without a display policy."""
    d = contract.display
    if d is None or not contract.clock_field:
        return []
    decided = f"{prefix}{q(contract.clock_field)}"
    tier = tier_sql(contract, prefix)
    regimes = sorted(d.regimes, key=lambda r: r.effective_from)
    cases = []
    for i, regime in enumerate(regimes):
        lower = "TRUE" if i == 0 else f"{decided} >= DATE {lit(regime.effective_from.isoformat())}"
        upper = f"{decided} < DATE {lit(regimes[i + 1].effective_from.isoformat())}" if i + 1 < len(regimes) else "TRUE"
        for t in regime.tiers:
            cases.append((f"{lower} AND {upper} AND {tier} = {lit(t.tier)}", regime, t))
    return cases


def min_display_end_sql(contract: Contract, prefix: str = "c.") -> str:
    """Decision date + the minimum months of the record's tier under the regime of its decision date."""
    cases = _tier_cases(contract, prefix)
    if not cases:
        return "CAST(NULL AS DATE)"
    decided = f"{prefix}{q(contract.clock_field)}"
    whens = [f"WHEN {cond} THEN CAST({decided} + INTERVAL {int(t.min_months)} MONTH AS DATE)" for cond, _, t in cases]
    return f"(CASE {' '.join(whens)} ELSE {decided} END)"


def min_display_text_sql(contract: Contract, prefix: str = "c.") -> str:
    """Chinese: '<tier>失信，<regime date>起施行的规定最短公示<n>个月' for the record."""
    cases = _tier_cases(contract, prefix)
    if not cases:
        return "CAST(NULL AS VARCHAR)"
    whens = [
        f"WHEN {cond} THEN "
        + lit(f"“{t.tier}”失信，按{regime.effective_from.isoformat()}起施行的规定最短公示{t.min_months}个月")
        for cond, regime, t in cases
    ]
    return f"(CASE {' '.join(whens)} ELSE NULL END)"


def links(contracts: dict[str, Contract], role: str) -> list[Contract]:
    return [c for c in contracts.values() if c.role == role and c.target is not None]


def repair_events_sql(target: Contract, contracts: dict[str, Contract], as_of: date | None,
                      keys: str | None = None, rows: str | None = None) -> str | None:
    """Repairs naming records of ``target`` (as of D): record key, repair date, unit, eligible, minimum end."""
    parts = []
    for link in links(contracts, "repair"):
        r = link.repair
        unit = f"l.{q(r.unit_field)}" if r.unit_field else "CAST(NULL AS VARCHAR)"
        min_end = min_display_end_sql(target, "c.")
        parts.append(
            f"""SELECT c._key AS _k, l.{q(r.date_field)} AS _on, {unit} AS _by, {lit(link.feed)} AS _link_feed,
                   l._key AS _link_key, {min_end} AS _min_end, {min_display_text_sql(target, 'c.')} AS _min_text,
                   (l.{q(r.date_field)} >= {min_end}) AS _ok
            FROM {rows or rows_as_of(target, as_of, keys)} c JOIN {rows_as_of(link, as_of)} l ON {match_sql(target, link)}
            WHERE l.{q(r.date_field)} <= {day_sql(as_of)}"""
        )
    return " UNION ALL ".join(parts) if parts else None


def objection_events_sql(target: Contract, contracts: dict[str, Contract], as_of: date | None,
                         keys: str | None = None, rows: str | None = None) -> str | None:
    parts = []
    for link in links(contracts, "objection"):
        o = link.objection
        revoke = ", ".join(lit(v) for v in o.revoke_values) or "NULL"
        reason = f"l.{q(o.reason_field)}" if o.reason_field else "CAST(NULL AS VARCHAR)"
        parts.append(
            f"""SELECT c._key AS _k, l.{q(o.number_field)} AS _no, l.{q(o.filed_field)} AS _filed,
                   l.{q(o.outcome_field)} AS _outcome, l.{q(o.outcome_date_field)} AS _decided,
                   coalesce(l.{q(o.outcome_field)} IN ({revoke}), FALSE) AS _revokes,
                   {lit(o.while_open)} AS _mode, {reason} AS _reason, {lit(link.feed)} AS _link_feed
            FROM {rows or rows_as_of(target, as_of, keys)} c JOIN {rows_as_of(link, as_of)} l ON {match_sql(target, link)}
            WHERE l.{q(o.filed_field)} <= {day_sql(as_of)}"""
        )
    return " UNION ALL ".join(parts) if parts else None


def status_sql(contract: Contract, contracts: dict[str, Contract], as_of: date | None = None,
               keys: str | None = None, rows: str | None = None) -> str:
    """SELECT of ``contract``'s rows as of ``as_of`` with their status columns (only the rows of
    ``keys``, a relation with a ``_key`` column, when given: see :func:`rows_as_of`):

    every column of the current table plus ``_subject_key``, ``_subject_name``, ``_status``,
    ``_status_cause`` (Chinese), ``_published`` (shown in the public views and shared),
    ``_used`` (counts in the cross-comparison), ``_min_display_end``.

    ``rows``: a table already holding ``rows_as_of(contract, as_of, keys)`` (a whole feed's
    computation materialises it once instead of three times in one plan, see
    ``assets.credit_status.status``)."""
    D = day_sql(as_of)
    joins, rep_cols, obj_cols = [], [], []
    rep = repair_events_sql(contract, contracts, as_of, keys, rows)
    if rep:
        joins.append(
            f"""LEFT JOIN (SELECT _k, min(_on) FILTER (WHERE _ok) AS _rep_on,
                                  arg_min(_by, _on) FILTER (WHERE _ok) AS _rep_by
                           FROM ({rep}) GROUP BY _k) rp ON rp._k = c._key"""
        )
    rep_on = "rp._rep_on" if rep else "CAST(NULL AS DATE)"
    rep_by = "rp._rep_by" if rep else "CAST(NULL AS VARCHAR)"
    obj = objection_events_sql(contract, contracts, as_of, keys, rows)
    if obj:
        open_ = f"(_outcome IS NULL OR _decided IS NULL OR _decided > {D})"
        done = f"(_outcome IS NOT NULL AND _decided IS NOT NULL AND _decided <= {D})"
        joins.append(
            f"""LEFT JOIN (SELECT _k,
                    arg_min(_no, (_filed, _no)) FILTER (WHERE {open_}) AS _open_no,
                    min(_filed) FILTER (WHERE {open_}) AS _open_filed,
                    bool_or(_mode = 'withhold') FILTER (WHERE {open_}) AS _withhold,
                    arg_min(_no, (_decided, _no)) FILTER (WHERE {done} AND _revokes) AS _rev_no,
                    min(_decided) FILTER (WHERE {done} AND _revokes) AS _rev_on,
                    arg_max(_no, (_decided, _no)) FILTER (WHERE {done}) AS _last_no,
                    arg_max(_outcome, (_decided, _no)) FILTER (WHERE {done}) AS _last_outcome,
                    max(_decided) FILTER (WHERE {done}) AS _last_on
                FROM ({obj}) GROUP BY _k) ob ON ob._k = c._key"""
        )
    o = (lambda col: f"ob.{col}") if obj else (lambda col: "NULL")
    own_revoked = "c._revoked"
    status_label = contract.field(contract.status_field).label if contract.status_field else "状态"
    unpublished = unpublished_tier_sql(contract, "c.")
    end = f"c.{q(contract.display.end_field)}" if contract.display else "CAST(NULL AS DATE)"
    pl = contract.public_limit
    # the contract's longest public display, counted from one of its dates (arrears: 12 months
    # from 认定日期); shown up to and including the day it is reached, like 公示截止期
    limit_end = (f"CAST(c.{q(pl.from_field)} + INTERVAL {int(pl.months)} MONTH AS DATE)" if pl
                 else "CAST(NULL AS DATE)")
    own_status = f"c.{q(contract.status_field)}" if contract.status_field else "''"
    status = f"""CASE
        WHEN {own_revoked} THEN {lit(REVOKED)}
        WHEN {o('_rev_no')} IS NOT NULL THEN {lit(REVOKED)}
        WHEN {rep_on} IS NOT NULL THEN {lit(REPAIRED)}
        WHEN {o('_open_no')} IS NOT NULL THEN {lit(OBJECTED)}
        WHEN {unpublished} THEN {lit(UNPUBLISHED)}
        WHEN {end} IS NOT NULL AND {end} < {D} THEN {lit(EXPIRED)}
        WHEN {limit_end} IS NOT NULL AND {limit_end} < {D} THEN {lit(EXPIRED)}
        ELSE {lit(PUBLISHED)} END"""
    cause = f"""CASE
        WHEN {own_revoked} THEN '部门报送的{status_label}为“' || {own_status} || '”'
        WHEN {o('_rev_no')} IS NOT NULL THEN '异议 ' || {o('_rev_no')} || ' 于 ' || CAST({o('_rev_on')} AS VARCHAR) || ' 处理结果为“撤销”'
        WHEN {rep_on} IS NOT NULL THEN '于 ' || CAST({rep_on} AS VARCHAR) || ' 完成信用修复' || coalesce('（' || {rep_by} || '）', '')
        WHEN {o('_open_no')} IS NOT NULL THEN '异议 ' || {o('_open_no')} || ' 于 ' || CAST({o('_open_filed')} AS VARCHAR) || ' 提出，正在处理'
        WHEN {unpublished} THEN '轻微失信，按其决定日期施行的规定不予公示'
        WHEN {end} IS NOT NULL AND {end} < {D} THEN '公示截止期 ' || CAST({end} AS VARCHAR) || ' 已过'
        WHEN {limit_end} IS NOT NULL AND {limit_end} < {D} THEN '公示期限已于 ' || CAST({limit_end} AS VARCHAR) || ' 届满'
        WHEN {o('_last_no')} IS NOT NULL THEN '异议 ' || {o('_last_no')} || ' 于 ' || CAST({o('_last_on')} AS VARCHAR) || ' 处理结果为“' || {o('_last_outcome')} || '”，继续公示'
        ELSE '正常公示' END"""
    withhold = f"coalesce({o('_withhold')}, FALSE)" if obj else "FALSE"
    s = contract.subject
    name = f"c.{q(s.name_field)}" if s else "CAST(NULL AS VARCHAR)"
    inner = f"""SELECT c.*, {subject_key_sql(contract, 'c.')} AS _subject_key, {name} AS _subject_name,
       {subject_shown_sql(contract, 'c.')} AS _subject_shown, {record_ref_sql(contract, 'c.')} AS _ref,
       {status} AS _status, {cause} AS _status_cause, {withhold} AS _withhold,
       {min_display_end_sql(contract, 'c.')} AS _min_display_end
FROM {rows or rows_as_of(contract, as_of, keys)} c {' '.join(joins)}"""
    return f"""SELECT * EXCLUDE (_withhold),
       (_status = {lit(PUBLISHED)} OR (_status = {lit(OBJECTED)} AND NOT _withhold)) AS _published,
       (_status NOT IN ({', '.join(lit(x) for x in NOT_USED)})) AS _used
FROM ({inner})"""


def changed_keys_sql(contract: Contract, contracts: dict[str, Contract], day: date, prev: date) -> str:
    """Keys of ``contract`` whose status, cause, version count or shared row may differ between the
    nights ``prev`` and ``day`` (``prev`` < ``day``): a superset, read from plain scans of the
    versions tables (no window over the warehouse). Every input of :func:`status_sql` that
    depends on the night is covered:

    - a version of the key received in (prev, day] (a new record, a correction, a resubmission:
      row values, ``_revoked``, the version count);
    - a repair/objection key with a version received in (prev, day]: the records named by *any*
      of its versions (a corrected repair may name another record, or none any more);
    - the calendar: a repair date, an objection's filed or decision date in (prev, day]; a
      display end (公示截止期) or ``public_limit`` end in [prev, day) (the record is shown up to
      and including that day). The minimum display end only decides whether a repair is
      eligible, which does not change with the night (the repair date does: covered above).

    Older versions of a key are scanned too (a superset is harmless: only records whose computed
    status differs from their previous row are logged)."""
    D, P = day_sql(day), day_sql(prev)
    vt = q(versions_table(contract.feed))
    window = f"_received_date > {P} AND _received_date <= {D}"
    parts = [f"SELECT _key FROM {vt} WHERE {window}"]
    dated = []
    if contract.display and contract.display.end_field:
        e = q(contract.display.end_field)
        dated.append(f"({e} >= {P} AND {e} < {D})")
    pl = contract.public_limit
    if pl:
        e = f"CAST({q(pl.from_field)} + INTERVAL {int(pl.months)} MONTH AS DATE)"
        dated.append(f"({e} >= {P} AND {e} < {D})")
    if dated:
        parts.append(f"SELECT _key FROM {vt} WHERE _received_date <= {D} AND ({' OR '.join(dated)})")
    for role in ("repair", "objection"):
        for link in links(contracts, role):
            lt = q(versions_table(link.feed))
            if role == "repair":
                dates = [link.repair.date_field]
            else:
                dates = [link.objection.filed_field, link.objection.outcome_date_field]
            when = " OR ".join(f"(l.{q(f)} > {P} AND l.{q(f)} <= {D})" for f in dates)
            parts.append(
                f"""SELECT c._key FROM {vt} c JOIN (
                        SELECT * FROM {lt} l WHERE l._received_date <= {D} AND (
                            l._key IN (SELECT _key FROM {lt} WHERE {window}) OR {when})) l
                    ON {match_sql(contract, link)}
                    WHERE c._received_date <= {D}"""
            )
    return " UNION ".join(parts)


def rules_digest(contract: Contract, contracts: dict[str, Contract]) -> str:
    """A digest of the status rules of ``contract`` (its contract, its repair/objection contracts
    and this module's SQL): an incremental night is only valid against nights computed by the
    same rules; when they differ the night is computed in full."""
    import hashlib

    return hashlib.sha256(status_sql(contract, contracts, date(2000, 1, 1)).encode()).hexdigest()[:16]


VERSION_HASH = "hash(_key, _file_id, _row_no, _received_date)"
DAY_DIGESTS = "versions_days"


def _day_digest_select(feed: str, where: str) -> str:
    return (f"SELECT {lit(feed)} AS feed, _received_date, count(*) AS row_count, "
            f"coalesce(bit_xor({VERSION_HASH}), 0) AS row_xor "
            f"FROM {q(versions_table(feed))} WHERE {where} GROUP BY _received_date")


def refresh_day_digest(con, feed: str, day: date) -> None:
    """The versions of ``feed`` received on ``day`` in ``versions_days`` (the load calls it for the
    day it loads, inside its transaction: the night's rows only)."""
    con.execute(f"DELETE FROM {DAY_DIGESTS} WHERE feed = ? AND received_date = ?", [feed, day])
    con.execute(f"INSERT INTO {DAY_DIGESTS} {_day_digest_select(feed, f'_received_date = {day_sql(day)}')}")


def _digests_hold(con, feed: str, day: date) -> bool:
    """Whether ``versions_days`` counts the versions of ``feed`` received by ``day`` (one scan of
    the date column; false for a warehouse loaded before the table existed)."""
    held, counted = con.execute(
        f"SELECT (SELECT coalesce(sum(row_count), 0) FROM {DAY_DIGESTS} WHERE feed = ? AND received_date <= ?), "
        f"(SELECT count(*) FROM {q(versions_table(feed))} WHERE _received_date <= ?)", [feed, day, day]).fetchone()
    return held == counted


def _fingerprinted_feeds(contract: Contract, contracts: dict[str, Contract]) -> list[str]:
    """The feeds a record's status depends on: its own and the repair/objection feeds."""
    return [contract.feed] + [l.feed for r in ("repair", "objection") for l in links(contracts, r)]


def versions_fingerprint(con, contract: Contract, contracts: dict[str, Contract], day: date) -> str:
    """Row count and XOR of row hashes of the versions (of ``contract`` and its repair/objection
    feeds) received on or before ``day``. A night reloaded with other rows after its statuses were
    logged changes it, and the next night is then computed in full.

    Read from ``versions_days`` (per feed and day, kept by the load), so it costs days, not
    versions; a feed whose day digests do not count its versions (a warehouse loaded before the
    table existed) gets them recomputed from its versions table first. The value is the one
    :func:`versions_fingerprint_sql` computes from the versions themselves (count and XOR add up
    over days), so nights recorded before stay comparable."""
    feeds = _fingerprinted_feeds(contract, contracts)
    out = []
    for f in feeds:
        if not _digests_hold(con, f, day):
            con.execute(f"DELETE FROM {DAY_DIGESTS} WHERE feed = ?", [f])
            con.execute(f"INSERT INTO {DAY_DIGESTS} {_day_digest_select(f, 'TRUE')}")
        n, x = con.execute(
            f"SELECT coalesce(sum(row_count), 0), coalesce(bit_xor(row_xor), 0) FROM {DAY_DIGESTS} "
            "WHERE feed = ? AND received_date <= ?", [f, day]).fetchone()
        out.append(f"{n}:{x}")
    return "/".join(out)


def versions_fingerprint_sql(contract: Contract, contracts: dict[str, Contract], day: date) -> str:
    """The fingerprint of :func:`versions_fingerprint` computed from the versions tables (a scan of
    every version received by ``day``): the definition, and the check of the day digests."""
    feeds = _fingerprinted_feeds(contract, contracts)
    parts = [
        f"(SELECT count(*) || ':' || coalesce(bit_xor({VERSION_HASH}), 0) "
        f"FROM {q(versions_table(f))} WHERE _received_date <= {day_sql(day)})"
        for f in feeds
    ]
    return "SELECT " + " || '/' || ".join(parts)
