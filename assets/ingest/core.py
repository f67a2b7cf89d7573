"""One day's ingest: land every delivery byte for byte, parse it, stage rows, record the manifest.

Order per delivery (crash safety): landing file(s) (atomic) → staged Parquet (atomic) → manifest
row. The manifest row is the commit: a delivery without one is processed again on the next run,
which rewrites the same landing and staging files.

Duplicates: content whose SHA-256 is already in the manifest is not processed again. When it
comes from the same place (department, feed, name, day) it is the same delivery seen by a rerun
and nothing is written; otherwise a row in ``ingest_duplicates`` notes the resend.

Late files (a file put into an earlier day's folder after that day's night) are taken in by a
later night as received on that night, with the folder's day in ``late_from``; the rules and the
look-back window are in assets/ingest/inbox.py. Ids of items recorded without their content
(refused, unreadable, too big) hold the day of their place, not of the night that recorded them.

Header-only files are accepted: status ``parsed``, ``rows_parsed`` 0, a 0-row staged file and the
note “仅有表头，没有数据行”, so a department that had nothing to report is seen to have reported.
A file with no bytes (or only whitespace) is rejected as empty.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from contracts.model import Contract, Registry
from warehouse.db import connect
from warehouse.faults import fault_point
from warehouse.files import write_bytes, write_parquet
from warehouse.layout import DataDir
from warehouse.masking import scrub_text
from assets.ingest.errors import IngestError
from assets.ingest.http import HttpSettings, http_env, pull
from assets.ingest.inbox import (
    LATE_WINDOW_DAYS,
    InboxItem,
    hash_no_follow,
    read_no_follow,
    read_no_follow_head,
    scan_inbox,
)
from assets.ingest.mapping import empty_staged, map_to_contract
from assets.ingest.readers import MAX_FILE_BYTES, RawTable, check_rows, check_size, read_bytes

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = [
    "file_id", "dept", "feed", "source", "original_name", "sha256", "bytes", "received_date",
    "rows_parsed", "status", "error_message", "landed_path", "staged_path", "format", "encoding",
    "header_row", "pages", "extra_columns", "notes", "first_seen_at", "late_from",
]


@dataclass
class ManifestRecord:
    file_id: str
    dept: str | None
    feed: str | None
    source: str  # inbox | http
    original_name: str
    sha256: str | None
    bytes: int | None
    received_date: date
    rows_parsed: int
    status: str  # parsed | rejected
    error_message: str | None
    landed_path: str | None
    staged_path: str | None = None
    format: str | None = None
    encoding: str | None = None
    header_row: int | None = None
    pages: int | None = None
    extra_columns: str | None = None
    notes: str | None = None
    first_seen_at: datetime = field(default_factory=datetime.now)
    # a late file: the day whose folder it was found in (that day's night had already read it);
    # ``received_date`` is the night that took it in
    late_from: date | None = None

    def __str__(self) -> str:
        """As shown in logs and the run's output: a file name may carry a person's ID or phone
        (the one masking policy, warehouse.masking)."""
        where = f"{self.dept or '?'}/{self.feed or '?'}/{self.original_name}"
        return scrub_text(f"{where}: {self.error_message}" if self.error_message else f"{where}: {self.rows_parsed} 行")

    def late_text(self) -> str:
        """A late file in the run's output: where it was found and the received day it got."""
        where = f"{self.dept or '?'}/{self.feed or '?'}/{self.original_name}"
        outcome = f"拒收：{self.error_message}" if self.status == "rejected" else f"{self.rows_parsed} 行"
        return scrub_text(f"{where}：在 {self.late_from} 的目录中发现（该日夜间归集之后才放入），"
                          f"接收日按 {self.received_date} 计；{outcome}")


@dataclass
class DuplicateRecord:
    file_id: str  # the manifest row whose content this repeats
    dept: str
    feed: str
    source: str
    original_name: str
    received_date: date

    def __str__(self) -> str:
        return scrub_text(f"{self.dept}/{self.feed}/{self.original_name}: 与已接收文件 {self.file_id[:12]} 内容相同，未重复处理")


@dataclass
class IngestSummary:
    received: date
    rows_by_feed: dict[str, int] = field(default_factory=dict)  # rows staged by this run
    files_by_dept: dict[str, int] = field(default_factory=dict)  # new manifest records by this run
    new_records: list[ManifestRecord] = field(default_factory=list)
    rejected: list[ManifestRecord] = field(default_factory=list)
    skipped_duplicates: list[DuplicateRecord] = field(default_factory=list)
    already_ingested: int = 0  # deliveries this day that earlier runs already recorded
    # every rejected delivery of the received day as the manifest holds it after this run (this
    # run's and earlier runs'): what the night reports, so a rerun says what the first run said
    day_rejected: list[ManifestRecord] = field(default_factory=list)
    # late files this received day took in from earlier days' folders, as the manifest holds them
    late: list[ManifestRecord] = field(default_factory=list)
    # configuration problems (an HTTP department without its token): reported once per
    # department, the pulls are not attempted and leave no rejected delivery behind
    config_problems: list[str] = field(default_factory=list)

    @property
    def rows_total(self) -> int:
        return sum(self.rows_by_feed.values())

    @property
    def new_files(self) -> int:
        return len(self.new_records)

    @property
    def duplicates(self) -> int:
        return len(self.skipped_duplicates)

    def add(self, rec: ManifestRecord) -> None:
        self.new_records.append(rec)
        key = rec.dept or "?"
        self.files_by_dept[key] = self.files_by_dept.get(key, 0) + 1
        if rec.status == "rejected":
            self.rejected.append(rec)
        elif rec.feed:
            self.rows_by_feed[rec.feed] = self.rows_by_feed.get(rec.feed, 0) + rec.rows_parsed


@dataclass
class ParsedFile:
    """One file read and mapped to a contract (what :func:`read_file` returns)."""

    table: pa.Table  # staged columns (contract fields in order + lineage)
    file_id: str
    source_name: str
    format: str
    encoding: str | None
    header_row: int | None
    sheet: str | None
    delimiter: str | None
    extra_columns: list[str]
    notes: list[str]
    raw_changes: pa.Table | None = None  # cells as received where normalisation changed them

    @property
    def rows(self) -> int:
        return self.table.num_rows

    @property
    def frame(self) -> pd.DataFrame:
        return self.table.to_pandas()


# ---------------------------------------------------------------------------------------------
# parsing


def _notes(raw: RawTable, table: pa.Table, unknown: list[str]) -> list[str]:
    notes = list(raw.notes)
    if table.num_rows == 0:
        notes.append("仅有表头，没有数据行")
    if raw.encoding and raw.encoding.startswith("mixed"):
        notes.append("文件混用了 UTF-8 与 GBK 编码，已逐行识别；请今后统一另存为 UTF-8")
    if unknown:
        notes.append("未识别的列已原样保留：" + "、".join(unknown))
    return notes


def _notes_http(table: pa.Table, unknown: list[str]) -> list[str]:
    return _notes(RawTable([], [], pa.array([], pa.int64()), "json"), table, unknown)


def parse_bytes(
    data: bytes,
    name: str,
    contract: Contract,
    *,
    file_id: str,
    dept: str | None,
    received: date | None,
) -> ParsedFile:
    raw = read_bytes(data, name, contract)
    check_rows(raw.num_rows)
    table, unknown, changes = map_to_contract(raw, contract, file_id=file_id, dept=dept, received=received,
                                              source_name=name)
    return ParsedFile(table, file_id, name, raw.format, raw.encoding, raw.header_row, raw.sheet, raw.delimiter,
                      unknown, _notes(raw, table, unknown), changes)


def read_file(
    path: str | Path,
    contract: Contract,
    *,
    dept: str | None = None,
    received: date | None = None,
) -> ParsedFile:
    """Read one department file (CSV / XLSX / JSON list) offline, as ingest would stage it.

    Raises :class:`IngestError` (Chinese ``message_zh``) for an unreadable file or one that lacks
    required columns. ``_file_id`` is the SHA-256 of the file's bytes.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise IngestError(f"不是文件：{path.name}", code="io") from None
    except OSError as exc:
        raise IngestError(f"无法读取文件 {path.name}（{exc.strerror or type(exc).__name__}）", code="io") from None
    return parse_bytes(data, path.name, contract, file_id=hashlib.sha256(data).hexdigest(), dept=dept, received=received)


def header_scores(path: str | Path, contracts: Mapping[str, Contract]) -> dict[str, int]:
    """How many fields of each feed the file's header names (labels, codes, aliases), so a
    pre-check can say which feed a file looks like. A feed whose header is not found scores 0;
    an unreadable file raises :class:`IngestError`, as :func:`read_file` would."""
    from assets.ingest.readers import _header_key

    data = Path(path).read_bytes()
    out: dict[str, int] = {}
    for feed, contract in contracts.items():
        try:
            raw = read_bytes(data, Path(path).name, contract)
        except IngestError as exc:
            if exc.code != "header":
                raise
            out[feed] = 0
            continue
        hmap = contract.header_map()
        out[feed] = len({hmap.get(_header_key(h)) for h in raw.headers} - {None})
    return out


def read_staged(data_dir: DataDir, feed: str, received: date, contract: Contract | None = None) -> pd.DataFrame:
    """All staged files of one feed and day, concatenated (ordered by file id, then row)."""
    folder = data_dir.staging_dir(feed, received)
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if contract is None:
        from contracts.loader import catalog

        contract = catalog()[feed]
    schema = empty_staged(contract).schema
    tables = [pq.read_table(f, schema=schema) for f in files]
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    return table.to_pandas()


def read_raw_values(data_dir: DataDir, feed: str, received: date, file_ids: Iterable[str],
                    rows: Mapping[str, Iterable[int]] | None = None) -> pd.DataFrame:
    """Cells as received where normalisation changed them, for the given staged files (and, when
    ``rows`` is given, only those row numbers of each file: a whole file's reformatted dates can
    be millions of cells, the rejected rows a few).

    Columns ``_file_id, _row_no, field, raw``; a cell not listed was staged exactly as received
    (after trimming). Files staged before this sidecar existed simply have no entries.
    """
    import pyarrow.compute as pc

    from assets.ingest.mapping import RAW_SCHEMA

    frames = []
    for fid in sorted(set(file_ids)):
        path = data_dir.staging_raw_file(feed, received, fid)
        if path.exists():
            t = pq.read_table(path, schema=RAW_SCHEMA)
            if rows is not None:
                t = t.filter(pc.is_in(t.column("_row_no"), pa.array(list(rows.get(fid, ())), pa.int64())))
            frames.append(t.append_column("_file_id", pa.repeat(pa.scalar(fid), t.num_rows)).to_pandas())
    if not frames:
        return pd.DataFrame({"_row_no": pd.Series([], dtype="int64"), "field": pd.Series([], dtype=object),
                             "raw": pd.Series([], dtype=object), "_file_id": pd.Series([], dtype=object)})
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------------------------------------
# landing and manifest


def _rel(data_dir: DataDir, path: Path) -> str:
    return path.relative_to(data_dir.root).as_posix()


def _ext(name: str) -> str:
    suffix = Path(name.replace("\\", "/")).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,10}", suffix) else ""


def land(data_dir: DataDir, data: bytes, sha: str, ext: str) -> Path:
    target = data_dir.landing / sha[:2] / f"{sha}{ext}"
    if not (target.exists() and target.stat().st_size == len(data)):
        write_bytes(data, target, private=True)  # as received: unmasked
    return target


def land_file(data_dir: DataDir, src: Path, size: int, sha: str, ext: str) -> Path:
    """Land a file already written in full (an HTTP page spooled beside the landing zone) by
    renaming it: atomic, and the bytes are never read back into memory."""
    target = data_dir.landing / sha[:2] / f"{sha}{ext}"
    if target.exists() and target.stat().st_size == size:
        src.unlink(missing_ok=True)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fault_point(f"before-rename {target.name}")  # the crash test's points, as atomic_path has them
    os.replace(src, target)
    fault_point(f"after-rename {target.name}")
    return target


def land_stream(data_dir: DataDir, src: Path, ext: str) -> tuple[str, int, Path]:
    """Copy a regular file into the landing zone in chunks (never whole in memory), hashing it on
    the way: (SHA-256, size, landed path). O_NOFOLLOW as :func:`read_no_follow`."""
    import tempfile

    data_dir.landing.mkdir(parents=True, exist_ok=True)
    fd_out, tmp = tempfile.mkstemp(prefix=f".landing.{os.getpid()}-", suffix=".tmp", dir=data_dir.landing)
    sha, size = hashlib.sha256(), 0
    try:
        fd = os.open(src, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        try:
            with os.fdopen(fd_out, "wb") as out:
                while (chunk := os.read(fd, 1 << 22)) and size <= MAX_FILE_BYTES:
                    sha.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        finally:
            os.close(fd)
        digest = sha.hexdigest()
        return digest, size, land_file(data_dir, Path(tmp), size, digest, ext)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _insert_manifest(con, rec: ManifestRecord) -> None:
    row = asdict(rec)
    cols = ", ".join(MANIFEST_COLUMNS)
    marks = ", ".join("?" for _ in MANIFEST_COLUMNS)
    con.execute(f"INSERT INTO ingest_manifest ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING",
                [row[c] for c in MANIFEST_COLUMNS])


def _insert_duplicate(con, dup: DuplicateRecord) -> None:
    con.execute(
        "INSERT INTO ingest_duplicates VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [dup.file_id, dup.dept, dup.feed, dup.source, dup.original_name, dup.received_date, datetime.now()],
    )


def read_manifest(data_dir: DataDir) -> pd.DataFrame:
    """The whole manifest (for reports and tests)."""
    with connect(data_dir) as con:
        return con.execute("SELECT * FROM ingest_manifest ORDER BY first_seen_at, file_id").df()


def _records(con, where: str, params: list) -> list[ManifestRecord]:
    cols = ", ".join(f"m.{c}" for c in MANIFEST_COLUMNS)
    rows = con.execute(
        f"SELECT {cols} FROM ingest_manifest m WHERE {where} ORDER BY m.dept, m.feed, m.original_name, m.file_id",
        params).fetchall()
    return [ManifestRecord(**dict(zip(MANIFEST_COLUMNS, r))) for r in rows]


# An HTTP pull that failed before anything arrived (no bytes: sha256 null) no longer counts against
# its day once a delivery from the same endpoint for that day was parsed: the day's data is in.
_REJECTED_OF_DAY = """m.received_date = ? AND m.status = 'rejected'
    AND NOT (m.source = 'http' AND m.sha256 IS NULL AND EXISTS (
        SELECT 1 FROM ingest_manifest p
        WHERE p.source = 'http' AND p.status = 'parsed' AND p.received_date = m.received_date
          AND p.dept IS NOT DISTINCT FROM m.dept AND p.feed IS NOT DISTINCT FROM m.feed
          AND p.original_name = m.original_name))"""


def _rejected_of_day(con, received: date) -> list[ManifestRecord]:
    return _records(con, _REJECTED_OF_DAY, [received])


def _late_of_day(con, received: date) -> list[ManifestRecord]:
    return _records(con, "m.received_date = ? AND m.late_from IS NOT NULL", [received])


def late_deliveries(data_dir: DataDir, received: date) -> list[ManifestRecord]:
    """The late files a received day took in: found in an earlier day's folder after that day's
    night (``late_from``), received on this day (see assets/ingest/inbox.py)."""
    if not data_dir.db_path.exists():
        return []
    with connect(data_dir, read_only=True) as con:
        return _late_of_day(con, received)


def closed_days(con, received: date) -> set[date]:
    """The earlier days, within :data:`LATE_WINDOW_DAYS` of ``received``, whose own night has read
    its inbox through (``ingest_days``): their folders are searched for late files. Days ingested
    before ``ingest_days`` existed (older versions) count when the manifest has a delivery of
    theirs and they precede its first recorded day; a day whose night never ran is not closed
    (its files are its own night's, whenever it runs)."""
    lo = received - timedelta(days=LATE_WINDOW_DAYS)
    days = {r[0] for r in con.execute(
        "SELECT received_date FROM ingest_days WHERE received_date >= ? AND received_date < ?", [lo, received]).fetchall()}
    first = con.execute("SELECT min(received_date) FROM ingest_days").fetchone()[0]
    if first is not None:
        days |= {r[0] for r in con.execute(
            "SELECT DISTINCT received_date FROM ingest_manifest WHERE received_date >= ? AND received_date < ?",
            [lo, min(first, received)]).fetchall()}
    return days


def rejected_deliveries(data_dir: DataDir, received: date) -> list[ManifestRecord]:
    """Every rejected delivery of one received day as recorded in the manifest, whichever run
    recorded it (a rerun reports what the first run rejected). An HTTP pull that failed with
    nothing received is left out once a later pull of the same endpoint and day was parsed."""
    if not data_dir.db_path.exists():
        return []
    with connect(data_dir, read_only=True) as con:
        return _rejected_of_day(con, received)


def _failed_pulls(notes: str | None) -> int:
    """How many failed pulls a failure row stands for (its notes say; a row without the count,
    as older versions wrote them, is one)."""
    m = re.search(r"接口拉取失败 (\d+) 次", notes or "")
    return int(m.group(1)) if m else 1


def _attempt_id(kind: str, item: InboxItem, day: date | None) -> str:
    """The id of an inbox item recorded without its content (refused, unreadable, too big): its
    place, and the day of that place unless it belongs to no day (``once``). The day is the
    folder's, not the night's, so whichever night records a late item, the id is the same."""
    when = "" if day is None else f"\n{day.isoformat()}"
    return hashlib.sha256(f"{kind}\n{item.relpath}{when}".encode("utf-8", "surrogateescape")).hexdigest()


def _join_notes(*parts: str | None) -> str | None:
    return "；".join(p for p in parts if p) or None


class _Run:
    def __init__(self, data_dir: DataDir, received: date, contracts: dict[str, Contract], con, summary: IngestSummary):
        self.data_dir, self.received, self.contracts, self.con, self.summary = data_dir, received, contracts, con, summary
        # file id -> its place: (dept, feed, source, name, day of the place it was found in)
        self.known: dict[str, tuple] = {
            r[0]: tuple(r[1:])
            for r in con.execute(
                "SELECT file_id, dept, feed, source, original_name, coalesce(late_from, received_date) "
                "FROM ingest_manifest"
            ).fetchall()
        }
        # place -> {size in bytes: file id}: a file still at the place it was received from, with
        # the size it had, is that delivery; the look-back over earlier days' folders reads (hashes)
        # only files that are new there or changed size, not every file of a month every night
        self.at_place: dict[tuple, dict[int, str]] = {}
        for r in con.execute(
            "SELECT dept, feed, source, original_name, coalesce(late_from, received_date), bytes, file_id "
            "FROM ingest_manifest WHERE bytes IS NOT NULL AND sha256 IS NOT NULL"
        ).fetchall():
            self.at_place.setdefault(tuple(r[:5]), {})[r[5]] = r[6]
        self.received_here = {r[0] for r in con.execute(  # recorded as received on this night
            "SELECT file_id FROM ingest_manifest WHERE received_date = ?", [received]).fetchall()}
        self.duplicates: set[tuple] = {tuple(r) for r in con.execute(
            "SELECT file_id, dept, feed, source, original_name, received_date FROM ingest_duplicates").fetchall()}

    def seen(self, file_id: str, dept: str, feed: str, source: str, name: str, day: date | None = None) -> bool:
        """True when this content is already recorded (and notes a resend elsewhere). ``day``: the
        day of the place it was found in (default the night's)."""
        if file_id not in self.known:
            return False
        place = (dept, feed, source, name, day or self.received)
        if self.known[file_id] == place:
            self.summary.already_ingested += 1
        else:
            dup = DuplicateRecord(file_id, dept, feed, source, name, day or self.received)
            _insert_duplicate(self.con, dup)
            self.duplicates.add((file_id, dept, feed, source, name, day or self.received))
            self.summary.skipped_duplicates.append(dup)
        return True

    def commit(self, rec: ManifestRecord, *, insert: bool = True) -> None:
        if insert:
            _insert_manifest(self.con, rec)
        self.known[rec.file_id] = (rec.dept, rec.feed, rec.source, rec.original_name, rec.late_from or rec.received_date)
        if rec.bytes is not None and rec.sha256 is not None:
            self.at_place.setdefault(self.known[rec.file_id], {})[rec.bytes] = rec.file_id
        self.summary.add(rec)

    def stage(self, parsed: ParsedFile, feed: str) -> str:
        target = self.data_dir.staging_dir(feed, self.received) / f"{parsed.file_id}.parquet"
        raw = self.data_dir.staging_raw_file(feed, self.received, parsed.file_id)
        if parsed.raw_changes is not None and parsed.raw_changes.num_rows:
            write_parquet(parsed.raw_changes, raw, private=True)  # before the staged file: staged implies raw is there
        elif raw.exists():
            raw.unlink()
        write_parquet(parsed.table, target, private=True)
        return _rel(self.data_dir, target)

    # -- inbox ------------------------------------------------------------------------------
    def accounted(self, item: InboxItem, day: date) -> bool:
        """Whether an item found in an earlier day's place is already in the manifest (or noted as
        a resend) for that place: a file at the place it was received from with the size it had is
        that delivery (no read: the look-back covers a month of folders every night); otherwise
        compared by place and SHA-256 of the content as it is now (a file replaced after its night
        by other content is a new delivery; one replaced by content of the very same size is taken
        for the old one, the price of not hashing a month of files a night). Nothing is reported
        for it: a resend already noted is not noted again by every night of the look-back."""
        fast = None if item.refuse or item.size is None else \
            self.at_place.get((item.dept, item.feed, "inbox", item.name, day), {}).get(item.size)
        if fast is not None:
            fid = fast
        elif item.refuse:
            fid = _attempt_id("refused", item, None if item.once else day)
        elif (item.size or 0) > MAX_FILE_BYTES:
            fid = _attempt_id("too-big", item, day)
        else:
            try:
                fid = hash_no_follow(item.path)  # in chunks: the look-back reads many files
            except OSError:
                fid = _attempt_id("unreadable", item, day)
            else:
                place = (item.dept, item.feed, "inbox", item.name, day)
                if self.known.get(fid) != place:
                    return (fid, *place) in self.duplicates
        if fid not in self.known:
            return False
        if fid in self.received_here:  # this night took it in before: a rerun
            self.summary.already_ingested += 1
        return True

    def _late_note(self, item: InboxItem, day: date) -> str:
        where = (f"放在 {day} 的日期目录中" if item.relpath.split("/")[2:3] == [day.isoformat()]
                 else f"修改日期为 {day}")
        return (f"迟到文件：{where}，但在该日夜间归集之后才放入收件箱；由 {self.received} 的夜间归集接收，"
                f"接收日按 {self.received} 计")

    def inbox_item(self, item: InboxItem) -> None:
        day = item.day or self.received  # the day of the place it was found in
        late = day != self.received
        if late and self.accounted(item, day):
            return  # its own night (or an earlier late pick-up) has it
        base = dict(dept=item.dept or None, feed=item.feed or None, source="inbox", original_name=item.name,
                    received_date=self.received, late_from=day if late else None)
        late_note = self._late_note(item, day) if late else None
        if item.refuse:
            fid = _attempt_id("refused", item, None if item.once else day)
            if fid in self.known:
                self.summary.already_ingested += 1
                return
            sha = landed = None
            if item.land:  # evidence: keep the bytes of a regular file we refuse
                try:
                    data = read_no_follow(item.path, MAX_FILE_BYTES)
                except OSError:
                    data = None
                if data is not None and len(data) <= MAX_FILE_BYTES:
                    sha = hashlib.sha256(data).hexdigest()
                    landed = _rel(self.data_dir, land(self.data_dir, data, sha, _ext(item.name)))
            self.commit(ManifestRecord(file_id=fid, sha256=sha, bytes=item.size, rows_parsed=0, status="rejected",
                                       error_message=item.refuse, landed_path=landed,
                                       notes=_join_notes(f"位置：{item.relpath}", late_note), **base))
            return
        try:
            too_big = self._over_limit(item, base, day, late_note)
            if too_big:
                return
            data = read_no_follow(item.path, MAX_FILE_BYTES)
        except OSError as exc:
            log.warning("cannot read %s: %s", item.relpath, exc)
            fid = _attempt_id("unreadable", item, day)
            if fid not in self.known:
                self.commit(ManifestRecord(file_id=fid, sha256=None, bytes=item.size, rows_parsed=0, status="rejected",
                                           error_message="文件无法读取（可能是符号链接、权限不足或正在写入）", landed_path=None,
                                           notes=late_note, **base))
            return
        sha = hashlib.sha256(data).hexdigest()
        if self.seen(sha, item.dept, item.feed, "inbox", item.name, day):
            return
        landed = None
        if len(data) <= MAX_FILE_BYTES:
            landed = _rel(self.data_dir, land(self.data_dir, data, sha, _ext(item.name)))
        rec = ManifestRecord(file_id=sha, sha256=sha, bytes=len(data), rows_parsed=0, status="rejected",
                             error_message=None, landed_path=landed, **base)
        try:
            parsed = parse_bytes(data, item.name, self.contracts[item.feed], file_id=sha, dept=item.dept,
                                 received=self.received)
        except IngestError as exc:
            rec.error_message = exc.message_zh
        except Exception as exc:  # a bug or an exotic file must not stop the night's run
            log.exception("ingest of %s failed", item.relpath)
            rec.error_message = "读取文件时发生内部错误，文件未接收，请联系信用办（详情见运行日志）"
        else:
            self._fill(rec, parsed)
            rec.staged_path = self.stage(parsed, item.feed)
        rec.notes = _join_notes(late_note, rec.notes)
        self.commit(rec)

    def _over_limit(self, item: InboxItem, base: dict, day: date, late_note: str | None) -> bool:
        """A file over its format's size limit (readers.check_size) is rejected without being read
        into memory: its bytes are streamed into the landing zone (hashed on the way, up to
        MAX_FILE_BYTES) so the evidence is kept while memory stays bounded."""
        head = read_no_follow_head(item.path, 8)
        try:
            check_size(head, item.name, item.size or 0)
        except IngestError as exc:
            reason = exc.message_zh
        else:
            return False
        sha = landed = None
        size = item.size
        if (item.size or 0) <= MAX_FILE_BYTES:
            sha, size, path = land_stream(self.data_dir, item.path, _ext(item.name))
            landed = _rel(self.data_dir, path)
            if self.seen(sha, item.dept, item.feed, "inbox", item.name, day):
                return True
        fid = sha or _attempt_id("too-big", item, day)
        if fid not in self.known:
            self.commit(ManifestRecord(file_id=fid, sha256=sha, bytes=size, rows_parsed=0, status="rejected",
                                       error_message=reason, landed_path=landed, notes=late_note, **base))
        return True

    def _fill(self, rec: ManifestRecord, parsed: ParsedFile) -> None:
        rec.status = "parsed"
        rec.rows_parsed = parsed.rows
        rec.format, rec.encoding, rec.header_row = parsed.format, parsed.encoding, parsed.header_row
        rec.extra_columns = json.dumps(parsed.extra_columns, ensure_ascii=False) if parsed.extra_columns else None
        rec.notes = "；".join(parsed.notes) or None

    # -- http -------------------------------------------------------------------------------
    def http_feed(self, dept, feed: str, delivery, settings: HttpSettings, env: Mapping[str, str]) -> None:
        from urllib.parse import urlsplit

        name = f"{urlsplit(settings.endpoint(dept.code, feed, delivery, env)).path}?date={self.received.isoformat()}"
        base = dict(dept=dept.code, feed=feed, source="http", original_name=name, received_date=self.received,
                    format="json")
        now = datetime.now()
        try:
            got = pull(dept.code, feed, delivery, self.received, settings, env, spool_dir=self.data_dir.landing)
        except IngestError as exc:
            self.http_failed(base, exc.message_zh, now)
            return
        except Exception as exc:
            log.exception("http pull %s failed", name)
            self.http_failed(base, "拉取接口时发生内部错误，本次未接收任何数据（详情见运行日志）", now)
            return
        try:
            self._http_delivery(got, dept, feed, name, now, base)
        finally:
            got.discard()  # spool files not landed (a delivery seen before)

    def http_failed(self, base: dict, message: str, now: datetime) -> None:
        """Record a pull that failed before anything arrived: one manifest row per department,
        feed, received day and source (endpoint path with the date), whatever the run. A rerun
        that fails again updates that row (latest reason, how many pulls failed and when the last
        one did; ``first_seen_at`` stays the first failure) instead of adding one. Rows an older
        version recorded under time-stamped ids for the same source are merged into it."""
        dept, feed, name = base["dept"], base["feed"], base["original_name"]
        fid = hashlib.sha256(f"http-failed\n{dept}\n{feed}\n{self.received.isoformat()}\n{name}".encode()).hexdigest()
        earlier = self.con.execute(
            "SELECT file_id, first_seen_at, notes FROM ingest_manifest WHERE source = 'http' AND status = 'rejected' "
            "AND sha256 IS NULL AND dept = ? AND feed = ? AND received_date = ? AND original_name = ?",
            [dept, feed, self.received, name]).fetchall()
        failures = 1 + sum(_failed_pulls(notes) for _, _, notes in earlier)
        rec = ManifestRecord(file_id=fid, sha256=None, bytes=None, rows_parsed=0, status="rejected",
                             error_message=message, landed_path=None,
                             first_seen_at=min([now] + [first for _, first, _ in earlier]),
                             notes=f"接口拉取失败 {failures} 次，最近一次 {now:%Y-%m-%d %H:%M:%S}", **base)
        again = any(r[0] == fid for r in earlier)
        self.con.execute("BEGIN TRANSACTION")
        try:
            for old in (r[0] for r in earlier if r[0] != fid):
                self.con.execute("DELETE FROM ingest_manifest WHERE file_id = ?", [old])
            if again:  # updated in place (DuckDB refuses a key deleted and inserted in one transaction)
                self.con.execute("UPDATE ingest_manifest SET error_message = ?, notes = ?, first_seen_at = ? "
                                 "WHERE file_id = ?", [rec.error_message, rec.notes, rec.first_seen_at, fid])
            else:
                _insert_manifest(self.con, rec)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        for old, *_ in earlier:
            self.known.pop(old, None)
        if again:  # the same failure again: reported, but not a new delivery of this run
            self.known[fid] = (rec.dept, rec.feed, rec.source, rec.original_name, rec.received_date)
            self.summary.rejected.append(rec)
        else:
            self.commit(rec, insert=False)

    def _http_delivery(self, got, dept, feed: str, name: str, now: datetime, base: dict) -> None:
        if self.seen(got.file_id, dept.code, feed, "http", name):
            return
        rec = ManifestRecord(file_id=got.file_id, sha256=got.file_id, bytes=sum(p.size for p in got.pages),
                             rows_parsed=0, status="rejected", error_message=None, landed_path=None,
                             pages=len(got.pages), first_seen_at=now, **base)
        page_rows = []
        for i, page in enumerate(got.pages, start=1):
            path = _rel(self.data_dir, land_file(self.data_dir, page.path, page.size, page.sha256, ".json"))
            page_rows.append([got.file_id, i, page.sha256, page.size, page.records, path])
            if i == 1:
                rec.landed_path = path
        try:
            contract = self.contracts[feed]
            raw = got.columns.finish(contract)
            got.columns = None  # the Arrow columns live on in ``raw`` only
            table, unknown, changes = map_to_contract(raw, contract, file_id=got.file_id, dept=dept.code,
                                                      received=self.received, source_name=name)
            del raw
            parsed = ParsedFile(table, got.file_id, name, "json", "utf-8", None, None, None, unknown,
                                _notes_http(table, unknown), changes)
        except IngestError as exc:
            rec.error_message = exc.message_zh
        except Exception as exc:
            log.exception("parsing http delivery %s failed", name)
            rec.error_message = "解析接口数据时发生内部错误，整批未接收（详情见运行日志）"
        else:
            self._fill(rec, parsed)
            rec.header_row = None
            rec.staged_path = self.stage(parsed, feed)
        self.con.executemany("INSERT INTO ingest_pages VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", page_rows)
        self.commit(rec)


def ingest_day(
    data_dir: DataDir,
    received: date,
    contracts: dict[str, Contract],
    registry: Registry,
    *,
    http: HttpSettings | None = None,
    env: Mapping[str, str] | None = None,
    depts: Iterable[str] | None = None,
) -> IngestSummary:
    """Land and parse everything received on ``received``: the inbox's dated folders of that day,
    undated inbox files modified that day, and HTTP pulls for that date. ``depts`` limits the run
    to some departments. Writes DuckDB (one writer at a time)."""
    settings = http or HttpSettings()
    env = http_env(env)
    only = set(depts) if depts is not None else None
    summary = IngestSummary(received)
    with connect(data_dir) as con:
        run = _Run(data_dir, received, contracts, con, summary)
        for item in scan_inbox(data_dir.inbox, received, registry, contracts, only, earlier=closed_days(con, received)):
            run.inbox_item(item)
        if only is None:  # the whole inbox of the day was read: later nights may look for late files in it
            con.execute("INSERT INTO ingest_days VALUES (?, ?) ON CONFLICT DO NOTHING", [received, datetime.now()])
        if settings.enabled:
            from contracts.config import config_problems

            for dept in registry.departments:
                if only is not None and dept.code not in only:
                    continue
                problems = config_problems(Registry(region=registry.region, region_code=registry.region_code,
                                                    departments=[dept]), env)
                summary.config_problems += problems
                for feed in dept.feeds:
                    delivery = dept.delivery_for(feed)
                    if delivery.token_env and not env.get(delivery.token_env):
                        continue  # reported once above as a configuration problem
                    if delivery.kind == "http" and feed in contracts:
                        run.http_feed(dept, feed, delivery, settings, env)
        summary.day_rejected = _rejected_of_day(con, received)
        summary.late = _late_of_day(con, received)
    return summary


def manifest_counts(records: Iterable[ManifestRecord]) -> Counter:
    return Counter(r.status for r in records)
