"""Where everything lives under the data directory (default ``./data``).

One place for paths, so every stage and every test agrees on the layout:

    inbox/<dept>/<feed>/<YYYY-MM-DD>/<file>     department drops (dated folder = day received)
    landing/<sha256[:2]>/<sha256><.ext>          every received file or HTTP page, byte for byte
    staging/<feed>/received_date=<d>/<file_id>.parquet    parsed rows mapped to contract fields
    staging/<feed>/received_date=<d>/raw/<file_id>.parquet  cells as received where normalisation changed them
    validated/<feed>/received_date=<d>/{passed,quarantined,failures}.parquet
    warehouse/credit.duckdb                      tables and views (one writer at a time)
    warehouse/parquet/<feed>/decision_month=<YYYY-MM>/received_date=<YYYY-MM-DD>.parquet
                                                 (current rows of the month whose current version arrived that day)
    reports/feedback/<dept>/<部门名称>_<YYYY-MM-DD>_校验反馈.xlsx    rejected rows for department clerks
    reports/data_docs/                           Great Expectations Data Docs
    reports/exports/                             monitored-indicator exports
    reports/share/<YYYY-MM-DD>/<feed>.csv        every record shared with other platforms that night (snapshot)
    reports/share/<YYYY-MM-DD>/<feed>.changes.csv  the night's changes to what is shared (新增/更新/撤下)
    reports/crosscheck/<YYYY-MM-DD>.xlsx         the night's red/black cross-comparison findings
    truth.csv                                    ground truth of a generated sample data set
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path


_FEEDBACK_NAME = re.compile(r".+_(\d{4}-\d{2}-\d{2})_校验反馈\.xlsx")


def _day(d: date | str) -> str:
    return d if isinstance(d, str) else d.isoformat()


@dataclass(frozen=True)
class DataDir:
    root: Path

    def __init__(self, root: "str | Path | DataDir"):
        root = root.root if isinstance(root, DataDir) else root
        object.__setattr__(self, "root", Path(root).resolve())

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def staging(self) -> Path:
        return self.root / "staging"

    @property
    def validated(self) -> Path:
        return self.root / "validated"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def db_path(self) -> Path:
        return self.warehouse / "credit.duckdb"

    @property
    def parquet_root(self) -> Path:
        return self.warehouse / "parquet"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def feedback(self) -> Path:
        return self.reports / "feedback"

    @property
    def data_docs(self) -> Path:
        return self.reports / "data_docs"

    @property
    def exports(self) -> Path:
        return self.reports / "exports"

    @property
    def share(self) -> Path:
        return self.reports / "share"

    @property
    def crosscheck(self) -> Path:
        return self.reports / "crosscheck"

    def share_file(self, received: date | str, feed: str) -> Path:
        return self.share / _day(received) / f"{feed}.csv"

    def share_changes_file(self, received: date | str, feed: str) -> Path:
        return self.share / _day(received) / f"{feed}.changes.csv"

    def crosscheck_file(self, received: date | str) -> Path:
        return self.crosscheck / f"{_day(received)}.xlsx"

    @property
    def truth(self) -> Path:
        return self.root / "truth.csv"

    def staging_dir(self, feed: str, received: date | str) -> Path:
        return self.staging / feed / f"received_date={_day(received)}"

    def validated_dir(self, feed: str, received: date | str) -> Path:
        return self.validated / feed / f"received_date={_day(received)}"

    def staging_raw_file(self, feed: str, received: date | str, file_id: str) -> Path:
        return self.staging_dir(feed, received) / "raw" / f"{file_id}.parquet"

    def feedback_file(self, dept: str, received: date | str, dept_name: str | None = None) -> Path:
        """The department's feedback workbook; its name carries the department's Chinese name, so
        the file still says whose it is once it is mailed or saved elsewhere."""
        name = re.sub(r'[\\/:*?"<>|\s]+', "", dept_name or "") or dept
        return self.feedback / dept / f"{name}_{_day(received)}_校验反馈.xlsx"

    def feedback_files(self, dept: str) -> list[tuple[date, Path]]:
        """The department's feedback workbooks with their received days, read back through the
        naming rule of :meth:`feedback_file` (so readers never guess the file name)."""
        folder = self.feedback / dept
        if not folder.is_dir():
            return []
        found = []
        for p in folder.glob("*_校验反馈.xlsx"):
            m = _FEEDBACK_NAME.fullmatch(p.name)
            if m:
                found.append((date.fromisoformat(m.group(1)), p))
        return sorted(found)
