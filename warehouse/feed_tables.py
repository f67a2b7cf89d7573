"""Per-feed warehouse tables and public views, generated from the contract (no per-feed code).

For every feed contract ``<feed>``:

``<feed>_versions``  every accepted (passed) row ever loaded: one row per version.
``<feed>_current``   one row per business key: the latest version.
``public_<feed>``    (role ``records`` only) what may be shown to the public: current rows whose
                     status is published (``warehouse.record_status``: inside its 公示期 (``display`` end date and
                     the contract's ``public_limit``), not
                     revoked or withdrawn, not repaired, not an unpublished 轻微 penalty; 异议中
                     marked in ``_status``), personal fields masked, no lineage columns.
``subject_records``  every row naming a subject, across feeds, with its status today.

Columns of ``<feed>_versions``, in order:

- ``_key``  VARCHAR  the business key as text: the key fields' normalised strings joined by
  ``|`` (for role ``ledger`` the submitting department is the first part, because a ledger's
  contract key ``[month, target_feed]`` is only unique within one department). NULL when a key
  part is NULL (only possible for quarantined rows).
- every contract field, typed: string/code → VARCHAR, date → DATE, decimal → DECIMAL(18,4),
  integer → BIGINT.
- lineage: ``_file_id, _row_no BIGINT, _dept, _feed, _received_date DATE, _source_name,
  _extra, _warnings``.
- version metadata: ``_revoked BOOLEAN`` (status field value in ``revoked_values``) and
  ``_period_month VARCHAR`` ('YYYY-MM' of the contract's ``period_field``; of the received date
  for feeds without one). No wall-clock timestamps: reloading a day gives identical tables.

``<feed>_current`` has the same columns plus ``_version_count BIGINT`` (versions of the key)
and ``_first_valid_received DATE`` (received date of the key's earliest version).

Version order (which version is "latest"): ``(_received_date, _file_id, _row_no)``, greatest
wins. A resubmission on a later day therefore always replaces the current version; two
deliveries of the same key on the same day are ordered by file id (the SHA-256 of the
delivery), which is deterministic but not chronological. Within one delivery a key occurs at
most once (duplicates are quarantined by the ``*-KEY-UNIQUE`` rules).
"""

from __future__ import annotations

import hashlib

import duckdb

from contracts.model import Condition, Contract, Field
from warehouse.masking import is_free_text, kind_for_field, mask_sql, scrub_sql

KEY_SEPARATOR = "|"

SQL_TYPES = {
    "string": "VARCHAR",
    "code": "VARCHAR",
    "date": "DATE",
    "decimal": "DECIMAL(18,4)",
    "integer": "BIGINT",
}

LINEAGE_COLUMNS: list[tuple[str, str]] = [
    ("_file_id", "VARCHAR"),
    ("_row_no", "BIGINT"),
    ("_dept", "VARCHAR"),
    ("_feed", "VARCHAR"),
    ("_received_date", "DATE"),
    ("_source_name", "VARCHAR"),
    ("_extra", "VARCHAR"),
    ("_warnings", "VARCHAR"),
]
VERSION_META_COLUMNS: list[tuple[str, str]] = [("_revoked", "BOOLEAN"), ("_period_month", "VARCHAR")]
CURRENT_META_COLUMNS: list[tuple[str, str]] = [("_version_count", "BIGINT"), ("_first_valid_received", "DATE")]

VERSION_ORDER = "_received_date, _file_id, _row_no"


def q(name: str) -> str:
    """Quote an identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def versions_table(feed: str) -> str:
    return f"{feed}_versions"


def current_table(feed: str) -> str:
    return f"{feed}_current"


def public_view(feed: str) -> str:
    return f"public_{feed}"


def field_columns(contract: Contract) -> list[tuple[str, str]]:
    return [(f.name, SQL_TYPES[f.type]) for f in contract.fields]


def versions_columns(contract: Contract) -> list[tuple[str, str]]:
    return [("_key", "VARCHAR")] + field_columns(contract) + LINEAGE_COLUMNS + VERSION_META_COLUMNS


def current_columns(contract: Contract) -> list[tuple[str, str]]:
    return versions_columns(contract) + CURRENT_META_COLUMNS


# -- expressions over *staged* (all-string) columns ------------------------------------------

def key_parts(contract: Contract) -> list[str]:
    """SQL expressions (over staged string columns) that make up the business key text."""
    parts = [q(k) for k in contract.business_key]
    if contract.role == "ledger":
        parts = ["_dept"] + parts
    return parts


def key_expr(contract: Contract, available: set[str] | None = None) -> str:
    """``_key`` from staged (normalised) string columns: NULL if any part is NULL."""
    parts = []
    for p in key_parts(contract):
        name = p.strip('"')
        if available is not None and name not in available:
            return "CAST(NULL AS VARCHAR)"
        parts.append(f"CAST({p} AS VARCHAR)")
    null_any = " OR ".join(f"{p} IS NULL" for p in parts)
    joined = f" || {lit(KEY_SEPARATOR)} || ".join(parts)
    return f"CASE WHEN {null_any} THEN NULL ELSE {joined} END"


def typed_expr(f: Field, available: set[str]) -> str:
    if f.name not in available:
        return f"CAST(NULL AS {SQL_TYPES[f.type]})"
    # staged text is already normalised (trimmed, empty → NULL): see ARCHITECTURE.md
    col = f"CAST({q(f.name)} AS VARCHAR)"
    if f.type in ("string", "code"):
        return col
    return f"TRY_CAST({col} AS {SQL_TYPES[f.type]})"


def revoked_expr(contract: Contract, available: set[str]) -> str:
    if not contract.status_field or not contract.revoked_values or contract.status_field not in available:
        return "FALSE"
    values = ", ".join(lit(v) for v in contract.revoked_values)
    return f"COALESCE(CAST({q(contract.status_field)} AS VARCHAR) IN ({values}), FALSE)"


def period_expr(contract: Contract, available: set[str]) -> str:
    if contract.period_field and contract.period_field in available:
        f = contract.field(contract.period_field)
        return f"strftime({typed_expr(f, available)}, '%Y-%m')"
    return "strftime(CAST(_received_date AS DATE), '%Y-%m')"


def staged_select(contract: Contract, source_sql: str, available: set[str]) -> str:
    """SELECT turning staged rows (``source_sql``: a FROM-able relation) into version rows."""
    cols = [f"{key_expr(contract, available)} AS _key"]
    cols += [f"{typed_expr(f, available)} AS {q(f.name)}" for f in contract.fields]
    for name, sql_type in LINEAGE_COLUMNS:
        if name in available:
            cols.append(f"CAST({name} AS {sql_type}) AS {name}")
        else:
            cols.append(f"CAST(NULL AS {sql_type}) AS {name}")
    cols.append(f"{revoked_expr(contract, available)} AS _revoked")
    cols.append(f"{period_expr(contract, available)} AS _period_month")
    return "SELECT " + ",\n       ".join(cols) + f"\nFROM {source_sql}"


# -- DDL ---------------------------------------------------------------------------------------

def _ensure_table(con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]],
                  existing: dict[str, set[str]] | None = None) -> None:
    """Create ``table`` or add the columns it lacks. ``existing`` (table → column names, read
    once for all tables) spares the catalog queries when nothing is missing."""
    if existing is not None and table in existing:
        have = existing[table]
    else:
        body = ", ".join(f"{q(n)} {t}" for n, t in columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS {q(table)} ({body})")
        have = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ?",
                [table],
            ).fetchall()
        }
    for name, sql_type in columns:  # a field added to the contract later: add the column
        if name not in have:
            con.execute(f"ALTER TABLE {q(table)} ADD COLUMN {q(name)} {sql_type}")


def ensure_feed_tables(con: duckdb.DuckDBPyConnection, contracts: dict[str, Contract]) -> None:
    """Create (or extend) every feed's versions/current tables, then the public views.

    Runs at every load and measure, so an unchanged warehouse costs one catalog query and no
    DDL (the views are replaced only when their SQL changed, see ``create_public_views``)."""
    existing: dict[str, set[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'"
    ).fetchall():
        existing.setdefault(table, set()).add(column)
    for contract in contracts.values():
        _ensure_table(con, versions_table(contract.feed), versions_columns(contract), existing)
        _ensure_table(con, current_table(contract.feed), current_columns(contract), existing)
    create_public_views(con, contracts)


# -- conditions, tiers, masking ---------------------------------------------------------------

def condition_sql(cond: Condition, contract: Contract, prefix: str = "") -> str:
    """A contract Condition as a SQL boolean over typed columns (NULL field → FALSE)."""
    col = f"CAST({prefix}{q(cond.field)} AS VARCHAR)"
    f = contract.field(cond.field)
    sep = f.multi_value_separator
    parts = f"list_transform(string_split({col}, {lit(sep)}), lambda x: trim(x))" if sep else f"[{col}]"
    if cond.equals is not None:
        expr = f"{col} = {lit(cond.equals)}"
    elif cond.in_ is not None:
        expr = f"{col} IN ({', '.join(lit(v) for v in cond.in_)})"
    elif cond.not_in is not None:
        expr = f"{col} NOT IN ({', '.join(lit(v) for v in cond.not_in)})"
    elif cond.contains_any is not None:
        expr = f"list_has_any({parts}, [{', '.join(lit(v) for v in cond.contains_any)}])"
    elif cond.at_least is not None:
        expr = f"TRY_CAST({col} AS DOUBLE) >= {float(cond.at_least)!r}"
    else:
        expr = f"list_has_all([{', '.join(lit(v) for v in cond.subset_of or [])}], {parts})"
    return f"COALESCE({col} IS NOT NULL AND ({expr}), FALSE)"


def tier_sql(contract: Contract, prefix: str = "") -> str | None:
    """The record's 失信严重程度: explicit tier field, else 轻微 when a minor_when holds, else default."""
    d = contract.display
    if d is None:
        return None
    minor = " OR ".join(condition_sql(c, contract, prefix) for c in d.minor_when) or "FALSE"
    explicit = f"NULLIF(TRIM({prefix}{q(d.tier_field)}), '')" if d.tier_field else "NULL"
    return f"COALESCE({explicit}, CASE WHEN {minor} THEN '轻微' ELSE {lit(d.default_tier)} END)"


def unpublished_tier_sql(contract: Contract, prefix: str = "") -> str:
    """TRUE when the record's tier is not to be published under the regime of its decision date."""
    d = contract.display
    if d is None or not contract.clock_field:
        return "FALSE"
    tier = tier_sql(contract, prefix)
    regimes = sorted(d.regimes, key=lambda r: r.effective_from)
    decided = f"{prefix}{q(contract.clock_field)}"
    clauses = []
    for i, regime in enumerate(regimes):
        hidden = [t.tier for t in regime.tiers if not t.publish]
        if not hidden:
            continue
        lower = "TRUE" if i == 0 else f"{decided} >= DATE {lit(regime.effective_from.isoformat())}"
        upper = (
            f"{decided} < DATE {lit(regimes[i + 1].effective_from.isoformat())}" if i + 1 < len(regimes) else "TRUE"
        )
        clauses.append(f"({lower} AND {upper} AND {tier} IN ({', '.join(lit(t) for t in hidden)}))")
    return "COALESCE(" + (" OR ".join(clauses) if clauses else "FALSE") + ", FALSE)"


def public_columns_sql(contract: Contract, prefix: str = "c.") -> list[str]:
    cols = []
    for f in contract.fields:
        ref = f"{prefix}{q(f.name)}"
        if f.privacy == "personal":
            cols.append(f"{mask_sql(ref, kind_for_field(f))} AS {q(f.name)}")
        elif is_free_text(f):  # scrubbed of IDs, phones and cards
            cols.append(f"{scrub_sql(ref)} AS {q(f.name)}")
        else:
            cols.append(f"{ref} AS {q(f.name)}")
    return cols


def public_view_sql(contract: Contract, contracts: dict[str, Contract]) -> str:
    """``public_<feed>``: the records whose status today is published (warehouse.record_status):
    in their display period, not revoked, not withdrawn after an objection, not repaired (with
    an eligible repair), not an unpublished 轻微 penalty; personal fields masked. ``_status``
    says 公示中 or 异议中 (an open objection, unless the objection contract withholds)."""
    from warehouse.record_status import status_sql

    cols = public_columns_sql(contract) + ["c._dept AS _dept", "c._status AS _status"]
    return (
        f"CREATE OR REPLACE VIEW {q(public_view(contract.feed))} AS\nSELECT "
        + ",\n       ".join(cols)
        + f"\nFROM ({status_sql(contract, contracts, None)}) c\nWHERE c._published"
    )


SUBJECT_VIEW = "subject_records"


def subject_view_sql(contracts: dict[str, Contract]) -> str | None:
    """``subject_records``: every row of every feed that names a subject, with its status today
    (one credit profile per subject across feeds; internal, identifiers unmasked)."""
    from warehouse.record_status import STATUS_ROLES, status_sql

    parts = []
    for c in contracts.values():
        if c.subject is None or c.role not in STATUS_ROLES:
            continue
        parts.append(
            f"SELECT {lit(c.feed)} AS feed, {lit(c.title)} AS title, {lit(c.role)} AS role, _key AS business_key, "
            "_subject_key AS subject_key, _subject_name AS subject_name, _status AS status, "
            "_status_cause AS status_cause, _published AS published, _dept AS dept, "
            "_received_date AS received_date, _version_count AS version_count "
            f"FROM ({status_sql(c, contracts, None)})"
        )
    if not parts:
        return None
    return f"CREATE OR REPLACE VIEW {SUBJECT_VIEW} AS\n" + "\nUNION ALL\n".join(parts)


def create_public_views(con: duckdb.DuckDBPyConnection, contracts: dict[str, Contract]) -> list[str]:
    """Create or replace each records feed's public view. Each view carries the SHA-256 of its SQL
    as its comment and is replaced only when that SQL changed: replacing four views at every load
    and measure wrote the catalog each time (≈ 0.4 s a night for nothing)."""
    made = []
    stamps = dict(con.execute(
        "SELECT view_name, comment FROM duckdb_views() WHERE NOT internal AND schema_name = 'main'").fetchall())
    for contract in contracts.values():
        if contract.role != "records":
            continue
        sql = public_view_sql(contract, contracts)
        name = public_view(contract.feed)
        stamp = "sha256:" + hashlib.sha256(sql.encode("utf-8")).hexdigest()
        if stamps.get(name) != stamp:
            con.execute(sql)
            con.execute(f"COMMENT ON VIEW {q(name)} IS {lit(stamp)}")
        made.append(name)
    view = subject_view_sql(contracts)
    if view:
        stamp = "sha256:" + hashlib.sha256(view.encode("utf-8")).hexdigest()
        if stamps.get(SUBJECT_VIEW) != stamp:
            con.execute(view)
            con.execute(f"COMMENT ON VIEW {q(SUBJECT_VIEW)} IS {lit(stamp)}")
        made.append(SUBJECT_VIEW)
    return made
