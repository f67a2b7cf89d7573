"""Working-day calendar: which days count for a "7 个工作日" reporting deadline.

Sources, per year, first match wins:

1. a calendar file ``<YEAR>.yaml`` in the calendar directory (default ``contracts/calendars/``,
   or ``$CREDIT_ETL_CALENDAR_DIR``): the year's State Council holiday notice as data (format in
   ``contracts/calendars/README.md``). A file overrides the package for its year, so a
   correction needs no code change either;
2. the ``chinesecalendar`` package (2004–2026 in version 1.11; it raises NotImplementedError
   for other years, and newer versions that know more years are picked up automatically);
3. otherwise Monday–Friday, marked **provisional**: every figure computed with such a year
   carries ``provisional = true``, and a warning is logged once per year in which a figure
   actually fell (the nightly measure says it once for the night's provisional figures), not for
   a year merely loaded ahead. Never an exception.

The counting rule (shared REFERENCE §5): the decision day is not counted; a ``working``
deadline of N days is the N-th working day after the decision date; a ``calendar`` deadline is
the decision date + N days, moved to the next working day when that day is a rest day and the
rule says ``extend_over_holidays`` (民法典 第二百零三条: a period whose last day is a 法定休假日
ends on the day after it; weekends count as rest days, make-up working days do not). A record first received validly on or before the deadline is on
time.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

from contracts.model import Deadline

log = logging.getLogger(__name__)

DEFAULT_CALENDAR_DIR = Path(__file__).resolve().parents[2] / "contracts" / "calendars"
FILE_RE = re.compile(r"^(\d{4})\.yaml$")


class CalendarFile(BaseModel):
    """One year's holiday arrangement (国务院办公厅关于<YEAR>年部分节假日安排的通知)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    year: int
    source: str  # the notice: title and document number, ideally a URL
    holidays: list[date] = []  # days off (放假), including weekend days inside a holiday block
    workdays: list[date] = []  # make-up working days on a weekend (调休上班)

    @model_validator(mode="after")
    def _coherent(self) -> "CalendarFile":
        for d in self.holidays + self.workdays:
            if d.year != self.year:
                raise ValueError(f"{d} is not in year {self.year}")
        both = set(self.holidays) & set(self.workdays)
        if both:
            raise ValueError(f"days both holiday and workday: {sorted(both)}")
        if not self.source.strip():
            raise ValueError("source (the State Council notice) is required")
        return self


class CalendarFileError(ValueError):
    pass


def load_calendar_file(path: str | Path) -> CalendarFile:
    path = Path(path)
    m = FILE_RE.match(path.name)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        cal = CalendarFile.model_validate(data)
    except Exception as exc:  # noqa: BLE001 - message names the file
        raise CalendarFileError(f"{path.name}: 节假日文件无效 / invalid calendar file: {exc}") from None
    if not m or int(m.group(1)) != cal.year:
        raise CalendarFileError(f"{path.name}: year {cal.year} must match the file name <YEAR>.yaml")
    return cal


@dataclass(frozen=True)
class YearCalendar:
    year: int
    source: str  # 'file:<path>' | 'chinesecalendar' | 'fallback'
    holidays: frozenset[date]
    workdays: frozenset[date]

    @property
    def provisional(self) -> bool:
        return self.source == "fallback"

    def is_workday(self, d: date) -> bool:
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() < 5


def _from_chinesecalendar(year: int) -> YearCalendar | None:
    import chinese_calendar as cc

    try:
        cc.is_workday(date(year, 6, 1))  # raises NotImplementedError outside its range
    except NotImplementedError:
        return None
    first, last = date(year, 1, 1), date(year, 12, 31)
    hol, work = set(), set()
    d = first
    while d <= last:
        w = cc.is_workday(d)
        if w and d.weekday() >= 5:
            work.add(d)
        elif not w and d.weekday() < 5:
            hol.add(d)
        d += timedelta(days=1)
    return YearCalendar(year, "chinesecalendar", frozenset(hol), frozenset(work))


class WorkCalendar:
    """Working days over any years; see the module docstring for the sources."""

    def __init__(self, calendar_dir: str | Path | None = None):
        env = os.environ.get("CREDIT_ETL_CALENDAR_DIR")
        if not calendar_dir and not env:  # the deployment's calendars/ (contracts/config.py)
            from contracts.config import active_config

            calendar_dir = active_config().calendar_dir
        self.calendar_dir = Path(calendar_dir) if calendar_dir else Path(env)
        self._years: dict[int, YearCalendar] = {}
        self._warned: set[int] = set()  # one warning per year and calendar (i.e. per night)

    def year(self, year: int) -> YearCalendar:
        if year not in self._years:
            self._years[year] = self._load_year(year)
        return self._years[year]

    def _load_year(self, year: int) -> YearCalendar:
        path = self.calendar_dir / f"{year}.yaml"
        if path.exists():
            cal = load_calendar_file(path)
            return YearCalendar(year, f"file:{path}", frozenset(cal.holidays), frozenset(cal.workdays))
        found = _from_chinesecalendar(year)
        if found:
            return found
        return YearCalendar(year, "fallback", frozenset(), frozenset())

    def _warn_fallback(self, years: list[int]) -> None:
        """Said when a figure was actually computed on a fallback year, not when a year is merely
        loaded: every December the look-ahead loads next year, whose notice is not out yet."""
        for year in years:
            if year not in self._warned:
                self._warned.add(year)
                log.warning(
                    "%d 年无国务院节假日安排（chinesecalendar 不支持，且无 %s），暂按周一至周五计算工作日，结果标记为暂定 "
                    "/ no official calendar for %d: Monday–Friday fallback, figures marked provisional",
                    year, self.calendar_dir / f"{year}.yaml", year,
                )

    def is_workday(self, d: date) -> bool:
        return self.year(d.year).is_workday(d)

    def is_provisional(self, year: int) -> bool:
        return self.year(year).provisional

    def provisional_years(self, first: date, last: date) -> list[int]:
        return [y for y in range(first.year, last.year + 1) if self.is_provisional(y)]

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after ``start`` (``start`` itself not counted)."""
        d, left = start, n
        while left > 0:
            d += timedelta(days=1)
            if self.is_workday(d):
                left -= 1
        return d

    def working_days_between(self, after: date, upto: date) -> int:
        """Working days in (after, upto]; 0 when upto <= after."""
        n, d = 0, after
        while d < upto:
            d += timedelta(days=1)
            n += self.is_workday(d)
        return n

    def deadline(self, decided: date, rule: Deadline) -> tuple[date, bool]:
        """(deadline, provisional) for a decision date under a contract deadline rule."""
        if rule.kind == "calendar":
            due = decided + timedelta(days=rule.days)
            if not rule.extend_over_holidays:
                return due, False
            start = due
            while not self.is_workday(due):
                due += timedelta(days=1)
            years = self.provisional_years(start, due)
        else:
            due = self.add_working_days(decided, rule.days)
            years = self.provisional_years(decided, due)
        self._warn_fallback(years)
        return due, bool(years)

    def day_rows(self, first: date, last: date) -> tuple[list[date], list[bool], list[bool]]:
        """Columns (day, is_workday, provisional) for every day in [first, last]."""
        days, work, prov = [], [], []
        d = first
        while d <= last:
            yc = self.year(d.year)
            days.append(d)
            work.append(yc.is_workday(d))
            prov.append(yc.provisional)
            d += timedelta(days=1)
        return days, work, prov


@lru_cache(maxsize=4)
def default_calendar() -> WorkCalendar:
    return WorkCalendar()


def describe_rule(rule: Deadline) -> str:
    """Chinese description of a deadline rule, for exports."""
    if rule.kind == "working":
        return f"决定日期后第{rule.days}个工作日（决定当日不计，节假日及调休按国务院安排）内首次有效报送为及时"
    extend = "；期限末日为法定休假日的，顺延至其后第一个工作日，依据《民法典》第二百零三条" if rule.extend_over_holidays else ""
    return f"决定日期后{rule.days}个自然日（决定当日不计{extend}）内首次有效报送为及时"
